//go:build integration

package netlab_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/clab/netlab"
)

// alert is an open alert as meshd's gNMI target serves it.
type alert struct {
	router, kind, prefix, neighbor, rib, detail string
	origin                                      uint64
}

// gnmiAlerts reads every router's open alerts from meshd's gNMI target
// (/meshd/alerts); ok is false when a router could not be read.
func (e *labEnv) gnmiAlerts() (out []alert, ok bool) {
	for _, r := range e.lab.Topo.Routers {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := e.gc.Get(ctx, &gpb.GetRequest{Prefix: &gpb.Path{Target: r.Name},
			Path: []*gpb.Path{{Elem: []*gpb.PathElem{{Name: "meshd"}, {Name: "alerts"}}}}, Encoding: gpb.Encoding_PROTO})
		cancel()
		if err != nil {
			if strings.Contains(err.Error(), "NotFound") {
				continue // nothing held under /meshd/alerts of this router
			}
			return nil, false
		}
		byID := map[string]*alert{}
		for _, n := range resp.GetNotification() {
			for _, u := range n.GetUpdate() {
				elems := append(append([]*gpb.PathElem{}, n.GetPrefix().GetElem()...), u.GetPath().GetElem()...)
				id := ""
				for _, el := range elems {
					if el.GetName() == "alert" {
						id = el.GetKey()["id"]
					}
				}
				if id == "" {
					continue
				}
				a := byID[id]
				if a == nil {
					a = &alert{router: r.Name}
					byID[id] = a
				}
				v := u.GetVal()
				switch elems[len(elems)-1].GetName() {
				case "kind":
					a.kind = v.GetStringVal()
				case "prefix":
					a.prefix = v.GetStringVal()
				case "neighbor":
					a.neighbor = v.GetStringVal()
				case "rib":
					a.rib = v.GetStringVal()
				case "origin-as":
					a.origin = v.GetUintVal()
				case "detail":
					a.detail = v.GetStringVal()
				}
			}
		}
		for _, a := range byID {
			out = append(out, *a)
		}
	}
	return out, true
}

// alertsFor lists the kinds of the open alerts on prefix, each once,
// sorted, and the routers that hold them; read fails the test.
func (e *labEnv) alertsFor(prefix string) (kinds, routers []string) {
	as, ok := e.gnmiAlerts()
	if !ok {
		return []string{"(unreadable)"}, nil
	}
	for _, a := range as {
		if a.prefix != prefix {
			continue
		}
		if !slices.Contains(kinds, a.kind) {
			kinds = append(kinds, a.kind)
		}
		if !slices.Contains(routers, a.router) {
			routers = append(routers, a.router)
		}
	}
	slices.Sort(kinds)
	slices.Sort(routers)
	return kinds, routers
}

// influxAlerts counts meshd_alert points of kind on prefix in state
// (open or clear).
func (e *labEnv) influxAlerts(kind, prefix, state string) int {
	return e.influxCount(fmt.Sprintf(`SELECT count("n") FROM "meshd_alert" WHERE "kind" = '%s' AND "prefix" = '%s' AND "state" = '%s'`, kind, prefix, state))
}

