package rib

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"testing"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
	"github.com/meshd/meshd/bmpbridge/decode"
)

func nlri(p string, id uint32) *decode.NLRI {
	pf := netip.MustParsePrefix(p)
	f := bgp.RF_IPv4_UC
	if pf.Addr().Is6() {
		f = bgp.RF_IPv6_UC
	}
	return &decode.NLRI{Family: f, IP: pf, Prefix: p, PathID: id}
}

func TestTableOutcomes(t *testing.T) {
	in := NewInterner()
	tb := NewTable(in)
	a1 := &decode.Attrs{Key: "a1", OriginAS: 1}
	a2 := &decode.Attrs{Key: "a2", OriginAS: 2}
	a1again := &decode.Attrs{Key: "a1", OriginAS: 1} // same set, decoded anew
	vpn := &decode.NLRI{Family: bgp.RF_IPv4_VPN, Prefix: "65000:1:10.0.0.0/8"}
	steps := []struct {
		name string
		do   func() (Outcome, *decode.Attrs)
		want Outcome
		old  *decode.Attrs
	}{
		{"add", func() (Outcome, *decode.Attrs) { return tb.Announce(nlri("10.0.0.0/8", 0), a1) }, Added, nil},
		{"same again", func() (Outcome, *decode.Attrs) { return tb.Announce(nlri("10.0.0.0/8", 0), a1again) }, Duplicate, a1},
		{"other path id", func() (Outcome, *decode.Attrs) { return tb.Announce(nlri("10.0.0.0/8", 5), a1) }, Added, nil},
		{"change", func() (Outcome, *decode.Attrs) { return tb.Announce(nlri("10.0.0.0/8", 0), a2) }, Changed, a1},
		{"v6", func() (Outcome, *decode.Attrs) { return tb.Announce(nlri("2001:db8::/32", 0), a2) }, Added, nil},
		{"vpn", func() (Outcome, *decode.Attrs) { return tb.Announce(vpn, a1) }, Added, nil},
		{"withdraw", func() (Outcome, *decode.Attrs) { o, a, _ := tb.Withdraw(nlri("10.0.0.0/8", 0)); return o, a }, Removed, a2},
		{"withdraw again", func() (Outcome, *decode.Attrs) { o, a, _ := tb.Withdraw(nlri("10.0.0.0/8", 0)); return o, a }, Missing, nil},
		{"withdraw vpn", func() (Outcome, *decode.Attrs) { o, a, _ := tb.Withdraw(vpn); return o, a }, Removed, a1},
	}
	for _, s := range steps {
		o, old := s.do()
		if o != s.want || old != s.old {
			t.Fatalf("%s: got %v %v, want %v %v", s.name, o, old, s.want, s.old)
		}
	}
	if tb.Len() != 2 || tb.Counts()[bgp.RF_IPv4_UC] != 1 || tb.Counts()[bgp.RF_IPv6_UC] != 1 {
		t.Errorf("len %d counts %v", tb.Len(), tb.Counts())
	}
	if in.Len() != 2 {
		t.Errorf("interned sets = %d, want 2", in.Len())
	}
	tb.Clear()
	if in.Len() != 0 || tb.Len() != 0 {
		t.Errorf("after clear: interned %d, routes %d", in.Len(), tb.Len())
	}
}

// TestInternerSlotReuse checks the slot fast path: an attribute set whose
// slot was freed and taken by another set must not be confused with it.
func TestInternerSlotReuse(t *testing.T) {
	in := NewInterner()
	tb := NewTable(in)
	a1 := &decode.Attrs{Key: "a1", OriginAS: 1}
	a2 := &decode.Attrs{Key: "a2", OriginAS: 2}
	tb.Announce(nlri("10.0.0.0/8", 0), a1)
	if a1.Slot == 0 {
		t.Fatal("a1 got no slot")
	}
	tb.Withdraw(nlri("10.0.0.0/8", 0))
	if in.Len() != 0 {
		t.Fatalf("interner holds %d sets after the last withdraw", in.Len())
	}
	tb.Announce(nlri("10.1.0.0/16", 0), a2) // takes a1's freed slot
	if a2.Slot != a1.Slot {
		t.Fatalf("slot not reused (a1 %d, a2 %d): test does not test", a1.Slot, a2.Slot)
	}
	if o, _ := tb.Announce(nlri("10.2.0.0/16", 0), a1); o != Added {
		t.Fatalf("announce a1 = %v, want Added", o)
	}
	if o, old := tb.Announce(nlri("10.2.0.0/16", 0), a1); o != Duplicate || old != a1 {
		t.Fatalf("re-announce a1 = %v %v, want Duplicate of a1", o, old)
	}
	if o, old := tb.Announce(nlri("10.1.0.0/16", 0), a1); o != Changed || old != a2 {
		t.Fatalf("a2 -> a1 = %v, old %v; want Changed from a2", o, old)
	}
	if in.Len() != 1 {
		t.Fatalf("interner holds %d sets, want 1", in.Len())
	}
	if c := tb.Counts(); c[bgp.RF_IPv4_UC] != 2 {
		t.Fatalf("counts %v, want 2 IPv4 unicast", c)
	}
	tb.Clear()
	if c, ok := tb.Counts()[bgp.RF_IPv4_UC]; !ok || c != 0 {
		t.Fatalf("after Clear counts %v, want IPv4 unicast listed with 0", tb.Counts())
	}
}

