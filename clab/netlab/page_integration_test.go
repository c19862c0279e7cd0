//go:build integration

package netlab_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/meshd/meshd/clab/netlab"
	"github.com/meshd/meshd/internal/browser"
	"github.com/meshd/meshd/internal/netns"
)

// pageEnv is meshd's status page open in a headless Chromium on this
// host, reaching meshd in the lab's management namespace through a
// forwarder of the test's own (a developer's lab may hold the lab's
// usual host port).
type pageEnv struct {
	ctx  context.Context
	base string
}

// Where the README shows the page: the test saves these.
const (
	fleetShot   = "../../docs/status-page.png"
	sessionShot = "../../docs/status-page-session.png"
	alertsShot  = "../../docs/status-page-alerts.png"
)

func openPage(t *testing.T, e *labEnv) *pageEnv {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := netns.Dial(context.Background(), netlab.MgmtNS, fmt.Sprintf("127.0.0.1:%d", netlab.HTTPPort))
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c); up.Close() }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	ctx, cancel, err := browser.New(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	p := &pageEnv{ctx: ctx, base: "http://" + l.Addr().String()}
	p.do(t, chromedp.Navigate(p.base+"/"))
	return p
}

func (p *pageEnv) do(t *testing.T, a chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, a); err != nil {
		t.Fatal(err)
	}
}

// eval runs an expression in the page.
func eval[T any](t *testing.T, p *pageEnv, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// waitPage waits until the page's expression is true.
func (p *pageEnv) waitPage(t *testing.T, limit time.Duration, what, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, limit)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		t.Fatalf("the page: %s: %v", what, err)
	}
}

func (p *pageEnv) shot(t *testing.T, file string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the page: %s", file)
}

// watchRow records, in the page, when a session's row changes its health
// class (window.rowLog[id] = [[ms since epoch, health], ...]).
func (p *pageEnv) watchRow(t *testing.T, id string) {
	t.Helper()
	eval[bool](t, p, fmt.Sprintf(`(() => {
		const id = %q;
		window.rowLog = window.rowLog || {};
		const log = window.rowLog[id] = [];
		const health = (tr) => ["HEALTHY", "DEGRADED", "DOWN", "UNKNOWN"].find((h) => tr.classList.contains(h)) || "";
		const tr = document.querySelector('tr[data-id="' + id + '"]');
		log.push([Date.now(), health(tr)]);
		new MutationObserver(() => {
			const h = health(tr);
			if (log[log.length - 1][1] !== h) log.push([Date.now(), h]);
		}).observe(tr, {attributes: true, attributeFilter: ["class"]});
		return true;
	})()`, id))
}

// healthChange is when a session's health took a value.
type healthChange struct {
	at     time.Time
	health string
}

func (c healthChange) String() string { return c.at.Format("15:04:05.000") + " " + c.health }

func (p *pageEnv) rowLog(t *testing.T, id string) []healthChange {
	raw := eval[[][]any](t, p, fmt.Sprintf(`window.rowLog[%q]`, id))
	var out []healthChange
	for _, r := range raw {
		ms, _ := r[0].(float64)
		h, _ := r[1].(string)
		out = append(out, healthChange{time.UnixMilli(int64(ms)), h})
	}
	return out
}

// healthSampler polls meshd's own table for one session's health.
type healthSampler struct {
	mu   sync.Mutex
	log  []healthChange
	stop context.CancelFunc
	done chan struct{}
}

func sampleHealth(e *labEnv, key string) *healthSampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &healthSampler{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for ctx.Err() == nil {
			r, ok := e.rows()[key]
			at := time.Now()
			if ok {
				s.mu.Lock()
				if n := len(s.log); n == 0 || s.log[n-1].health != r.Health {
					s.log = append(s.log, healthChange{at, r.Health})
				}
				s.mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return s
}

func (s *healthSampler) changes() []healthChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]healthChange(nil), s.log...)
}

// downAndBack finds when a log first went DOWN and then first left DOWN.
func downAndBack(log []healthChange) (down, back time.Time) {
	for _, c := range log {
		switch {
		case down.IsZero() && c.health == "DOWN":
			down = c.at
		case !down.IsZero() && c.health != "DOWN":
			return down, c.at
		}
	}
	return down, back
}

// pageLag is how long after meshd's own table the page may show a
// change: the 2 s.
const pageLag = 2 * time.Second

// checkDownAndBack holds the page's row to meshd's table: DOWN and back,
// each within pageLag of meshd showing it.
func checkDownAndBack(t *testing.T, meshd, page []healthChange) {
	t.Helper()
	md, mb := downAndBack(meshd)
	pd, pb := downAndBack(page)
	t.Logf("meshd's table: %v; the page: %v", meshd, page)
	if md.IsZero() || mb.IsZero() {
		t.Fatalf("meshd's table did not show the session DOWN and back: %v", meshd)
	}
	if pd.IsZero() || pb.IsZero() {
		t.Fatalf("the page did not show the session DOWN and back: %v", page)
	}
	if d := pd.Sub(md); d > pageLag {
		t.Errorf("the page showed DOWN %v after meshd's table, want at most %v", d, pageLag)
	}
	if d := pb.Sub(mb); d > pageLag {
		t.Errorf("the page showed the session back %v after meshd's table, want at most %v", d, pageLag)
	}
	t.Logf("page after meshd's table: DOWN %v, back %v", pd.Sub(md).Round(time.Millisecond), pb.Sub(mb).Round(time.Millisecond))
}
