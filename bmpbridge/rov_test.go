package bmpbridge

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/monitor"
	"github.com/meshd/meshd/monitor/alerts"
	"github.com/meshd/meshd/rpki"
	"github.com/meshd/meshd/rpki/rtr"
)

// TestRPKIStates feeds a table of four /16s' routes (table: 10.0-10.3,
// 256 /24s each, origin 4200000001) to a bridge validating against a
// table of VRPs, then changes the VRPs: each route's event carries its
// state, the view's counts follow, and only a change of VRPs brings
// rpki_change events (after a cache's full set, only those into or out
// of an invalid state).
func TestRPKIStates(t *testing.T) {
	const origin = 4200000001
	vrp := func(p string, maxLen uint8, as uint32) rtr.VRP {
		return rtr.VRP{Prefix: netip.MustParsePrefix(p), MaxLen: maxLen, ASN: as}
	}
	vrps := rpki.NewTable()
	vrps.Apply("cache", rtr.Delta{Reset: true, Announced: []rtr.VRP{
		vrp("10.0.0.0/16", 24, origin), // valid
		vrp("10.1.0.0/16", 16, origin), // invalid-length
		vrp("10.2.0.0/16", 24, 64999),  // invalid-origin
	}})
	r := newRig(t, Config{}, WithRPKI(vrps))
	c := r.send(t, append(upStream("edge1"), table(1024, origin)...))
	defer c.Close()

	stateOf := func(p netip.Prefix) string {
		switch p.Addr().As4()[1] {
		case 0:
			return "valid"
		case 1:
			return "invalid-length"
		case 2:
			return "invalid-origin"
		}
		return "not-found"
	}
	waitFor(t, "1024 route events", func() bool { return r.count(change.EventRoute, nil) == 1024 })
	if n := r.count(change.EventRoute, func(e change.Event) bool {
		return e.Route.RPKI != stateOf(netip.MustParsePrefix(e.Route.Prefix))
	}); n != 0 {
		t.Errorf("%d route events with the wrong rpki state", n)
	}
	leaf := func(name string) uint64 {
		v := r.val("edge1", keyed(change.MeshdNeighborPath("default", "192.0.2.2", "bmp", "ribs", "rib", "state", name), "rib", "view", "ADJ_RIB_IN_PRE"))
		if v == nil {
			return 1 << 63
		}
		return v.GetUintVal()
	}
	counts := func() [4]uint64 {
		return [4]uint64{leaf("rpki-valid"), leaf("rpki-invalid-origin"), leaf("rpki-invalid-length"), leaf("rpki-not-found")}
	}
	steps := []struct {
		name   string
		delta  rtr.Delta
		counts [4]uint64 // valid, invalid-origin, invalid-length, not-found
		events int       // rpki_change events the step adds
	}{
		{"the table as it came", rtr.Delta{}, [4]uint64{256, 256, 256, 256}, 0},
		{"serial: 10.2's VRP withdrawn, 10.3's announced", rtr.Delta{
			Withdrawn: []rtr.VRP{vrp("10.2.0.0/16", 24, 64999)},
			Announced: []rtr.VRP{vrp("10.3.0.0/16", 24, origin)},
		}, [4]uint64{512, 0, 256, 256}, 512},
		{"serial: a VRP that changes no state", rtr.Delta{
			Announced: []rtr.VRP{vrp("10.0.0.0/16", 24, 64999)},
		}, [4]uint64{512, 0, 256, 256}, 0},
		{"reset: 10.0's VRPs gone, 10.1 valid", rtr.Delta{Reset: true, Announced: []rtr.VRP{
			vrp("10.1.0.0/16", 24, origin), vrp("10.3.0.0/16", 24, origin),
		}}, [4]uint64{512, 0, 0, 512}, 256}, // 10.1 leaves invalid-length: events; 10.0 valid to not-found: none
	}
	events := 0
	for _, s := range steps {
		if d := s.delta; d.Reset || len(d.Announced)+len(d.Withdrawn) > 0 {
			// One step at a time: a pass still queued would validate
			// against the next step's table, with this step's reset flag.
			passes := r.b.rovPasses.Load()
			r.b.Revalidate(vrps.Apply("cache", d), d.Reset)
			waitFor(t, s.name+": the pass", func() bool { return r.b.rovPasses.Load() > passes })
		}
		events += s.events
		waitFor(t, s.name+": counts", func() bool { return counts() == s.counts })
		waitFor(t, s.name+": events", func() bool { return r.count(change.EventRPKIChange, nil) >= events })
		if n := r.count(change.EventRPKIChange, nil); n != events {
			t.Errorf("%s: %d rpki_change events in all, want %d", s.name, n, events)
		}
	}
	// Each event says what changed, as the VRPs say.
	wants := map[byte][2]string{2: {"invalid-origin", "not-found"}, 3: {"not-found", "valid"}, 1: {"invalid-length", "valid"}}
	for _, e := range r.eventsOf(change.EventRPKIChange) {
		f := e.Fields
		want := wants[netip.MustParsePrefix(f["prefix"].(string)).Addr().As4()[1]]
		if f["old_state"] != want[0] || f["new_state"] != want[1] || f["origin_as"] != int64(origin) || f["rib"] != "ADJ_RIB_IN_PRE" {
			t.Errorf("rpki_change %v, want %s to %s", f, want[0], want[1])
			break
		}
	}
}