func BenchmarkAnnounce(b *testing.B) {
	tb := NewTable(NewInterner())
	a := &decode.Attrs{Key: "k"}
	ns := make([]decode.NLRI, 1<<16)
	for i := range ns {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(i >> 8), byte(i), 1, 0}), 24)
		ns[i] = decode.NLRI{Family: bgp.RF_IPv4_UC, IP: p}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tb.Announce(&ns[i&(1<<16-1)], a)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "routes/s")
}

func TestLongestCovering(t *testing.T) {
	tb := NewTable(NewInterner())
	tb.Announce(nlri("10.0.0.0/8", 0), &decode.Attrs{Key: "x", OriginAS: 1})
	tb.Announce(nlri("10.1.0.0/16", 7), &decode.Attrs{Key: "y", OriginAS: 2})
	tb.Announce(nlri("10.1.0.0/16", 9), &decode.Attrs{Key: "z", OriginAS: 3})
	tests := []struct {
		p       string
		ids     []uint32
		orEqual bool
		minBits int
		bits    int
		origins []uint32
	}{
		{"10.1.2.0/24", nil, false, 0, 8, []uint32{1}},
		{"10.1.2.0/24", []uint32{7, 9}, false, 0, 16, []uint32{2, 3}},
		{"10.1.2.0/24", []uint32{9}, false, 0, 16, []uint32{3}},
		{"10.1.0.0/16", []uint32{7}, true, 0, 16, []uint32{2}},
		{"10.1.0.0/16", []uint32{7}, false, 0, 8, []uint32{1}},
		{"10.1.2.0/24", nil, false, 9, -1, nil},
		{"11.0.0.0/24", []uint32{7}, true, 0, -1, nil},
	}
	for _, tc := range tests {
		bits, as := tb.LongestCovering(nlri(tc.p, 0), tc.ids, tc.orEqual, tc.minBits, nil)
		var origins []uint32
		for _, a := range as {
			origins = append(origins, a.OriginAS)
		}
		if bits != tc.bits || !slices.Equal(origins, tc.origins) {
			t.Errorf("LongestCovering(%s, %v, %v, %d) = %d %v, want %d %v", tc.p, tc.ids, tc.orEqual, tc.minBits, bits, origins, tc.bits, tc.origins)
		}
	}
}

// TestEach: every route a table holds comes out of Each once, with its
// family, prefix, path ID and attributes, for IP and other families.
func TestEach(t *testing.T) {
	in := NewInterner()
	tb := NewTable(in)
	a := &decode.Attrs{Key: "a", OriginAS: 7}
	routes := []*decode.NLRI{
		nlri("10.0.0.0/8", 0),
		nlri("10.1.0.0/16", 3),
		{AfiSafi: decode.AfiSafiName(bgp.RF_IPv6_UC), Family: bgp.RF_IPv6_UC, IP: netip.MustParsePrefix("2001:db8::/32")},
		{AfiSafi: decode.AfiSafiName(bgp.RF_EVPN), Family: bgp.RF_EVPN, Prefix: "[type:macadv][rd:1:1]"},
	}
	for _, n := range routes {
		tb.Announce(n, a)
	}
	got := map[string]bool{}
	tb.Each(func(n *decode.NLRI, at *decode.Attrs, _ State) {
		if at != a {
			t.Errorf("%s: attrs %v", n.Text(), at)
		}
		got[n.AfiSafi+" "+n.Text()+" "+strconv.Itoa(int(n.PathID))] = true
	})
	for _, n := range routes {
		if k := decode.AfiSafiName(n.Family) + " " + n.Text() + " " + strconv.Itoa(int(n.PathID)); !got[k] {
			t.Errorf("Each missed %s (got %v)", k, got)
		}
	}
	if len(got) != len(routes) {
		t.Errorf("Each gave %d routes, want %d: %v", len(got), len(routes), got)
	}
}

