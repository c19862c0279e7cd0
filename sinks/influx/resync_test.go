package influx

import (
	"slices"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/merge"
)

// snapshotResync is the resync the sink made before resyncRouter: the
// cache rebuilt from the core's Snapshot of the whole fleet. It is kept
// here as the reference the streamed resync must match.
func (m *mapper) snapshotResync(ups []change.Update, now time.Time) {
	clear(m.nbrs)
	clear(m.routers)
	m.markLocRIB(ups)
	for i := range ups {
		m.update(&ups[i], now)
	}
	for _, s := range m.touched {
		s.pending = nil
	}
	m.touched = m.touched[:0]
}

// resyncStore fills a core with every kind of leaf the mapper maps, in
// several routers, with key values that need escaping.
func resyncStore(t *testing.T) *merge.Core {
	t.Helper()
	core, err := merge.New()
	if err != nil {
		t.Fatal(err)
	}
	at := t0
	var changes []change.Change
	add := func(router string, src change.Source, p *gpb.Path, v *gpb.TypedValue) {
		changes = append(changes, change.Change{Router: router, Path: p, Value: v, Time: at, Source: src})
	}
	for _, router := range []string{"r1", "r2", "edge/3"} {
		for _, n := range []struct{ ni, addr string }{{"default", "192.0.2.1"}, {"default", "2001:db8::1"}, {"vrf/a]b[c\\d", "198.51.100.7"}} {
			oc := func(elems ...string) *gpb.Path { return change.NeighborPath(n.ni, n.addr, elems...) }
			md := func(elems ...string) *gpb.Path { return change.MeshdNeighborPath(n.ni, n.addr, elems...) }
			add(router, change.SourceGNMI, oc("state", "peer-as"), change.Uint(65001))
			add(router, change.SourceGNMI, oc("state", "session-state"), change.String("ESTABLISHED"))
			add(router, change.SourceGNMI, oc("state", "last-established"), change.Uint(uint64(at.Add(-time.Hour).UnixNano())))
			add(router, change.SourceGNMI, oc("state", "established-transitions"), change.Uint(3))
			add(router, change.SourceGNMI, oc("state", "messages", "received", "UPDATE"), change.Uint(1000))
			add(router, change.SourceGNMI, oc("timers", "state", "hold-time"), change.Uint(90))
			add(router, change.SourceGNMI, oc("state", "description"), change.String("not in the schema"))
			for _, afi := range []string{"openconfig-bgp-types:IPV4_UNICAST", "IPV6_UNICAST"} {
				add(router, change.SourceGNMI, change.AfiSafiPath(n.ni, n.addr, afi, "state", "prefixes", "received"), change.Uint(900))
				add(router, change.SourceGNMI, change.AfiSafiPath(n.ni, n.addr, afi, "state", "active"), change.Bool(true))
			}
			add(router, change.SourceProbe, md("probe", "state", "rtt-last"), change.Decimal(250.5, 3))
			add(router, change.SourceProbe, md("probe", "state", "hops"), change.Uint(2))
			add(router, change.SourceBMP, md("bmp", "state", "up-count"), change.Uint(2))
			add(router, change.SourceBMP, change.MustPath(change.PathKey(md("bmp", "stats"))+"/counter[type=7]/state/value"), change.Uint(900))
			add(router, change.SourceBMP, change.MustPath(change.PathKey(md("bmp", "ribs"))+"/rib[view=ADJ_RIB_IN_PRE]/state/prefixes"), change.Uint(900))
		}
		// A Loc-RIB instance peer: its OpenConfig leaves are no bgp_neighbor.
		add(router, change.SourceBMP, change.MeshdNeighborPath("default", "192.0.2.9", "bmp", "state", "peer-type"), change.String("LOC_RIB_INSTANCE"))
		add(router, change.SourceBMP, change.NeighborPath("default", "192.0.2.9", "state", "session-state"), change.String("ESTABLISHED"))
		add(router, change.SourceBMP, change.MeshdRouterPath("bmp-connected"), change.Bool(true))
	}
	if res := core.Apply(changes); res.Err != nil || res.Invalid > 0 {
		t.Fatalf("apply: %+v", res)
	}
	return core
}

func sortedLines(b []byte) []string {
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	slices.Sort(lines)
	return lines
}