// eventsOf copies the events of one kind received so far.
func (r *rig) eventsOf(kind change.EventKind) []change.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []change.Event
	for _, e := range r.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// TestAlertsFromBMP feeds a bridge that validates routes and hands them
// to the alert service (on the rig's own merge core): a quiet table
// raises nothing; a more-specific from another origin raises sub-prefix
// and rpki-invalid alerts under the router's /meshd/alerts, which its
// withdrawal clears; a VRP change that makes a held route invalid raises
// rpki-invalid for it.
func TestAlertsFromBMP(t *testing.T) {
	const origin, hijacker = 4200000001, 64666
	vrps := rpki.NewTable()
	vrps.Apply("cache", rtr.Delta{Reset: true, Announced: []rtr.VRP{{Prefix: netip.MustParsePrefix("10.0.0.0/16"), MaxLen: 24, ASN: origin}}})
	cfg := monitor.Config{Prefixes: []monitor.Watch{{Prefix: netip.MustParsePrefix("10.0.0.0/16"), ASN: []uint32{origin}, MaxLength: 24}}}
	var svc *alerts.Service
	r := newRig(t, Config{}, WithRPKI(vrps), func(b *Bridge) {
		var err error
		if svc, err = alerts.New(cfg, b.core, nil, nil); err != nil {
			t.Fatal(err)
		}
		b.obs = svc
	})
	open := func() []string {
		var ks []string
		for _, a := range svc.Open() {
			ks = append(ks, string(a.Kind)+" "+a.Prefix.String())
		}
		slices.Sort(ks)
		return ks
	}
	inTree := func(a string) bool {
		for _, al := range svc.Open() {
			if string(al.Kind)+" "+al.Prefix.String() == a {
				v := r.val("edge1", alertPath(alerts.ID(al), "kind"))
				return v != nil && v.GetStringVal() == string(al.Kind)
			}
		}
		return false
	}
	hijack := &bmpgen.Route{Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.5.0/25")}, ASPath: []uint32{42009012, hijacker}, NextHop: pAddr}
	steps := []struct {
		name   string
		stream []byte
		events int // route events by then
		want   []string
	}{
		{"a quiet table", append(upStream("edge1"), table(256, origin)...), 256, nil},
		{"a more-specific from another origin", bmpgen.AppendRouteMonitoring(nil, peer(), hijack), 257,
			[]string{"rpki-invalid 10.0.5.0/25", "sub-prefix 10.0.5.0/25"}},
		{"withdrawn", bmpgen.AppendRouteMonitoring(nil, peer(), &bmpgen.Route{Prefixes: hijack.Prefixes, Withdraw: true}), 258, nil},
	}
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, s := range steps {
		if _, err := c.Write(s.stream); err != nil {
			t.Fatal(err)
		}
		waitFor(t, s.name, func() bool { return r.count(change.EventRoute, nil) == s.events })
		if got := open(); !slices.Equal(got, s.want) {
			t.Errorf("%s: open alerts %v, want %v", s.name, got, s.want)
		}
		for _, a := range s.want {
			if !inTree(a) {
				t.Errorf("%s: %s not under /meshd/alerts", s.name, a)
			}
		}
	}
	// The VRP goes to another AS: every route of the table is invalid.
	r.b.Revalidate(vrps.Apply("cache", rtr.Delta{Reset: true, Announced: []rtr.VRP{{Prefix: netip.MustParsePrefix("10.0.0.0/16"), MaxLen: 24, ASN: hijacker}}}), true)
	waitFor(t, "256 rpki-invalid alerts", func() bool { return len(open()) == 256 })
	for _, a := range open() {
		if !strings.HasPrefix(a, "rpki-invalid ") {
			t.Fatalf("alert %s after the VRP change", a)
		}
	}
}

func alertPath(id, leaf string) *gpb.Path {
	return &gpb.Path{Elem: []*gpb.PathElem{{Name: "meshd"}, {Name: "alerts"}, {Name: "alert", Key: map[string]string{"id": id}}, {Name: "state"}, {Name: leaf}}}
}

// TestLocRIBOnePathAPrefix: a Loc-RIB whose best path changes under a new
// path ID, with no withdraw of the old one (gobgpd v4), holds one route
// for the prefix, with the new origin; a withdraw under any path ID
// removes it.
func TestLocRIBOnePathAPrefix(t *testing.T) {
	locRIB := func() *bmpgen.Peer { return &bmpgen.Peer{Type: 3, AS: 65001, BGPID: rID, Time: t0} }
	p := []netip.Prefix{netip.MustParsePrefix("10.200.1.0/24")}
	r := newRig(t, Config{})
	stream := upStream("edge1")
	stream = bmpgen.AppendRouteMonitoring(stream, locRIB(), &bmpgen.Route{Prefixes: p, PathIDs: []uint32{1}, ASPath: []uint32{42009012, 4200000001}, NextHop: pAddr})
	stream = bmpgen.AppendRouteMonitoring(stream, locRIB(), &bmpgen.Route{Prefixes: p, PathIDs: []uint32{4}, NextHop: netip.MustParseAddr("192.0.2.1")})
	c := r.send(t, stream)
	defer c.Close()
	waitFor(t, "both announcements", func() bool { return r.count(change.EventRoute, nil) == 2 })
	if n := r.b.RouteCount("edge1", "default", "0.0.0.0", "LOC_RIB"); n != 1 {
		t.Errorf("the Loc-RIB holds %d routes for one prefix, want 1", n)
	}
	if _, err := c.Write(bmpgen.AppendRouteMonitoring(nil, locRIB(), &bmpgen.Route{Prefixes: p, PathIDs: []uint32{9}, Withdraw: true})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the withdrawal", func() bool { return r.count(change.EventRoute, nil) == 3 })
	if n := r.b.RouteCount("edge1", "default", "0.0.0.0", "LOC_RIB"); n != 0 {
		t.Errorf("the Loc-RIB holds %d routes after the withdrawal, want 0", n)
	}
}

// TestOwnRoutesBeforePeerUpNoAlert: a router's own route sent before any
// Peer Up (FRR) has no origin yet; it is neither RPKI-judged nor handed
// to the monitor until the Peer Up tells the router's AS, and then it is
// valid and raises nothing.
func TestOwnRoutesBeforePeerUpNoAlert(t *testing.T) {
	own := netip.MustParsePrefix("10.200.2.0/24")
	vrps := rpki.NewTable()
	vrps.Apply("cache", rtr.Delta{Reset: true, Announced: []rtr.VRP{{Prefix: own, MaxLen: 24, ASN: 65001}}})
	var svc *alerts.Service
	r := newRig(t, Config{}, WithRPKI(vrps), func(b *Bridge) {
		var err error
		if svc, err = alerts.New(monitor.Config{Prefixes: []monitor.Watch{{Prefix: own, ASN: []uint32{65001}}}}, b.core, nil, nil); err != nil {
			t.Fatal(err)
		}
		b.obs = svc
	})
	self := &bmpgen.Peer{Flags: 0x40, Addr: netip.MustParseAddr("0.0.0.0"), Time: t0}
	stream := bmpgen.AppendInitiation(nil, "edge1", "unit test")
	stream = bmpgen.AppendRouteMonitoring(stream, self, &bmpgen.Route{Prefixes: []netip.Prefix{own}, NextHop: netip.MustParseAddr("0.0.0.0")})
	c := r.send(t, stream)
	defer c.Close()
	waitFor(t, "the own route", func() bool { return r.count(change.EventRoute, nil) == 1 })
	fams := []uint32{1<<8 | 1}
	sent := bmpgen.Open{AS: 65001, HoldTime: 90, ID: rID, Families: fams, FourOctet: true}
	recv := bmpgen.Open{AS: 42009012, HoldTime: 30, ID: pID, Families: fams, FourOctet: true}
	if _, err := c.Write(bmpgen.AppendPeerUp(nil, peer(), netip.MustParseAddr("192.0.2.1"), 179, 50000, sent, recv, "")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the own route restated, valid", func() bool {
		return r.count(change.EventRoute, func(e change.Event) bool { return e.Route.OriginAS == 65001 && e.Route.RPKI == "valid" }) == 1
	})
	if evs := r.eventsOf(change.EventAlert); len(evs) != 0 {
		t.Errorf("alert events for the router's own route: %v", evs)
	}
	if evs := r.eventsOf(change.EventRoute); evs[0].Route.RPKI != "not-found" {
		t.Errorf("the own route before the Peer Up: rpki %q, want not-found (no origin yet)", evs[0].Route.RPKI)
	}
}
