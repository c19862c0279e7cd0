// Package browser starts Debian's headless Chromium for the status page's
// tests, driven over the DevTools protocol with chromedp. It is for tests
// and benchmarks only.
package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"

	"github.com/meshd/meshd/internal/procstat"
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

// Metrics reads the page's run-time metrics (Performance.getMetrics):
// TaskDuration and ScriptDuration are the seconds its main thread spent
// on tasks and on script, LayoutDuration on layout, JSHeapUsedSize bytes.
func Metrics() chromedp.Action[map[string]float64] {
	return func(ctx context.Context, t *chromedp.Target) (map[string]float64, error) {
		if _, err := cdp.Call(ctx, t, performance.Enable, performance.EnableParams{}); err != nil {
			return nil, err
		}
		res, err := cdp.Call(ctx, t, performance.GetMetrics, cdp.Empty{})
		if err != nil {
			return nil, err
		}
		out := make(map[string]float64, len(res.Metrics))
		for _, m := range res.Metrics {
			out[m.Name] = m.Value
		}
		return out, nil
	}
}

// CPU is the CPU time the browser of ctx and all its processes (the
// renderer, the GPU and network services) have used so far.
func CPU(ctx context.Context) (time.Duration, error) {
	c := chromedp.FromContext(ctx)
	if c == nil || c.Browser == nil || c.Browser.Process() == nil {
		return 0, errors.New("no browser process")
	}
	return procstat.TreeCPU(c.Browser.Process().Pid)
}