// TestResyncRouterMatchesSnapshot: the streamed resync (one router at a
// time, from the store's keys) writes exactly the points the resync from
// the core's Snapshot wrote, on the same store.
func TestResyncRouterMatchesSnapshot(t *testing.T) {
	core := resyncStore(t)
	now := t0.Add(time.Minute)

	old := newMapper()
	old.snapshotResync(core.Snapshot(""), now)
	want, wantN := old.snapshot(nil, now)

	streamed := newMapper()
	var got []byte
	gotN := 0
	for _, r := range core.Routers() {
		streamed.resyncRouter(core, r, now)
		var n int
		got, n = streamed.snapshotRouter(got, r, now)
		gotN += n
	}
	if wantN < 3*3*5 {
		t.Fatalf("the Snapshot resync wrote %d points; the store should give more", wantN)
	}
	if gotN != wantN || !slices.Equal(sortedLines(got), sortedLines(want)) {
		t.Errorf("streamed resync wrote %d points:\n%s\nthe Snapshot one %d:\n%s", gotN, strings.Join(sortedLines(got), "\n"), wantN, strings.Join(sortedLines(want), "\n"))
	}
	if streamed.stats != old.stats {
		t.Errorf("stats: streamed %+v, Snapshot %+v", streamed.stats, old.stats)
	}
	for _, want := range []string{"bgp_neighbor_afi,afi_safi=IPV4_UNICAST,neighbor=198.51.100.7,network_instance=vrf/a]b[c\\d,peer_as=65001,router=edge/3 active=true,prefixes_received=900i",
		"bmp_stats,neighbor=2001:db8::1,network_instance=default,router=r1 routes_adj_rib_in=900i"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("no point %q", want)
		}
	}
	if strings.Contains(string(got), "prefixes_received=900i,session_state") || strings.Contains(string(got), "neighbor=192.0.2.9,network_instance=default,peer_as") {
		t.Errorf("the Loc-RIB peer's OpenConfig leaves were written as a BGP neighbor")
	}

	// A router the core no longer holds is forgotten by its resync.
	core.RemoveRouter("r2", change.SourceGNMI, now)
	streamed.resyncRouter(core, "r2", now)
	if out, n := streamed.snapshotRouter(nil, "r2", now); n != 0 {
		t.Errorf("removed router still written: %s", out)
	}
}

// TestKeyPaths: paths rebuilt from store keys one cached element at a
// time equal KeyPath's, escapes and all.
func TestKeyPaths(t *testing.T) {
	var kp keyPaths
	kp.reset()
	for _, tc := range []struct{ prefix, rest string }{
		{"/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=2001:db8::1]", "/state/session-state"},
		{"/network-instances/network-instance[name=vrf/a\\]b[c\\\\d]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=192.0.2.1]/afi-safis/afi-safi[afi-safi-name=IPV4_UNICAST]", "/state/prefixes/received"},
		{"", "/meshd/router/state/bmp-connected"},
		{"/a[k=x/y[z]", "/b"},
	} {
		p, ok := kp.pathOf(tc.prefix, tc.rest)
		want, err := change.KeyPath(tc.prefix + tc.rest)
		if !ok || err != nil {
			t.Fatalf("%s%s: ok %v, KeyPath error %v", tc.prefix, tc.rest, ok, err)
		}
		if change.PathKey(p) != change.PathKey(want) || len(p.GetElem()) != len(want.GetElem()) {
			t.Errorf("pathOf(%q, %q) = %v, want %v", tc.prefix, tc.rest, p, want)
		}
		for i, e := range want.GetElem() {
			if e.GetName() != p.GetElem()[i].GetName() || !maps2Equal(e.GetKey(), p.GetElem()[i].GetKey()) {
				t.Errorf("pathOf(%q, %q) elem %d = %v, want %v", tc.prefix, tc.rest, i, p.GetElem()[i], e)
			}
		}
	}
}

func maps2Equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestNoteResync: losses that name their routers ask for a resync of
// those routers only, gathered until the resync runs; one that names
// none asks for every router, and a later list does not narrow it.
func TestNoteResync(t *testing.T) {
	tests := []struct {
		name   string
		losses [][]string // each loss's LostRouters; nil: every router
		want   []string   // nil: every router
	}{
		{"one loss", [][]string{{"r1", "r2"}}, []string{"r1", "r2"}},
		{"gathered", [][]string{{"r1"}, {"r3"}}, []string{"r1", "r3"}},
		{"every router", [][]string{nil}, nil},
		{"every router stays every router", [][]string{nil, {"r1"}}, nil},
		{"a list, then every router", [][]string{{"r1"}, nil}, nil},
		{"told before", [][]string{{}}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Sink{}
			for _, l := range tt.losses {
				s.noteResync(l)
			}
			if !s.resyncDue {
				t.Fatal("no resync due")
			}
			if tt.want == nil {
				if s.resyncOnly != nil {
					t.Errorf("resync of %v, want every router", s.resyncOnly)
				}
				return
			}
			var got []string
			for r := range s.resyncOnly {
				got = append(got, r)
			}
			slices.Sort(got)
			if s.resyncOnly == nil || !slices.Equal(got, tt.want) && len(got)+len(tt.want) > 0 {
				t.Errorf("resync of %v (nil: every router), want %v", got, tt.want)
			}
		})
	}
}
