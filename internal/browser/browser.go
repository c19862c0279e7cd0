// Package browser starts Debian's headless Chromium for the status page's
// tests, driven over the DevTools protocol with chromedp. It is for tests
// and benchmarks only.
package browser

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/chromedp/chromedp"
)

// Path is where Debian's chromium package puts the browser.
const Path = "/usr/bin/chromium"

// New starts a headless Chromium with a fresh profile in dir and returns
// a context whose actions drive its first tab; cancel ends the browser.
// The flags keep it off the network beyond the page: this machine's
// closed network refuses its background connections, many at a time.
func New(ctx context.Context, dir string) (context.Context, context.CancelFunc, error) {
	if _, err := os.Stat(Path); err != nil {
		return nil, nil, fmt.Errorf("headless Chromium: %s: %w (install Debian's chromium package: make tools does)", Path, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(filepath.Join(dir, "chromium-profile")),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1500, 950),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		return nil, nil, fmt.Errorf("headless Chromium: start: %w", err)
	}
	return bctx, func() { cancelBrowser(); cancelAlloc() }, nil
}
