package web

import (
	"slices"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
)

func up(router string, p *gpb.Path, v *gpb.TypedValue, src change.Source) change.Update {
	return change.Update{Router: router, Path: p, Value: v, Source: src, Time: time.Unix(1700000000, 0)}
}

func established(router, ni, nbr string) change.Update {
	return up(router, change.NeighborPath(ni, nbr, "state", "session-state"), change.String("ESTABLISHED"), change.SourceBMP)
}

// ids lists the sessions the page shows.
func ids(s *state) []string {
	rows, _, _, _ := s.fleet(0, false)
	var out []string
	for _, r := range rows {
		out = append(out, r.ID)
	}
	return out
}

func TestWriteDeletes(t *testing.T) {
	fleet := []change.Update{
		established("r1", "default", "192.0.2.1"),
		established("r1", "default", "192.0.2.2"),
		established("r1", "blue", "192.0.2.1"),
		established("r2", "default", "192.0.2.1"),
	}
	for _, c := range []struct {
		name string
		del  change.Update
		want []string
	}{
		{"one neighbor", up("r1", change.NeighborPath("default", "192.0.2.2"), nil, change.SourceBMP),
			[]string{"r1|blue|192.0.2.1", "r1|default|192.0.2.1", "r2|default|192.0.2.1"}},
		{"one network instance", up("r1", change.MustPath("/network-instances/network-instance[name=blue]"), nil, change.SourceGNMI),
			[]string{"r1|default|192.0.2.1", "r1|default|192.0.2.2", "r2|default|192.0.2.1"}},
		{"a router's whole tree", up("r1", &gpb.Path{}, nil, change.SourceGNMI),
			[]string{"r2|default|192.0.2.1"}},
		{"its only leaf: no longer a session", up("r2", change.NeighborPath("default", "192.0.2.1", "state", "session-state"), nil, change.SourceBMP),
			[]string{"r1|blue|192.0.2.1", "r1|default|192.0.2.1", "r1|default|192.0.2.2"}},
		{"something no session is below", up("r1", change.MeshdRouterPath("sys-name"), nil, change.SourceBMP),
			[]string{"r1|blue|192.0.2.1", "r1|default|192.0.2.1", "r1|default|192.0.2.2", "r2|default|192.0.2.1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newState(time.Hour, 10)
			s.Write(fleet, nil)
			s.take(0, true)
			s.Write([]change.Update{c.del}, nil)
			if got := ids(s); !slices.Equal(got, c.want) {
				t.Errorf("sessions %v, want %v", got, c.want)
			}
			// The live stream tells the page exactly which rows went.
			var gone []string
			for _, u := range fleet {
				ni, nbr, _, _ := change.NeighborOf(u.Path)
				if id := (key{u.Router, ni, nbr}).ID(); !slices.Contains(c.want, id) {
					gone = append(gone, id)
				}
			}
			d := s.take(0, true)
			slices.Sort(d.removed)
			slices.Sort(gone)
			if !slices.Equal(d.removed, gone) {
				t.Errorf("removed %v, want %v", d.removed, gone)
			}
		})
	}
}

func TestReplaceKeepsHistory(t *testing.T) {
	s := newState(time.Hour, 10)
	at := time.Unix(1700000000, 0)
	rtt := up("r1", change.MeshdNeighborPath("default", "192.0.2.1", "probe", "state", "rtt-last"), change.Decimal(1000, 3), change.SourceProbe)
	rtt.Time = at
	s.Write([]change.Update{established("r1", "default", "192.0.2.1"), rtt}, nil)
	s.Write(nil, []change.Event{{Router: "r1", NetworkInstance: "default", Neighbor: "192.0.2.1", Kind: change.EventMessage,
		Fields: map[string]any{"type": "NOTIFICATION", "direction": "received", "code": int64(6)}}})
	// A resync with the neighbor gone from default, and another added.
	s.Replace("r1", []change.Update{established("r1", "default", "192.0.2.1"), established("r1", "default", "192.0.2.3")})
	d, ok := s.detail(key{"r1", "default", "192.0.2.1"}, 10)
	if !ok || len(d.History.Time) != 1 || d.Notification == nil || d.Notification.Fields["code"] != int64(6) {
		t.Errorf("after Replace: ok %v, history %v, notification %+v", ok, d.History.Time, d.Notification)
	}
	if d.Row.RTTus != 0 {
		t.Errorf("rtt %v: Replace must take the snapshot's values, which have none", d.Row.RTTus)
	}
	if got := ids(s); !slices.Equal(got, []string{"r1|default|192.0.2.1", "r1|default|192.0.2.3"}) {
		t.Errorf("sessions %v", got)
	}
	s.Replace("r1", nil)
	if got := s.Routers(); len(got) != 0 {
		t.Errorf("routers after an empty Replace: %v", got)
	}
}

func TestTimeline(t *testing.T) {
	s := newState(time.Hour, 3)
	for _, k := range []change.EventKind{change.EventPeerUp, change.EventRoute, change.EventStats, change.EventProbeSample, change.EventPeerDown, change.EventHopChange, change.EventOriginChange} {
		s.Write(nil, []change.Event{{Router: "r1", Kind: k}})
	}
	// From BMP the state change is told by Peer Up and Down: no event of
	// the page's own.
	s.Write([]change.Update{established("r1", "default", "192.0.2.1")}, nil)
	s.Write([]change.Update{up("r1", change.NeighborPath("default", "192.0.2.1", "state", "session-state"), change.String("IDLE"), change.SourceBMP)}, nil)
	_, evs, _, _ := s.fleet(10, false)
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Kind)
	}
	if want := []string{"peer_down", "hop_change", "origin_change"}; !slices.Equal(kinds, want) {
		t.Errorf("timeline %v, want %v (the last 3 of the shown kinds)", kinds, want)
	}
	if evs[0].Seq != 2 || len(s.events.since(3)) != 1 {
		t.Errorf("numbering: first seq %d, since(3) %d", evs[0].Seq, len(s.events.since(3)))
	}
}

func TestRing(t *testing.T) {
	at := func(s float64) point { return point{at: int64(s * 1000), rtt: float32(s), rttPresent: true} }
	for _, c := range []struct {
		name   string
		adds   []float64
		window time.Duration
		want   []float64
	}{
		{"in order", []float64{1, 2, 3}, time.Hour, []float64{1, 2, 3}},
		{"closer than a second: the last", []float64{1, 1.5, 1.9, 3}, time.Hour, []float64{1.9, 3}},
		{"older than the window", []float64{1, 5, 10, 16}, 10 * time.Second, []float64{10, 16}},
		{"a clock stepped back starts anew after the window", []float64{100, 200, 50}, time.Hour, []float64{100, 200, 50}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r ring
			for _, a := range c.adds {
				r.add(at(a), c.window)
			}
			var got []float64
			for _, p := range r.points() {
				got = append(got, float64(p.at)/1000)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("points %v, want %v", got, c.want)
			}
		})
	}
	var r ring
	for i := range maxPoints + 10 {
		r.add(at(float64(i)), 100*time.Hour)
	}
	if ps := r.points(); len(ps) != maxPoints || ps[0].at != 10000 || ps[len(ps)-1].at != int64(maxPoints+9)*1000 {
		t.Errorf("full ring: %d points from %d to %d", len(ps), ps[0].at, ps[len(ps)-1].at)
	}
}