// decodedTable decodes a bmpgen full table with the decoder the bridge
// uses, returning its routes with their attribute sets.
func decodedTable(t *testing.T, c bmpgen.TableConfig) (nl []decode.NLRI, at []*decode.Attrs) {
	t.Helper()
	var buf bytes.Buffer
	if _, _, err := bmpgen.WriteTable(&buf, c); err != nil {
		t.Fatal(err)
	}
	d := decode.NewDecoder(nil)
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 8192), decode.MaxMessage)
	sc.Split(decode.Split(decode.MaxMessage))
	for sc.Scan() {
		m, err := d.Decode(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if m.Update == nil {
			continue
		}
		for _, n := range m.Update.Announce {
			nl, at = append(nl, n), append(at, m.Update.Attrs)
		}
	}
	return nl, at
}

// TestInternerReadsBack holds attribute sets as key bytes only: what the
// table hands back (old sets of withdraws and changes, covering routes)
// must equal what went in, through index deletions, slot reuse and arena
// compaction.
func TestInternerReadsBack(t *testing.T) {
	defer func(m int) { compactMin = m }(compactMin)
	compactMin = 1 << 12
	nl, at := decodedTable(t, bmpgen.TableConfig{SysName: "r", Peers: 1, Routes: 20000, V6Share: 0.2, NewAttrShare: 0.6, Seed: 5})
	in := NewInterner()
	tb := NewTable(in)
	want := map[netip.Prefix]string{}
	sets := map[string]bool{}
	for i := range nl {
		if o, _ := tb.Announce(&nl[i], at[i]); o != Added {
			t.Fatalf("route %d: %v", i, o)
		}
		if !at[i].FromKey() {
			t.Fatalf("route %d: attribute set not from the fast reader", i)
		}
		j, _ := json.Marshal(at[i])
		want[nl[i].IP] = string(j)
		sets[at[i].Key] = true
	}
	if in.Len() != len(sets) || len(in.pinned) != 0 {
		t.Fatalf("interned %d sets (%d pinned), want %d", in.Len(), len(in.pinned), len(sets))
	}
	check := func(what string, n *decode.NLRI, a *decode.Attrs) {
		t.Helper()
		j, _ := json.Marshal(a)
		if string(j) != want[n.IP] {
			t.Fatalf("%s %s: got %s, want %s", what, n.IP, j, want[n.IP])
		}
	}
	// Withdraw in a shuffled order; half way, re-announce some with the
	// set of another route (a change) and look the rest up.
	rng := rand.New(rand.NewPCG(1, 2))
	order := rng.Perm(len(nl))
	for k, i := range order {
		if k == len(order)/2 {
			if in.dead == 0 || len(in.free) == 0 {
				t.Fatalf("half way: no freed sets (dead %d, free %d)", in.dead, len(in.free))
			}
			for _, i := range order[k : k+500] {
				o, old := tb.Announce(&nl[i], at[order[0]])
				if o != Changed && !(o == Duplicate && at[i].Key == at[order[0]].Key) {
					t.Fatalf("re-announce: %v", o)
				}
				check("changed", &nl[i], old)
				j, _ := json.Marshal(at[order[0]])
				want[nl[i].IP] = string(j)
			}
			tb.Each(func(n *decode.NLRI, a *decode.Attrs, _ State) { check("each", n, a) })
		}
		o, old, _ := tb.Withdraw(&nl[i])
		if o != Removed {
			t.Fatalf("withdraw %s: %v", nl[i].IP, o)
		}
		check("withdrawn", &nl[i], old)
	}
	if in.Len() != 0 || tb.Len() != 0 || in.live != 0 {
		t.Fatalf("after all withdraws: %d sets, %d routes, %d live arena bytes", in.Len(), tb.Len(), in.live)
	}
	for i, e := range in.index {
		if e != 0 {
			t.Fatalf("index entry %d left: %x", i, e)
		}
	}
}

// TestInternerIndexDeletion drives the index's probe runs and their
// backward-shift deletion: 3000 sets, a third removed.
func TestInternerIndexDeletion(t *testing.T) {
	in := NewInterner()
	var attrs []*decode.Attrs
	for i := 0; i < 3000; i++ {
		a := &decode.Attrs{Key: "k" + strconv.Itoa(i)}
		attrs = append(attrs, a)
		in.ref(a)
	}
	// Remove every third, then all must still be found or gone.
	for i, a := range attrs {
		if i%3 == 0 {
			in.unref(a.Slot)
		}
	}
	for i, a := range attrs {
		got := in.Lookup([]byte(a.Key))
		if (i%3 == 0) != (got == nil) || (got != nil && got != a) {
			t.Fatalf("set %d: lookup %v", i, got)
		}
	}
}
