package bmpbridge

import (
	"net/netip"
	"testing"

	"github.com/meshd/meshd/change"
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
			r.b.Revalidate(vrps.Apply("cache", d), d.Reset)
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
