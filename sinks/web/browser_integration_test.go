//go:build integration

package web

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/browser"
)

// TestPageInChromium loads the page in a real headless Chromium with
// 1,000 sessions: every one is listed, a session going down turns its
// row DOWN live, and its page plots the probe's samples.
func TestPageInChromium(t *testing.T) {
	core, _, base := start(t, Config{})
	t0 := time.Now().Add(-time.Minute)
	var cs []change.Change
	for r := range 10 {
		for n := range 100 {
			c := sessionState("default", fmt.Sprintf("192.0.%d.%d", r, n+1), "ESTABLISHED", change.SourceGNMI, t0)
			c.Router = fmt.Sprintf("r%02d", r)
			cs = append(cs, c)
		}
	}
	core.Apply(cs)
	for i := range 30 {
		at := t0.Add(time.Duration(i) * 2 * time.Second)
		rtt, hops := probe("192.0.0.1", "rtt-last", 1000+float64(i*100), at), probe("192.0.0.1", "hops", 1, at)
		rtt.Router, hops.Router = "r00", "r00"
		hops.Value = change.Uint(1)
		core.Apply([]change.Change{rtt, hops})
	}

	ctx, cancel, err := browser.New(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	ctx, stop := context.WithTimeout(ctx, 2*time.Minute)
	defer stop()

	// The table holds 1,000 sessions, of which it puts those in view in
	// the document.
	count := `document.getElementById("sessions").dataset.sessions`
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, count+` === "1000" && document.querySelectorAll("tr.session").length > 20`); err != nil {
		n, _ := chromedp.Run(ctx, chromedp.Evaluate[string](count))
		t.Fatalf("the page lists %s sessions, want 1000: %v", n, err)
	}
	// Scrolled to the end, the last session is in the document.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(window.scrollTo(0, document.body.scrollHeight), true)`)); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, `document.querySelector('tr[data-id="r09|default|192.0.9.100"]') !== null`); err != nil {
		t.Fatalf("scrolled to the end, the last session is not shown: %v", err)
	}
	// The filter by router brings r05's sessions into view.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		window.scrollTo(0, 0);
		const f = document.getElementById("f-router");
		f.value = "r05";
		f.dispatchEvent(new Event("input"));
		return true;
	})()`)); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, count+` === "100"`); err != nil {
		t.Fatalf("filtered by r05, the page does not list its 100 sessions: %v", err)
	}

	down := sessionState("default", "192.0.5.7", "IDLE", change.SourceGNMI, time.Now())
	down.Router = "r05"
	core.Apply([]change.Change{down})
	row := `document.querySelector('tr[data-id="r05|default|192.0.5.7"]')`
	if err := poll(ctx, row+`.classList.contains("DOWN")`); err != nil {
		t.Fatalf("the row did not turn DOWN: %v", err)
	}
	// The change's lag from the merge core to the page was measured.
	lags, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`window.meshdPage.lags`))
	if err != nil || len(lags) == 0 || lags[len(lags)-1] < 0 || lags[len(lags)-1] > 60000 {
		t.Errorf("the page's lags %v (%v): want the DOWN row's, from 0 to a minute", lags, err)
	}
	counts, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("counts").textContent`))
	if err != nil || counts != "10 routers1000 sessions999 healthy0 degraded1 down0 unknown" {
		t.Errorf("counts %q (%v)", counts, err)
	}

	// The probed session's page: four plots of its 30 samples.
	points := `(() => { const u = document.querySelectorAll("#p-rtt .uplot"); return u.length })()`
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/#/session/r00%7Cdefault%7C192.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, points+` === 1`); err != nil {
		t.Fatalf("no RTT plot on the session's page: %v", err)
	}
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`series.t.length`))
	if err != nil || n != 30 {
		t.Errorf("the plots hold %d points, want 30 (%v)", n, err)
	}
}

// poll waits until the page's expression is true.
func poll(ctx context.Context, expr string) error {
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(20*time.Millisecond)))
	return err
}