// alertSteps runs the route-security faults on TestLab's lab (--rpki):
// each kind of alert must show on meshd's gNMI target and in InfluxDB
// within 2 s of the announcement (a link's, within its hold time and
// 2 s), and clear when the fault is undone. The routers' feeds are
// gobgpd's and FRR's BMP (BIRD, r5, exports none).
func alertSteps(t *testing.T, e *labEnv, page *pageEnv) {
	r1, _ := e.lab.Topo.Router("r1")
	r2, _ := e.lab.Topo.Router("r2")
	r3, _ := e.lab.Topo.Router("r3")
	const hijacked = "10.200.1.0/25"
	// left is what a gone() saw open last, for a failure's message.
	var left string

	// has: prefix's open alerts include every kind of kinds and none of
	// not, and router want holds some of them. (Other kinds may come with
	// a fault: a hijack of a whole prefix changes paths elsewhere.)
	has := func(prefix string, kinds, not []string, want string) func() bool {
		return func() bool {
			ks, rs := e.alertsFor(prefix)
			for _, k := range kinds {
				if !slices.Contains(ks, k) {
					return false
				}
			}
			for _, k := range not {
				if slices.Contains(ks, k) {
					return false
				}
			}
			return want == "" || slices.Contains(rs, want)
		}
	}
	gone := func(prefix string) func() bool {
		return func() bool {
			ks, rs := e.alertsFor(prefix)
			if len(ks) > 0 {
				left = fmt.Sprintf("%s: %v on %v", prefix, ks, rs)
			}
			return len(ks) == 0
		}
	}
	// none: no alert of kind is open on prefix. Those seen open last are
	// logged when the test fails.
	var lastSeen []alert
	t.Cleanup(func() {
		if t.Failed() && len(lastSeen) > 0 {
			t.Logf("open at the last look: %+v", lastSeen)
		}
	})
	none := func(prefix, kind string) func() bool {
		return func() bool {
			as, ok := e.gnmiAlerts()
			if !ok {
				return false
			}
			lastSeen = slices.DeleteFunc(as, func(a alert) bool { return a.prefix != prefix || a.kind != kind })
			return len(lastSeen) == 0
		}
	}
	// waitGone waits for every alert on prefix to clear, and says which
	// stayed open when they do not.
	waitGone := func(t *testing.T, limit time.Duration, what string, start, applied time.Time, prefix string) {
		t.Helper()
		left = ""
		waitDetect(t, limit, what, start, applied, gone(prefix))
		if t.Failed() {
			t.Logf("still open at the last look: %s", left)
		}
	}
	// cleared: every alert opened on prefix in InfluxDB has its clear.
	cleared := func(kind, prefix string) func() bool {
		return func() bool {
			o := e.influxAlerts(kind, prefix, "open")
			return o > 0 && e.influxAlerts(kind, prefix, "clear") == o
		}
	}
	fault := func(t *testing.T, args ...string) (start, applied time.Time) {
		t.Helper()
		f, err := netlab.ParseFault(args)
		if err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		if _, err := e.lab.Apply(context.Background(), f); err != nil {
			t.Fatal(err)
		}
		return start, time.Now()
	}

	// onPage: the status page lists an open alert of kind on prefix (on
	// router, unless empty); offPage: none on prefix.
	onPage := func(kind, prefix, router string) string {
		return fmt.Sprintf(`[...document.querySelectorAll("#alerts-table tr.alert.%s")].some((tr) => tr.children[4].textContent === %q && (%q === "" || tr.dataset.router === %q))`, kind, prefix, router, router)
	}
	offPage := func(prefix string) string {
		return fmt.Sprintf(`![...document.querySelectorAll("#alerts-table tr.alert")].some((tr) => tr.children[4].textContent === %q)`, prefix)
	}
	rpkiCount := `Number((document.querySelector("#count-rpki b") || {}).textContent || -1)`

	t.Run("alerts: hijack", func(t *testing.T) {
		// TestLab's hijack subtest has r3 originate r1's more-specific:
		// sub-prefix (an origin r1's watch does not expect) and
		// rpki-invalid (r1's ROA names r1's AS), held by r1 itself,
		// the router that holds the prefix.
		start := time.Now()
		waitDetect(t, 2*time.Second, "sub-prefix and rpki-invalid alerts on r1 for "+hijacked+" on the gNMI target", start, start,
			has(hijacked, []string{"rpki-invalid", "sub-prefix"}, nil, "r1"))
		waitDetect(t, 2*time.Second, "the alerts in InfluxDB", start, start, func() bool {
			return e.influxAlerts("sub-prefix", hijacked, "open") > 0 && e.influxAlerts("rpki-invalid", hijacked, "open") > 0
		})
		as, _ := e.gnmiAlerts()
		for _, a := range as {
			if a.prefix == hijacked && a.origin != uint64(r3.ASN) {
				t.Errorf("alert %+v: origin-as %d, want r3's %d", a, a.origin, r3.ASN)
			}
		}
		// The status page lists them, counts them, and counts the
		// invalid route in r1's session with r3's side.
		page.waitPage(t, 2*time.Second, "the hijack's alerts on r1 listed", onPage("sub-prefix", hijacked, "r1")+" && "+onPage("rpki-invalid", hijacked, "r1"))
		page.waitPage(t, 2*time.Second, "open alerts and RPKI-invalid routes counted",
			`Number(document.querySelector("#count-alerts b").textContent) >= 2 && `+rpkiCount+` > 0`)
		page.shot(t, alertsShot)
		start, applied := fault(t, "withdraw", "r3", hijacked)
		waitGone(t, 2*time.Second, "the hijack's alerts cleared on the gNMI target", start, applied, hijacked)
		page.waitPage(t, 2*time.Second, "the hijack's alerts gone from the page", offPage(hijacked))
		waitDetect(t, 2*time.Second, "the hijack's alerts cleared in InfluxDB", start, applied, func() bool {
			return cleared("sub-prefix", hijacked)() && cleared("rpki-invalid", hijacked)()
		})
	})

	t.Run("alerts: hijack from BIRD", func(t *testing.T) {
		// BIRD has no BMP: its hijack reaches meshd over its peering
		// session, and the alert is on the BIRD router itself.
		var bird netlab.Router
		for _, rt := range e.lab.Topo.Routers {
			if rt.Daemon == "bird" {
				bird = rt
			}
		}
		if bird.Name == "" {
			t.Fatal("the lab has no BIRD router: TestLab runs 5 routers")
		}
		start, applied := fault(t, "hijack", bird.Name, hijacked)
		waitDetect(t, 2*time.Second, "a sub-prefix alert on "+bird.Name+" for "+hijacked, start, applied,
			has(hijacked, []string{"sub-prefix"}, nil, bird.Name))
		start, applied = fault(t, "withdraw", bird.Name, hijacked)
		waitGone(t, 2*time.Second, "the BIRD hijack's alerts cleared", start, applied, hijacked)
	})

	t.Run("alerts: invalid", func(t *testing.T) {
		p := r2.InvalidPrefix().String()
		start, applied := fault(t, "invalid", "r2")
		// r2's own origin, a length its watch allows: rpki-invalid only.
		waitDetect(t, 2*time.Second, "an rpki-invalid alert for "+p+" on the gNMI target", start, applied, has(p, []string{"rpki-invalid"}, []string{"sub-prefix", "origin"}, ""))
		waitDetect(t, 2*time.Second, "the alert in InfluxDB", start, applied, func() bool { return e.influxAlerts("rpki-invalid", p, "open") > 0 })
		page.waitPage(t, 2*time.Second, "the rpki-invalid alert listed and the invalid routes counted", onPage("rpki-invalid", p, "")+" && "+rpkiCount+" > 0")
		start, applied = fault(t, "withdraw", "r2", p)
		waitGone(t, 2*time.Second, "the alert cleared on the gNMI target", start, applied, p)
		page.waitPage(t, 2*time.Second, "the alert gone from the page and no RPKI-invalid route counted", offPage(p)+" && "+rpkiCount+" === 0")
		waitDetect(t, 2*time.Second, "the alert cleared in InfluxDB", start, applied, cleared("rpki-invalid", p))
	})

	t.Run("alerts: origin", func(t *testing.T) {
		p := r1.OwnPrefixes()[0].String()
		start, applied := fault(t, "hijack", "r3", p)
		waitDetect(t, 2*time.Second, "origin and rpki-invalid alerts for "+p, start, applied, has(p, []string{"origin", "rpki-invalid"}, nil, ""))
		waitDetect(t, 2*time.Second, "the origin alert in InfluxDB", start, applied, func() bool { return e.influxAlerts("origin", p, "open") > 0 })
		start, applied = fault(t, "withdraw", "r3", p)
		// The kinds the hijack made clear; a whole prefix hijacked and
		// withdrawn also moves other routers' paths, and an upstream
		// alert there lasts as long as BGP takes to settle back (FRR's
		// 30 s advertisement interval: 44 s seen on BIRD's view).
		waitDetect(t, 2*time.Second, "the origin and rpki-invalid alerts cleared", start, applied, func() bool {
			return none(p, "origin")() && none(p, "rpki-invalid")()
		})
	})

	t.Run("alerts: unwatched", func(t *testing.T) {
		// r3's AS is one of the operator's: a prefix it originates that
		// no watch covers.
		const p = "10.250.3.0/24"
		start, applied := fault(t, "hijack", "r3", p)
		waitDetect(t, 2*time.Second, "unwatched alerts for "+p, start, applied, has(p, []string{"unwatched"}, nil, ""))
		start, applied = fault(t, "withdraw", "r3", p)
		waitGone(t, 2*time.Second, "the unwatched alerts cleared", start, applied, p)
		waitDetect(t, 2*time.Second, "the unwatched alerts cleared in InfluxDB", start, applied, cleared("unwatched", p))
	})

	t.Run("alerts: VRP change", func(t *testing.T) {
		// r2's ROA handed to r1's AS: every router holding r2's prefix
		// holds an RPKI-invalid route now, found by validating again only
		// the routes under the changed VRPs. stayrtr reads its file every
		// second: 1 s more.
		p := r2.OwnPrefixes()[0].String()
		roas := e.lab.Topo.ROAs()
		moved := slices.Clone(roas)
		for i := range moved {
			if moved[i].Prefix == p {
				moved[i].ASN = r1.ASN
			}
		}
		start := time.Now()
		if err := e.lab.WriteROAs(moved); err != nil {
			t.Fatal(err)
		}
		waitDetect(t, 3*time.Second, "rpki-invalid alerts for "+p+" after its VRP changed", start, time.Now(), has(p, []string{"rpki-invalid"}, nil, "r1"))
		start = time.Now()
		if err := e.lab.WriteROAs(roas); err != nil {
			t.Fatal(err)
		}
		waitDetect(t, 3*time.Second, "the rpki-invalid alerts cleared with the VRP back", start, time.Now(), none(p, "rpki-invalid"))
	})

	t.Run("alerts: upstream", func(t *testing.T) {
		// r4 (FRR) learns r1's prefix from r3 over the chord r1-r3 (path
		// r3 r1). Without the chord, r3's path is through r2 and r4's
		// upstream of r1 becomes r2's AS; with it back, r3's again.
		p := r1.OwnPrefixes()[0].String()
		start, applied := fault(t, "down", "r1", "r3")
		t.Cleanup(func() { _ = e.lab.Fault("up", "r1", "r3", "") })
		waitDetect(t, 9*time.Second+2*time.Second, "an upstream alert for "+p+" on r4", start, applied, func() bool {
			as, _ := e.gnmiAlerts()
			return slices.ContainsFunc(as, func(a alert) bool { return a.kind == "upstream" && a.prefix == p && a.router == "r4" })
		})
		waitDetect(t, 2*time.Second, "the upstream alert in InfluxDB", time.Now(), time.Now(), func() bool { return e.influxAlerts("upstream", p, "open") > 0 })
		// gobgpd's sessions come back within seconds (connect-retry 1 s).
		start, applied = fault(t, "up", "r1", "r3")
		waitDetect(t, 20*time.Second, "the upstream alerts on "+p+" cleared with the chord back", start, applied, none(p, "upstream"))
	})

	t.Run("alerts: visibility", func(t *testing.T) {
		// r1 stops originating its prefix: withdrawn at every place that
		// held it, more than the lab has routers (the watch's K).
		p := r1.OwnPrefixes()[0].String()
		start, applied := fault(t, "withdraw", "r1", p)
		t.Cleanup(func() { _ = e.lab.Hijack("r1", p) })
		waitDetect(t, 2*time.Second, "a visibility alert for "+p, start, applied, has(p, []string{"visibility"}, nil, ""))
		waitDetect(t, 2*time.Second, "the visibility alert in InfluxDB", start, applied, func() bool { return e.influxAlerts("visibility", p, "open") > 0 })
		start, applied = fault(t, "hijack", "r1", p) // originated again
		waitDetect(t, 2*time.Second, "the visibility alert cleared with "+p+" announced again", start, applied, none(p, "visibility"))
		waitDetect(t, 2*time.Second, "the visibility alert cleared in InfluxDB", start, applied, cleared("visibility", p))
	})
}
