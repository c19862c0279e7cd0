package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/meshd/meshd/internal/browser"
)

// PageScenario is the status page in a real headless Chromium on the
// real `meshd run` collecting a simulated fleet: how long the page takes
// to list the fleet, and what its live updates cost the browser.
type PageScenario struct {
	Name               string
	Targets, Neighbors int
	Rate               int // leaf updates a second, whole fleet (~3 a notification, each a row change)
	Steady             time.Duration
	basePort, httpPort int
}

var pageScenarios = []PageScenario{
	{Name: "1000", Targets: 20, Neighbors: 50, Rate: 3000, Steady: 60 * time.Second},
}

// pageShort is what CI runs (TestPageShort): the same fleet, 10 s.
var pageShort = PageScenario{Name: "short", Targets: 20, Neighbors: 50, Rate: 3000, Steady: 10 * time.Second}

// Ports of the page's runs: the fleet's from 24000 (20 routers) and
// meshd's HTTP at 24090, apart from the benchmark's, the soak's and the
// cluster's, and below testenv.FreePort's range (24100 up).
const (
	portPageFleet = 24000
	portPageHTTP  = 24090
)

// PageResult is one run's figures.
type PageResult struct {
	Sessions int
	// FirstList is from the navigation to every session listed.
	FirstList time.Duration
	// RowUpdates is the rows the stream changed on the page a second;
	// Frames the renders a second.
	RowUpdates, Frames float64
	// LagP50, LagP99 and LagMax are from the merge core's publishing of
	// a row's change to its arrival in the page, over the steady window.
	LagP50, LagP99, LagMax time.Duration
	// RenderMs is the page's own render time per frame (its JavaScript
	// and the DOM writes it makes), ApplyMs the parse and apply of
	// stream messages a second.
	RenderMs, ApplyMsPerS float64
	// MainThread is the renderer's main thread busy (Performance
	// TaskDuration) a second; BrowserCPU every Chromium process's CPU a
	// second (/proc); MeshdCPU meshd's.
	MainThread, BrowserCPU, MeshdCPU float64
	// Of the main thread's time a second: script, style and layout.
	Script, Style, Layout float64
	HeapMB                float64
}

func (r *PageResult) String() string {
	return fmt.Sprintf("sessions %d, listed in %v; live: %.0f row updates/s, lag from the merge core p50 %v p99 %v max %v, in %.1f frames/s, %.2f ms a frame to render, %.1f ms/s to apply; renderer main thread %.3f s/s (script %.3f, style %.3f, layout %.3f), all Chromium %.3f CPU s/s, meshd %.3f CPU s/s; JS heap %.1f MB",
		r.Sessions, r.FirstList.Round(time.Millisecond), r.RowUpdates, r.LagP50, r.LagP99, r.LagMax, r.Frames, r.RenderMs, r.ApplyMsPerS, r.MainThread, r.Script, r.Style, r.Layout, r.BrowserCPU, r.MeshdCPU, r.HeapMB)
}

// pageCounters are the page's own counters (window.meshdPage).
type pageCounters struct {
	Updates  float64 `json:"updates"`
	ApplyMs  float64 `json:"applyMs"`
	RenderMs float64 `json:"renderMs"`
	Renders  float64 `json:"renders"`
}

