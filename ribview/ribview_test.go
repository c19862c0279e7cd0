package ribview

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
)

// parse reads a path in gnmic's syntax; "|" stands for "/" in keys.
func parse(s string) []*gpb.PathElem {
	return change.MustPath("/" + strings.ReplaceAll(s, "|", "/")).GetElem()
}

func pathString(es []*gpb.PathElem) string { return change.PathKey(&gpb.Path{Elem: es}) }

const rib = "network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/rib"

func TestClaims(t *testing.T) {
	for _, tc := range []struct {
		path string
		want bool
	}{
		{rib, true},
		{rib + "/afi-safis/afi-safi[afi-safi-name=IPV4_UNICAST]/ipv4-unicast/loc-rib/routes", true},
		{strings.Replace(rib, "identifier=BGP", "identifier=openconfig-policy-types:BGP", 1), true},
		{strings.Replace(rib, "identifier=BGP", "identifier=*", 1), true},
		{strings.Replace(rib, "identifier=BGP", "identifier=OSPF", 1), false},
		{"network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp", false},
		{"network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors", false},
		{"network-instances", false},
		{"*", false},
	} {
		if got := Claims(parse(tc.path)); got != tc.want {
			t.Errorf("Claims(%s) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestSelectFor(t *testing.T) {
	for _, tc := range []struct {
		path string
		want Select
	}{
		{rib, Select{NI: "default"}},
		{strings.Replace(rib, "name=default", "name=*", 1) + "/afi-safis/afi-safi[afi-safi-name=IPV6_UNICAST]", Select{NoV4: true}},
		{rib + "/afi-safis/afi-safi/ipv4-unicast/loc-rib/routes/route[prefix=10.0.0.0|24]", Select{NI: "default", NoV6: true, Views: map[string]bool{LocRIB: true}, Prefix: netip.MustParsePrefix("10.0.0.0/24")}},
		{rib + "/afi-safis/afi-safi/ipv4-unicast/neighbors/neighbor[neighbor-address=192.0.2.1]/adj-rib-in-post/routes/route[prefix=10.0.0.0|24][path-id=0]/state",
			Select{NI: "default", NoV6: true, Neighbor: "192.0.2.1", Views: map[string]bool{AdjInPost: true}, Prefix: netip.MustParsePrefix("10.0.0.0/24")}},
		{rib + "/afi-safis/afi-safi/ipv4-unicast/neighbors/neighbor/*/routes", Select{NI: "default", NoV6: true, Views: map[string]bool{AdjInPre: true, AdjInPost: true, AdjOutPre: true, AdjOutPost: true}}},
	} {
		got := selectFor(parse(tc.path))
		if got.NI != tc.want.NI || got.Neighbor != tc.want.Neighbor || got.NoV4 != tc.want.NoV4 || got.NoV6 != tc.want.NoV6 ||
			got.Prefix != tc.want.Prefix || len(got.Views) != len(tc.want.Views) {
			t.Errorf("selectFor(%s) = %+v, want %+v", tc.path, got, tc.want)
		}
		for v := range tc.want.Views {
			if !got.Views[v] {
				t.Errorf("selectFor(%s) views %v, want %v", tc.path, got.Views, tc.want.Views)
			}
		}
	}
}

func TestASSegments(t *testing.T) {
	for _, tc := range []struct {
		path string
		want []segment
	}{
		{"", nil},
		{"65001", []segment{{"AS_SEQ", []uint64{65001}}}},
		{"65001 65002 4200000000", []segment{{"AS_SEQ", []uint64{65001, 65002, 4200000000}}}},
		{"65001 {65003,65004}", []segment{{"AS_SEQ", []uint64{65001}}, {"AS_SET", []uint64{65003, 65004}}}},
		{"{1} 2 3 {4,5} 6", []segment{{"AS_SET", []uint64{1}}, {"AS_SEQ", []uint64{2, 3}}, {"AS_SET", []uint64{4, 5}}, {"AS_SEQ", []uint64{6}}}},
	} {
		got := asSegments(tc.path)
		if len(got) != len(tc.want) {
			t.Errorf("asSegments(%q) = %v, want %v", tc.path, got, tc.want)
			continue
		}
		for i := range got {
			if got[i].typ != tc.want[i].typ || !slices.Equal(got[i].members, tc.want[i].members) {
				t.Errorf("asSegments(%q) = %v, want %v", tc.path, got, tc.want)
			}
		}
	}
}

// fakeSource holds routes by router.
type fakeSource map[string][]Route

func (f fakeSource) RIBRouters() []string {
	var out []string
	for r := range f {
		out = append(out, r)
	}
	return out
}

func (f fakeSource) WalkRIB(router string, sel *Select, fn func([]Route) error) error {
	var batch []Route
	for _, r := range f[router] {
		if sel.Wants(r.NI, r.Neighbor, r.View, r.Prefix) {
			batch = append(batch, r)
		}
		if len(batch) == 2 { // small batches, to cross batch ends
			if err := fn(batch); err != nil {
				return err
			}
			batch = nil
		}
	}
	if len(batch) > 0 {
		return fn(batch)
	}
	return nil
}

func u32(n uint32) *uint32 { return &n }

func testSource() fakeSource {
	a1 := &Attrs{Index: 7, Origin: "IGP", ASPath: "65002 65003", NextHop: "192.0.2.2", MED: u32(10), Communities: []string{"65002:1"}}
	a2 := &Attrs{Index: 8, Origin: "INCOMPLETE", ASPath: "", NextHop: "192.0.2.1", LocalPref: u32(100)}
	return fakeSource{
		"r1": {
			{NI: "default", Neighbor: "192.0.2.2", View: AdjInPre, Prefix: netip.MustParsePrefix("10.2.0.0/16"), Attrs: a1},
			{NI: "default", Neighbor: "192.0.2.2", View: AdjInPost, Prefix: netip.MustParsePrefix("10.2.0.0/16"), Attrs: a1},
			{NI: "default", Neighbor: "192.0.2.2", View: AdjInPost, Prefix: netip.MustParsePrefix("10.3.0.0/16"), PathID: 2, Attrs: a1},
			{NI: "default", View: LocRIB, Prefix: netip.MustParsePrefix("10.1.0.0/16"), Attrs: a2},
			{NI: "default", Neighbor: "2001:db8::2", View: AdjInPost, Prefix: netip.MustParsePrefix("2001:db8:2::/48"), Attrs: a1},
		},
		"r2": {
			{NI: "blue", Neighbor: "192.0.2.9", View: AdjInPost, Prefix: netip.MustParsePrefix("10.9.0.0/16"), Attrs: a2},
		},
	}
}

// leaves flattens notifications to "target:/full/path=value" lines.
func leaves(ns []*gpb.Notification) []string {
	var out []string
	for _, n := range ns {
		for _, d := range n.GetDelete() {
			out = append(out, n.GetPrefix().GetTarget()+":"+pathString(append(slices.Clone(n.GetPrefix().GetElem()), d.GetElem()...))+" DELETE")
		}
		for _, u := range n.GetUpdate() {
			v := strings.TrimSpace(u.GetVal().String())
			out = append(out, n.GetPrefix().GetTarget()+":"+pathString(append(slices.Clone(n.GetPrefix().GetElem()), u.GetPath().GetElem()...))+"="+v)
		}
	}
	slices.Sort(out)
	return out
}

func walk(t *testing.T, h *Hub, want func(string) bool, paths ...string) []string {
	t.Helper()
	var pats [][]*gpb.PathElem
	for _, p := range paths {
		pats = append(pats, parse(p))
	}
	var ns []*gpb.Notification
	if err := h.Walk(context.Background(), want, pats, false, func(n *gpb.Notification) error {
		if len(n.GetUpdate()) > maxPerNotification {
			t.Errorf("a notification of %d updates", len(n.GetUpdate()))
		}
		ns = append(ns, n)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return leaves(ns)
}

func all(string) bool { return true }

func count(lines []string, sub string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

func TestWalk(t *testing.T) {
	h := NewHub(nil)
	h.SetSource(testSource())
	for _, tc := range []struct {
		name  string
		want  func(string) bool
		paths []string
		// contains: substring → times it must occur in the leaves.
		contains map[string]int
		total    int
	}{
		{"whole RIB of every router", all, []string{strings.Replace(rib, "name=default", "name=*", 1)}, map[string]int{
			// 4 routes with set 7 (5 leaves with community-index), the
			// Loc-RIB route with set 8 (5 with origin); set 7 (4 leaves, an
			// AS_SEQ of 3, communities 2), set 8 (4, no AS_PATH).
			"r1:": 4*5 + 5 + (4 + 3 + 2) + 4,
		}, -1},
		{"one prefix in adj-rib-in-post", all, []string{rib + "/afi-safis/afi-safi[afi-safi-name=IPV4_UNICAST]/ipv4-unicast/neighbors/neighbor[neighbor-address=192.0.2.2]/adj-rib-in-post/routes/route[prefix=10.2.0.0|16]"},
			map[string]int{"route[path-id=0][prefix=10.2.0.0/16]/state/": 5, "adj-rib-in-pre": 0}, 5},
		{"a leaf of every route", all, []string{rib + "/afi-safis/afi-safi/*/*/*/*/routes/route/state/attr-index"}, map[string]int{"attr-index": 4}, 4},
		{"loc-rib, with the origin key", all, []string{rib + "/afi-safis/afi-safi/ipv4-unicast/loc-rib"},
			map[string]int{"route[origin=BGP][path-id=0][prefix=10.1.0.0/16]/state/origin": 1}, 5},
		{"attr-sets alone follow every route", all, []string{rib + "/attr-sets"}, map[string]int{"attr-set[index=7]/state/index": 1, "attr-set[index=8]/state/index": 1, "routes": 0, "as-segment[index=0]/state/member": 1}, -1},
		{"another instance", all, []string{strings.Replace(rib, "name=default", "name=blue", 1)}, map[string]int{"r2:": -1, "r1:": 0}, -1},
		{"a router not wanted", func(r string) bool { return r == "r2" }, []string{strings.Replace(rib, "name=default", "name=*", 1)}, map[string]int{"r1:": 0}, -1},
		{"ipv6", all, []string{rib + "/afi-safis/afi-safi[afi-safi-name=IPV6_UNICAST]"}, map[string]int{"ipv6-unicast": 5, "2001:db8:2::/48": 5}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := walk(t, h, tc.want, tc.paths...)
			for sub, n := range tc.contains {
				if c := count(got, sub); (n >= 0 && c != n) || (n < 0 && c == 0) {
					t.Errorf("%q occurs %d times, want %d in:\n%s", sub, c, n, strings.Join(got, "\n"))
				}
			}
			if tc.total >= 0 && len(got) != tc.total {
				t.Errorf("%d leaves, want %d:\n%s", len(got), tc.total, strings.Join(got, "\n"))
			}
		})
	}
}

func TestWatch(t *testing.T) {
	h := NewHub(nil)
	h.SetSource(testSource())
	if h.Watching() {
		t.Fatal("watching with no watch")
	}
	mine := rib + "/afi-safis/afi-safi/ipv4-unicast/neighbors/neighbor/adj-rib-in-post/routes/route[prefix=10.7.0.0|16]"
	w := h.Watch(all, [][]*gpb.PathElem{parse(mine), parse(rib + "/attr-sets")})
	other := h.Watch(func(r string) bool { return r == "r2" }, [][]*gpb.PathElem{parse(strings.Replace(rib, "name=default", "name=*", 1))})
	if !h.Watching() {
		t.Fatal("not watching")
	}
	a := &Attrs{Index: 3, Origin: "IGP", ASPath: "65009", NextHop: "192.0.2.9"}
	h.Publish("r1", &Route{NI: "default", Neighbor: "192.0.2.2", View: AdjInPost, Prefix: netip.MustParsePrefix("10.8.0.0/16"), Attrs: a})
	h.Publish("r1", &Route{NI: "default", Neighbor: "192.0.2.2", View: AdjInPost, Prefix: netip.MustParsePrefix("10.7.0.0/16"), Attrs: a, Time: 42})
	h.Publish("r1", &Route{NI: "default", Neighbor: "192.0.2.2", View: AdjInPre, Prefix: netip.MustParsePrefix("10.7.0.0/16"), Attrs: a})
	h.Publish("r1", &Route{NI: "default", Neighbor: "192.0.2.2", View: AdjInPost, Prefix: netip.MustParsePrefix("10.7.0.0/16"), Time: 43})
	select {
	case <-w.Ready():
	default:
		t.Fatal("not ready")
	}
	ns, lost := w.Drain(nil)
	if lost {
		t.Fatal("lost")
	}
	got := leaves(ns)
	want := []string{
		"r1:/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/rib/afi-safis/afi-safi[afi-safi-name=IPV4_UNICAST]/ipv4-unicast/neighbors/neighbor[neighbor-address=192.0.2.2]/adj-rib-in-post/routes/route[path-id=0][prefix=10.7.0.0/16] DELETE",
	}
	if c := count(got, "route[path-id=0][prefix=10.7.0.0/16]/state/"); c != 4 {
		t.Errorf("%d route leaves, want 4:\n%s", c, strings.Join(got, "\n"))
	}
	if c := count(got, "10.8.0.0"); c != 0 {
		t.Errorf("another prefix sent:\n%s", strings.Join(got, "\n"))
	}
	if c := count(got, "attr-set[index=3] DELETE"); c != 1 {
		t.Errorf("the attr-set is not replaced once:\n%s", strings.Join(got, "\n"))
	}
	if !slices.Contains(got, want[0]) {
		t.Errorf("no withdrawal in:\n%s", strings.Join(got, "\n"))
	}
	if ns[0].GetTimestamp() != 42 || ns[len(ns)-1].GetTimestamp() != 43 {
		t.Errorf("timestamps %d..%d, want the changes' 42..43", ns[0].GetTimestamp(), ns[len(ns)-1].GetTimestamp())
	}
	if ons, _ := other.Drain(nil); len(ons) != 0 {
		t.Errorf("a watch of r2 got r1's changes: %v", leaves(ons))
	}

	// A full queue drops what it holds and says so once.
	w.max = 3
	for i := range 10 {
		h.Publish("r1", &Route{NI: "default", Neighbor: "192.0.2.2", View: AdjInPost, Prefix: netip.MustParsePrefix("10.7.0.0/16"), Attrs: a, Time: int64(i)})
	}
	ns, lost = w.Drain(nil)
	if !lost || len(ns) != 0 {
		t.Errorf("after overflow: lost %v with %d notifications, want lost and none", lost, len(ns))
	}
	h.Publish("r1", &Route{NI: "default", Neighbor: "192.0.2.2", View: AdjInPost, Prefix: netip.MustParsePrefix("10.7.0.0/16"), Time: 99})
	if ns, lost = w.Drain(nil); lost || len(ns) != 1 {
		t.Errorf("after the drain: lost %v with %d notifications, want the one change", lost, len(ns))
	}
	w.Close()
	other.Close()
	if h.Watching() {
		t.Error("watching after every watch closed")
	}
}
