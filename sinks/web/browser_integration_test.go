//go:build integration

package web

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	gpb "github.com/openconfig/gnmi/proto/gnmi"

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
	if err != nil || counts != "10 routers1000 sessions999 healthy0 degraded1 down0 unknown0 open alerts" {
		t.Errorf("counts %q (%v)", counts, err)
	}

	// A route alert opens under r05 and RPKI finds routes of one of its
	// sessions invalid: the page lists the alert, counts it and the
	// invalid routes (post-policy's, not pre added to post), then the
	// alert clears.
	id := "origin 10.0.5.0/24 10.0.5.0/24 default 192.0.5.9 ADJ_RIB_IN_POST"
	core.Apply(alertChanges("r05", id, "origin", "192.0.5.9", time.Now()))
	core.Apply(ribInvalid("r05", "192.0.5.9", map[string]uint64{"ADJ_RIB_IN_PRE": 4, "ADJ_RIB_IN_POST": 3}))
	alertRow := `document.querySelector('#alerts-table tr.alert[data-router="r05"]')`
	if err := poll(ctx, alertRow+` !== null && !document.getElementById("alerts").hidden`); err != nil {
		t.Fatalf("the page does not list the open alert: %v", err)
	}
	if text, err := chromedp.Run(ctx, chromedp.Evaluate[string](alertRow+`.textContent`)); err != nil ||
		!strings.Contains(text, "origin") || !strings.Contains(text, "10.0.5.0/24") || !strings.Contains(text, "65666") {
		t.Errorf("the alert's row reads %q (%v): want its kind, prefix and origin", text, err)
	}
	if err := poll(ctx, `document.getElementById("counts").textContent.endsWith("1 open alerts3 RPKI-invalid routes")`); err != nil {
		counts, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("counts").textContent`))
		t.Errorf("counts %q: want 1 open alert and 3 RPKI-invalid routes: %v", counts, err)
	}
	cell := `document.querySelector('tr[data-id="r05|default|192.0.5.9"]').children[11]`
	if text, err := chromedp.Run(ctx, chromedp.Evaluate[string](cell+`.textContent + " " + `+cell+`.title`)); err != nil || text != "3 pre-policy: 4" {
		t.Errorf("the session's RPKI invalid cell reads %q (%v), want 3 with pre-policy 4 in its title", text, err)
	}
	core.Apply([]change.Change{{Router: "r05", Path: alertPath(id), Time: time.Now(), Source: change.SourceMeshd}})
	if err := poll(ctx, `document.getElementById("alerts").hidden && `+alertRow+` === null`); err != nil {
		t.Errorf("the alert stayed on the page after it cleared: %v", err)
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

func alertPath(id string, leaf ...string) *gpb.Path {
	p := &gpb.Path{Elem: []*gpb.PathElem{{Name: "meshd"}, {Name: "alerts"}, {Name: "alert", Key: map[string]string{"id": id}}}}
	for _, l := range leaf {
		p.Elem = append(p.Elem, &gpb.PathElem{Name: l})
	}
	return p
}

// alertChanges are an alert's opening leaves as monitor/alerts writes
// them.
func alertChanges(router, id, kind, neighbor string, at time.Time) []change.Change {
	var cs []change.Change
	set := func(leaf string, v *gpb.TypedValue) {
		cs = append(cs, change.Change{Router: router, Path: alertPath(id, "state", leaf), Value: v, Time: at, Source: change.SourceMeshd})
	}
	set("id", change.String(id))
	set("kind", change.String(kind))
	set("watched-prefix", change.String("10.0.5.0/24"))
	set("prefix", change.String("10.0.5.0/24"))
	set("network-instance", change.String("default"))
	set("neighbor", change.String(neighbor))
	set("rib", change.String("ADJ_RIB_IN_POST"))
	set("origin-as", change.Uint(65666))
	set("detail", change.String("10.0.5.0/24 from AS 65666, want AS 65005"))
	set("opened", change.Uint(uint64(at.UnixNano())))
	return cs
}

// ribInvalid sets a session's RIB views' counts of invalid routes, all
// of them invalid by origin.
func ribInvalid(router, neighbor string, views map[string]uint64) []change.Change {
	var cs []change.Change
	for view, n := range views {
		for leaf, v := range map[string]uint64{"view": 0, "rpki-invalid-origin": n, "rpki-invalid-length": 0} {
			p := change.MeshdNeighborPath("default", neighbor, "bmp", "ribs", "rib", "state", leaf)
			for _, e := range p.Elem {
				if e.Name == "rib" {
					e.Key = map[string]string{"view": view}
				}
			}
			val := change.Uint(v)
			if leaf == "view" {
				val = change.String(view)
			}
			cs = append(cs, change.Change{Router: router, Path: p, Value: val, Time: time.Now(), Source: change.SourceBMP})
		}
	}
	return cs
}