func runPage(tb testing.TB, bins binaries, sc PageScenario) (*PageResult, error) {
	if sc.basePort == 0 {
		sc.basePort, sc.httpPort = portPageFleet, portPageHTTP
	}
	dir := tb.TempDir()
	targets := filepath.Join(dir, "targets.yaml")
	sim, err := startSim(bins.self, simFleet{targets: sc.Targets, neighbors: sc.Neighbors, rate: sc.Rate, basePort: sc.basePort, prefix: "pg"}, targets)
	if err != nil {
		return nil, err
	}
	defer sim.close()
	cfg := filepath.Join(dir, "meshd.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("http:\n  listen: \"127.0.0.1:%d\"\ntargets-file: %q\n", sc.httpPort, targets)), 0o644); err != nil {
		return nil, err
	}
	m, err := startMeshdAt(bins.meshd, cfg, filepath.Join(dir, "meshd.log"), sc.httpPort)
	if err != nil {
		return nil, err
	}
	defer m.stop()
	base := fmt.Sprintf("http://127.0.0.1:%d", sc.httpPort)
	want := sc.Targets * sc.Neighbors
	if err := waitFor(2*time.Minute, 200*time.Millisecond, func() (bool, error) {
		n, err := fleetRows(base)
		return n == want, err
	}); err != nil {
		return nil, fmt.Errorf("meshd did not hold %d sessions: %w", want, err)
	}

	ctx, cancel, err := browser.New(context.Background(), dir)
	if err != nil {
		return nil, err
	}
	defer cancel()
	run := func(d time.Duration, a chromedp.Action[chromedp.Void]) error {
		c, stop := context.WithTimeout(ctx, d)
		defer stop()
		return chromedp.Do(c, a)
	}
	res := &PageResult{}
	start := time.Now()
	if err := run(time.Minute, chromedp.Navigate(base+"/")); err != nil {
		return nil, err
	}
	listed := fmt.Sprintf(`document.getElementById("sessions").dataset.sessions === "%d" && document.querySelectorAll("tr.session").length > 0`, want)
	c, stop := context.WithTimeout(ctx, time.Minute)
	_, err = chromedp.Run(c, chromedp.Poll[bool](listed, chromedp.WithPollingInterval(10*time.Millisecond)))
	stop()
	if err != nil {
		return nil, fmt.Errorf("the page did not list %d sessions: %w", want, err)
	}
	res.FirstList = time.Since(start)
	res.Sessions = want

	read := func() (pageCounters, map[string]float64, time.Duration, time.Duration, error) {
		var pc pageCounters
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.meshdPage)`))
		if err != nil {
			return pc, nil, 0, 0, err
		}
		if err := json.Unmarshal([]byte(s), &pc); err != nil {
			return pc, nil, 0, 0, err
		}
		met, err := chromedp.Run(ctx, browser.Metrics())
		if err != nil {
			return pc, nil, 0, 0, err
		}
		bcpu, err := browser.CPU(ctx)
		if err != nil {
			return pc, nil, 0, 0, err
		}
		mcpu, err := procCPU(m.pid())
		return pc, met, bcpu, mcpu, err
	}
	p0, met0, b0, m0, err := read()
	if err != nil {
		return nil, err
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(window.meshdPage.lags.length = 0, true)`)); err != nil {
		return nil, err
	}
	t0 := time.Now()
	time.Sleep(sc.Steady)
	p1, met1, b1, m1, err := read()
	if err != nil {
		return nil, err
	}
	secs := time.Since(t0).Seconds()
	lags, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`window.meshdPage.lags`))
	if err != nil {
		return nil, err
	}
	if len(lags) > 0 {
		slices.Sort(lags)
		q := func(f float64) time.Duration {
			return time.Duration(lags[min(len(lags)-1, int(f*float64(len(lags))))] * float64(time.Millisecond))
		}
		res.LagP50, res.LagP99, res.LagMax = q(0.5), q(0.99), q(1)
	}
	res.RowUpdates = (p1.Updates - p0.Updates) / secs
	res.Frames = (p1.Renders - p0.Renders) / secs
	if f := p1.Renders - p0.Renders; f > 0 {
		res.RenderMs = (p1.RenderMs - p0.RenderMs) / f
	}
	res.ApplyMsPerS = (p1.ApplyMs - p0.ApplyMs) / secs
	res.MainThread = (met1["TaskDuration"] - met0["TaskDuration"]) / secs
	res.Script = (met1["ScriptDuration"] - met0["ScriptDuration"]) / secs
	res.Style = (met1["RecalcStyleDuration"] - met0["RecalcStyleDuration"]) / secs
	res.Layout = (met1["LayoutDuration"] - met0["LayoutDuration"]) / secs
	res.BrowserCPU = (b1 - b0).Seconds() / secs
	res.MeshdCPU = (m1 - m0).Seconds() / secs
	res.HeapMB = met1["JSHeapUsedSize"] / (1 << 20)
	if err := m.exited(); err != nil {
		return nil, fmt.Errorf("meshd exited: %w", err)
	}
	return res, nil
}

// fleetRows is how many sessions the page's API lists.
func fleetRows(base string) (int, error) {
	resp, err := http.Get(base + "/api/status/fleet?events=0")
	if err != nil {
		return 0, nil // not up yet
	}
	defer resp.Body.Close()
	var f struct {
		Rows []json.RawMessage `json:"rows"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
		return 0, fmt.Errorf("fleet: %w", err)
	}
	return len(f.Rows), nil
}
