package merge

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ondatra/gnmi/oc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/change"
	mygot "github.com/meshd/meshd/ygot"
)

func newCore(t testing.TB, opts ...Option) *Core {
	t.Helper()
	c, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var t0 = time.Unix(1_700_000_000, 0)

func ch(src change.Source, at time.Duration, p *gnmi.Path, v *gnmi.TypedValue) change.Change {
	return change.Change{Router: "r1", Path: p, Value: v, Time: t0.Add(at), Source: src}
}

func TestApplyFillsOpenConfigTree(t *testing.T) {
	c := newCore(t)
	res := c.Apply([]change.Change{
		ch(change.SourceBMP, 0, change.NeighborPath("default", "10.0.0.2", "state", "session-state"), change.String("ESTABLISHED")),
		ch(change.SourceBMP, 0, change.NeighborPath("default", "10.0.0.2", "state", "peer-as"), change.Uint(42009012)),
		ch(change.SourceProbe, 0, change.MeshdNeighborPath("default", "10.0.0.2", "probe", "state", "rtt-last"), change.Decimal(20123.456, 3)),
	})
	if res.Err != nil || res.Applied != 3 {
		t.Fatalf("Apply = %+v", res)
	}
	ok := c.View("r1", func(o *oc.Root, m *mygot.Root) {
		n := o.GetNetworkInstance("default").GetProtocol(oc.PolicyTypes_INSTALL_PROTOCOL_TYPE_BGP, "BGP").GetBgp().GetNeighbor("10.0.0.2")
		if n.GetSessionState() != oc.Bgp_Neighbor_SessionState_ESTABLISHED {
			t.Errorf("session-state = %v", n.GetSessionState())
		}
		if n.GetPeerAs() != 42009012 {
			t.Errorf("peer-as = %d", n.GetPeerAs())
		}
		rtt := m.GetMeshd().GetNetworkInstance("default").GetNeighbor("10.0.0.2").GetProbe().GetRttLast()
		if rtt != 20123.456 {
			t.Errorf("rtt-last = %v", rtt)
		}
	})
	if !ok {
		t.Fatal("router r1 missing")
	}
}

func TestPrecedence(t *testing.T) {
	state := change.NeighborPath("default", "10.0.0.2", "state", "session-state")
	tests := []struct {
		name    string
		first   change.Change
		second  change.Change
		release bool
		want    string
	}{
		{"gnmi beats bmp", ch(change.SourceGNMI, 0, state, change.String("ESTABLISHED")), ch(change.SourceBMP, time.Second, state, change.String("IDLE")), false, "ESTABLISHED"},
		{"bmp yields to gnmi", ch(change.SourceBMP, 0, state, change.String("IDLE")), ch(change.SourceGNMI, -time.Second, state, change.String("ESTABLISHED")), false, "ESTABLISHED"},
		{"newer beats older", ch(change.SourceGNMI, 0, state, change.String("ACTIVE")), ch(change.SourceGNMI, time.Second, state, change.String("ESTABLISHED")), false, "ESTABLISHED"},
		{"older from another source of the rank loses", ch(change.SourceProbe, time.Second, state, change.String("ACTIVE")), ch(change.SourceMeshd, 0, state, change.String("ESTABLISHED")), false, "ACTIVE"},
		// One source's changes come in its router's order: a time that
		// goes back is its clock stepping back, and the change is news.
		{"a source's clock stepping back", ch(change.SourceGNMI, time.Hour, state, change.String("ACTIVE")), ch(change.SourceGNMI, 0, state, change.String("ESTABLISHED")), false, "ESTABLISHED"},
		{"released gnmi yields to bmp", ch(change.SourceGNMI, 0, state, change.String("ESTABLISHED")), ch(change.SourceBMP, time.Second, state, change.String("IDLE")), true, "IDLE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCore(t, WithoutVerdict())
			c.Apply([]change.Change{tc.first})
			if tc.release {
				c.ReleaseSource("r1", tc.first.Source)
			}
			c.Apply([]change.Change{tc.second})
			v, _, _, ok := c.Leaf("r1", state)
			if !ok || v.GetStringVal() != tc.want {
				t.Fatalf("session-state = %v, want %s", v, tc.want)
			}
		})
	}
}

func TestInvalidChangesAreCountedNotApplied(t *testing.T) {
	c := newCore(t)
	res := c.Apply([]change.Change{
		ch(change.SourceGNMI, 0, change.MustPath("/network-instances/network-instance[name=default]/no-such-leaf"), change.String("x")),
		ch(change.SourceGNMI, 0, change.NeighborPath("default", "10.0.0.2", "state", "peer-as"), change.String("not a number")),
		{Path: change.NeighborPath("default", "10.0.0.2", "state", "peer-as"), Value: change.Uint(1)},
	})
	if res.Invalid != 3 || res.Applied != 0 {
		t.Fatalf("Apply = %+v, want 3 invalid", res)
	}
	if !errors.Is(res.Err, ErrSchema) || !errors.Is(res.Err, ErrNoRouter) {
		t.Fatalf("Err = %v, want ErrSchema and ErrNoRouter", res.Err)
	}
}

func TestOnlyChangedLeavesArePublished(t *testing.T) {
	c := newCore(t, WithoutVerdict())
	sub := c.Subscribe("t", 16)
	p := change.NeighborPath("default", "10.0.0.2", "state", "peer-as")
	c.Apply([]change.Change{ch(change.SourceBMP, 0, p, change.Uint(65001))})
	c.Apply([]change.Change{ch(change.SourceBMP, time.Second, p, change.Uint(65001))})
	c.Apply([]change.Change{ch(change.SourceBMP, 2*time.Second, p, change.Uint(65002))})
	var got []uint64
	for len(got) < 2 {
		b := <-sub.C()
		for _, u := range b.Updates {
			got = append(got, u.Value.GetUintVal())
		}
	}
	select {
	case b := <-sub.C():
		t.Fatalf("unexpected extra batch %+v", b)
	default:
	}
	if got[0] != 65001 || got[1] != 65002 {
		t.Fatalf("published %v", got)
	}
}

func TestDeleteNeighborRemovesSubtree(t *testing.T) {
	c := newCore(t)
	c.Apply([]change.Change{
		ch(change.SourceGNMI, 0, change.NeighborPath("default", "10.0.0.2", "state", "session-state"), change.String("ESTABLISHED")),
		ch(change.SourceGNMI, 0, change.NeighborPath("default", "10.0.0.3", "state", "session-state"), change.String("ESTABLISHED")),
	})
	sub := c.Subscribe("t", 16)
	c.Apply([]change.Change{{Router: "r1", Path: change.NeighborPath("default", "10.0.0.2"), Time: t0.Add(time.Second), Source: change.SourceGNMI}})
	b := <-sub.C()
	deleted := 0
	for _, u := range b.Updates {
		if u.Value == nil {
			deleted++
		}
	}
	if deleted == 0 {
		t.Fatalf("no deletes published: %+v", b.Updates)
	}
	c.View("r1", func(o *oc.Root, _ *mygot.Root) {
		nb := o.GetNetworkInstance("default").GetProtocol(oc.PolicyTypes_INSTALL_PROTOCOL_TYPE_BGP, "BGP").GetBgp()
		if nb.GetNeighbor("10.0.0.2") != nil {
			t.Error("withdrawn neighbor still in the tree")
		}
		if nb.GetNeighbor("10.0.0.3") == nil {
			t.Error("other neighbor was removed too")
		}
	})
	for _, u := range c.Snapshot("r1") {
		if ni, addr, _, ok := change.NeighborOf(u.Path); ok && ni == "default" && addr == "10.0.0.2" {
			t.Errorf("leaf of deleted neighbor remains: %s", u.Key)
		}
	}
}

func TestSlowConsumerDoesNotBlockOthers(t *testing.T) {
	c := newCore(t, WithoutVerdict())
	slow := c.Subscribe("slow", 1)
	fast := c.Subscribe("fast", 1024)
	const n = 500
	var wg sync.WaitGroup
	got := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := range fast.C() {
			got += len(b.Updates)
		}
	}()
	for i := 0; i < n; i++ {
		c.Apply([]change.Change{ch(change.SourceBMP, time.Duration(i), change.NeighborPath("default", "10.0.0.2", "state", "peer-as"), change.Uint(uint64(i+1)))})
	}
	fast.Close()
	wg.Wait()
	if got != n {
		t.Errorf("fast consumer got %d updates, want %d", got, n)
	}
	if slow.Dropped() != n-1 {
		t.Errorf("slow consumer dropped %d, want %d", slow.Dropped(), n-1)
	}
	<-slow.C()
	c.Apply([]change.Change{ch(change.SourceBMP, time.Hour, change.NeighborPath("default", "10.0.0.2", "state", "peer-as"), change.Uint(7))})
	if b := <-slow.C(); b.Lost != n-1 {
		t.Errorf("Lost = %d, want %d", b.Lost, n-1)
	}
}

func TestVerdict(t *testing.T) {
	c := newCore(t)
	health := change.MeshdNeighborPath("default", "10.0.0.2", "verdict", "state", "health")
	c.Apply([]change.Change{ch(change.SourceBMP, 0, change.NeighborPath("default", "10.0.0.2", "state", "session-state"), change.String("ESTABLISHED"))})
	if v, _, _, _ := c.Leaf("r1", health); v.GetStringVal() != "HEALTHY" {
		t.Fatalf("health = %v, want HEALTHY", v)
	}
	c.Apply([]change.Change{ch(change.SourceBMP, time.Second, change.NeighborPath("default", "10.0.0.2", "state", "session-state"), change.String("IDLE"))})
	if v, _, _, _ := c.Leaf("r1", health); v.GetStringVal() != "DOWN" {
		t.Fatalf("health = %v, want DOWN", v)
	}
	c.Apply([]change.Change{
		ch(change.SourceBMP, 2*time.Second, change.NeighborPath("default", "10.0.0.2", "state", "session-state"), change.String("ESTABLISHED")),
		ch(change.SourceProbe, 2*time.Second, change.MeshdNeighborPath("default", "10.0.0.2", "probe", "state", "last-hop-change"), change.Uint(uint64(t0.Add(2*time.Second).UnixNano()))),
	})
	if v, _, _, _ := c.Leaf("r1", health); v.GetStringVal() != "DEGRADED" {
		t.Fatalf("health = %v, want DEGRADED", v)
	}
	src, _, _, _ := c.Leaf("r1", change.MeshdNeighborPath("default", "10.0.0.2", "verdict", "state", "sources"))
	if n := len(src.GetLeaflistVal().GetElement()); n != 2 {
		t.Fatalf("sources = %v, want bmp and probe", src)
	}
}

func TestConcurrentApply(t *testing.T) {
	c := newCore(t)
	sub := c.Subscribe("drain", 64)
	go func() {
		for range sub.C() {
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				c.Apply([]change.Change{{Router: "r1", Path: change.NeighborPath("default", "10.0.0.2", "state", "peer-as"), Value: change.Uint(uint64(i)), Time: t0.Add(time.Duration(i)), Source: change.SourceGNMI}})
				_ = c.Snapshot("")
				c.View("r1", func(*oc.Root, *mygot.Root) {})
			}
		}(w)
	}
	wg.Wait()
	sub.Close()
}

func BenchmarkApply(b *testing.B) {
	c := newCore(b, WithoutVerdict())
	paths := make([]*gnmi.Path, 100)
	for i := range paths {
		paths[i] = change.NeighborPath("default", "10.0.0."+string(rune('0'+i%10))+string(rune('0'+i/10)), "state", "messages", "received", "UPDATE")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Apply([]change.Change{{Router: "r1", Path: paths[i%len(paths)], Value: change.Uint(uint64(i)), Time: t0.Add(time.Duration(i)), Source: change.SourceGNMI}})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
}

func TestRemoveRouterTakesTheVerdictAlong(t *testing.T) {
	c := newCore(t)
	c.Apply([]change.Change{ch(change.SourceBMP, 0, change.NeighborPath("default", "10.0.0.2", "state", "session-state"), change.String("ESTABLISHED"))})
	if len(c.Snapshot("r1")) < 2 {
		t.Fatal("verdict leaves missing")
	}
	c.RemoveRouter("r1", change.SourceBMP, t0.Add(time.Second))
	if left := c.Snapshot("r1"); len(left) != 0 {
		t.Fatalf("leaves left after RemoveRouter: %v", left)
	}
	if rs := c.Routers(); len(rs) != 0 {
		t.Fatalf("routers left: %v", rs)
	}
}

// BenchmarkNewNeighbors measures filling the tree with new neighbors, the
// cost of a router's first sync (every leaf is new).
func BenchmarkNewNeighbors(b *testing.B) {
	leaves := []struct {
		elems []string
		v     *gnmi.TypedValue
	}{
		{[]string{"state", "session-state"}, change.String("ESTABLISHED")},
		{[]string{"state", "peer-as"}, change.Uint(65001)},
		{[]string{"state", "local-as"}, change.Uint(65000)},
		{[]string{"state", "established-transitions"}, change.Uint(1)},
		{[]string{"state", "last-established"}, change.Uint(1700000000000000000)},
		{[]string{"state", "messages", "received", "UPDATE"}, change.Uint(10)},
		{[]string{"state", "messages", "sent", "UPDATE"}, change.Uint(10)},
		{[]string{"timers", "state", "hold-time"}, change.Uint(90)},
		{[]string{"timers", "state", "negotiated-hold-time"}, change.Uint(90)},
		{[]string{"state", "description"}, change.String("peer")},
	}
	c := newCore(b)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		addr := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		chs := make([]change.Change, len(leaves))
		for j, l := range leaves {
			chs[j] = change.Change{Router: fmt.Sprintf("r%d", i%200), Path: change.NeighborPath("default", addr, l.elems...), Value: l.v, Time: t0, Source: change.SourceGNMI}
		}
		if res := c.Apply(chs); res.Err != nil {
			b.Fatal(res.Err)
		}
		n += len(chs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "leaves/s")
}

func TestHopChangeIsAnEvent(t *testing.T) {
	c := newCore(t, WithoutVerdict())
	sub := c.Subscribe("t", 16)
	hops := change.MeshdNeighborPath("default", "10.0.0.2", "probe", "state", "hops")
	c.Apply([]change.Change{ch(change.SourceProbe, 0, hops, change.Uint(0))})
	c.Apply([]change.Change{ch(change.SourceProbe, time.Second, hops, change.Uint(0))})
	c.Apply([]change.Change{ch(change.SourceProbe, 2*time.Second, hops, change.Uint(1))})
	var evs []change.Event
	for i := 0; i < 2; i++ {
		evs = append(evs, (<-sub.C()).Events...)
	}
	if len(evs) != 1 || evs[0].Kind != change.EventHopChange || evs[0].Fields["old_hops"] != int64(0) || evs[0].Fields["new_hops"] != int64(1) || evs[0].Neighbor != "10.0.0.2" {
		t.Fatalf("events = %+v, want one hop change 0 -> 1", evs)
	}
}

// A value-mode leaf holds its value inline, in a box, or as its
// TypedValue, and gives back exactly what it was given.
func TestValue(t *testing.T) {
	tests := []struct {
		a, b *gnmi.TypedValue
		want bool
	}{
		{change.Uint(1), change.Uint(1), true},
		{change.Uint(1), change.Uint(2), false},
		{change.Uint(1), change.Int(1), false},
		{change.Uint(1<<48 - 1), change.Uint(1<<48 - 1), true},
		{change.Uint(1 << 48), change.Uint(1 << 48), true},
		{change.Uint(1 << 48), change.Uint(0), false},
		{change.Uint(math.MaxUint64), change.Uint(math.MaxUint64), true},
		{change.Int(-3), change.Int(-3), true},
		{change.Int(-3), change.Int(3), false},
		{change.Int(1 << 50), change.Int(1 << 50), true},
		{change.String("a"), change.String("a"), true},
		{change.String("a"), change.String("b"), false},
		{change.Bool(true), change.Bool(true), true},
		{change.Bool(true), change.Bool(false), false},
		{change.Bool(true), change.String("true"), false},
		{change.StringList([]string{"a", "b"}), change.StringList([]string{"a", "b"}), true},
		{change.StringList([]string{"a", "b"}), change.StringList([]string{"b", "a"}), false},
		{change.Decimal(1.5, 3), change.Decimal(1.5, 3), true},
		{change.Decimal(1.5, 3), change.Decimal(1.25, 3), false},
		{change.Float(2.5), change.Float(2.5), true},
		{change.Float(2.5), change.Float(-2.5), false},
		{&gnmi.TypedValue{Value: &gnmi.TypedValue_DoubleVal{DoubleVal: 0.1}}, &gnmi.TypedValue{Value: &gnmi.TypedValue_DoubleVal{DoubleVal: 0.1}}, true},
		{&gnmi.TypedValue{Value: &gnmi.TypedValue_DoubleVal{DoubleVal: 0.1}}, change.Uint(math.Float64bits(0.1)), false},
		{change.Int(-1), change.Uint(math.MaxUint64), false},
		{change.String(""), change.String(""), true},
	}
	for _, tt := range tests {
		// Each value is set over a leaf that held another of each
		// kind before, as a leaf's values follow one another.
		for _, before := range []*gnmi.TypedValue{nil, change.Uint(1 << 60), change.Int(-1), change.String("x")} {
			var l leaf
			if before != nil {
				l.setValue(before)
			}
			l.setValue(tt.a)
			if got := l.equal(tt.b); got != tt.want {
				t.Errorf("leaf holding %v (after %v): equal(%v) = %v, want %v", tt.a, before, tt.b, got, tt.want)
			}
			if back := l.typed(); !proto.Equal(back, tt.a) {
				t.Errorf("leaf holding %v (after %v): typed() = %v", tt.a, before, back)
			}
		}
	}
}

// A big number's next value is written in the box the leaf has (the
// store moves leaves but never keeps two copies of one).
func TestValueBox(t *testing.T) {
	var l leaf
	l.setValue(change.Uint(1 << 60))
	box, next := l.ref, change.Uint(1<<60+2)
	if n := testing.AllocsPerRun(100, func() { l.setValue(next) }); n != 0 || l.ref != box || l.num() != 1<<60+2 {
		t.Errorf("a big number's next value: %v allocations, box kept %v, %d", n, l.ref == box, l.num())
	}
}

// Keys are made while a consumer that asked for them is subscribed, and
// only then; deletes carry their key either way.
func TestKeysOnRequest(t *testing.T) {
	c := newCore(t, WithoutVerdict())
	plain := c.Subscribe("plain", 16)
	p := change.NeighborPath("default", "10.0.0.2", "state", "peer-as")
	next := func(s *Subscription) change.Update {
		t.Helper()
		select {
		case b := <-s.C():
			return b.Updates[0]
		case <-time.After(5 * time.Second):
			t.Fatal("no batch")
		}
		return change.Update{}
	}
	c.Apply([]change.Change{ch(change.SourceBMP, 0, p, change.Uint(1))})
	if u := next(plain); u.Key != "" {
		t.Errorf("key %q made with no consumer asking", u.Key)
	}
	keyed := c.Subscribe("keyed", 16, WithKeys())
	c.Apply([]change.Change{ch(change.SourceBMP, time.Second, p, change.Uint(2))})
	if u, v := next(plain), next(keyed); u.Key != change.PathKey(p) || v.Key != u.Key {
		t.Errorf("keys %q and %q, want %q", u.Key, v.Key, change.PathKey(p))
	}
	keyed.Close()
	c.Apply([]change.Change{ch(change.SourceBMP, 2*time.Second, p, change.Uint(3))})
	if u := next(plain); u.Key != "" {
		t.Errorf("key %q made after the consumer that asked left", u.Key)
	}
}

// The verdict's updates are published with the paths meshd's model gives
// them, built from the source's own elements, or made anew when there are
// none to take.
func TestVerdictPaths(t *testing.T) {
	want := change.PathKey(change.MeshdNeighborPath("vrf-1", "2001:db8::1", "verdict", "state", "health"))
	if got := change.PathKey(verdictPath(&nbrInfo{}, nbrKey{"r1", "vrf-1", "2001:db8::1"}, "health")); got != want {
		t.Errorf("verdictPath without elements = %s, want %s", got, want)
	}
	for _, p := range []*gnmi.Path{
		change.NeighborPath("vrf-1", "2001:db8::1", "state", "session-state"),
		change.MeshdNeighborPath("vrf-1", "2001:db8::1", "probe", "state", "samples"),
	} {
		c := newCore(t)
		sub := c.Subscribe("t", 16, WithKeys())
		if res := c.Apply([]change.Change{ch(change.SourceGNMI, 0, p, change.Uint(1))}); res.Err != nil && res.Applied == 0 {
			// session-state takes a string
			c.Apply([]change.Change{ch(change.SourceGNMI, 0, p, change.String("ESTABLISHED"))})
		}
		var got []string
		select {
		case b := <-sub.C():
			for _, u := range b.Updates {
				if u.Key != change.PathKey(u.Path) {
					t.Errorf("key %s for path %s", u.Key, change.PathKey(u.Path))
				}
				got = append(got, change.PathKey(u.Path))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: nothing published", change.PathKey(p))
		}
		if !slices.Contains(got, want) {
			t.Errorf("after %s: published %v, want %s among them", change.PathKey(p), got, want)
		}
	}
}

// Paths of one batch that share their leading elements (as a
// notification's do) get the same keys as paths made apart: the shared
// part of the key is kept only where the elements are the very same.
func TestSharedElementKeys(t *testing.T) {
	pre := change.NeighborPath("default", "10.0.0.1").GetElem()
	other := change.NeighborPath("default", "10.0.0.2").GetElem()
	on := func(base []*gnmi.PathElem, names ...string) *gnmi.Path {
		p := &gnmi.Path{Elem: slices.Clip(base)}
		for _, n := range names {
			p.Elem = append(p.Elem, &gnmi.PathElem{Name: n})
		}
		return p
	}
	batch := []change.Change{
		ch(change.SourceGNMI, 0, on(pre, "state", "peer-as"), change.Uint(1)),
		ch(change.SourceGNMI, 0, on(pre, "state", "local-as"), change.Uint(2)),
		ch(change.SourceGNMI, 0, on(pre, "openconfig-bgp:timers", "state", "hold-time"), change.Uint(90)),
		ch(change.SourceGNMI, 0, on(pre, "timers", "state", "keepalive-interval"), change.Uint(30)),
		ch(change.SourceGNMI, 0, on(other, "state", "peer-as"), change.Uint(3)),
		ch(change.SourceGNMI, 0, on(pre[:4], "bgp", "global", "state", "as"), change.Uint(65000)),
		ch(change.SourceGNMI, 0, on(pre, "state", "peer-as"), change.Uint(4)),
	}
	// With the verdict: its bookkeeping follows each leaf's neighbor.
	batch = append(batch,
		ch(change.SourceGNMI, 0, on(other, "state", "session-state"), change.String("ESTABLISHED")),
		change.Change{Router: "r1", Path: on(pre, "state", "local-as"), Time: t0, Source: change.SourceGNMI},
		ch(change.SourceGNMI, 0, on(pre, "state", "session-state"), change.String("IDLE")),
		ch(change.SourceGNMI, 0, on(other, "state", "local-as"), change.Uint(5)),
	)
	shared, apart := newCore(t), newCore(t)
	if res := shared.Apply(batch); res.Err != nil {
		t.Fatal(res.Err)
	}
	for _, c := range batch {
		c.Path = proto.Clone(c.Path).(*gnmi.Path)
		if res := apart.Apply([]change.Change{c}); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	dump := func(c *Core) []string {
		var out []string
		for _, u := range c.Snapshot("r1") {
			out = append(out, fmt.Sprintf("%s=%v", u.Key, u.Value))
		}
		slices.Sort(out)
		return out
	}
	if got, want := dump(shared), dump(apart); !slices.Equal(got, want) || len(got) != 16 {
		t.Errorf("keys from shared elements:\n%v\nwant\n%v", got, want)
	}
}

// The OpenConfig schema is the oc package's own tree, not a second copy of
// it: a copy is 12 MiB held for meshd's lifetime.
func TestSchemasShareOCTree(t *testing.T) {
	ocs, ms, err := Schemas()
	if err != nil {
		t.Fatal(err)
	}
	if ocs.RootSchema() == nil || ms.RootSchema() == nil {
		t.Fatal("a schema without a root")
	}
	for _, name := range []string{"Root", "NetworkInstance_Protocol_Bgp_Neighbor"} {
		if ocs.SchemaTree[name] == nil || ocs.SchemaTree[name] != oc.SchemaTree[name] {
			t.Errorf("schema entry %s: %p, the oc package's is %p", name, ocs.SchemaTree[name], oc.SchemaTree[name])
		}
	}
}

// TestVerdictProbe: the probe's figures degrade an established session: a
// keepalive lost within the last minute, or rtt-recent above rtt-baseline
// by more than max(10 ms, 50 %); neither a rise below both, nor an old
// loss, nor a session that is down anyway.
func TestVerdictProbe(t *testing.T) {
	probe := func(at time.Duration, leaf string, v *gnmi.TypedValue) change.Change {
		return ch(change.SourceProbe, at, change.MeshdNeighborPath("default", "10.0.0.2", "probe", "state", leaf), v)
	}
	us := func(d time.Duration) *gnmi.TypedValue { return change.Decimal(float64(d)/1e3, 3) }
	ns := func(at time.Duration) *gnmi.TypedValue { return change.Uint(uint64(t0.Add(at).UnixNano())) }
	tests := []struct {
		name         string
		state        string
		probe        []change.Change
		health, want string
	}{
		{"quiet", "ESTABLISHED", []change.Change{probe(10*time.Second, "rtt-recent", us(900*time.Microsecond)), probe(10*time.Second, "rtt-baseline", us(800*time.Microsecond))},
			"HEALTHY", "established"},
		{"loss-now", "ESTABLISHED", []change.Change{probe(10*time.Second, "losses", change.Uint(2)), probe(10*time.Second, "last-loss", ns(10*time.Second))},
			"DEGRADED", "keepalives unanswered (2 lost)"},
		{"loss-a-minute-ago", "ESTABLISHED", []change.Change{probe(10*time.Second, "losses", change.Uint(2)), probe(10*time.Second, "last-loss", ns(10*time.Second)),
			probe(71*time.Second, "rtt-recent", us(time.Millisecond))},
			"HEALTHY", "established"},
		{"rtt-step-35ms", "ESTABLISHED", []change.Change{probe(10*time.Second, "rtt-recent", us(35900*time.Microsecond)), probe(10*time.Second, "rtt-baseline", us(900*time.Microsecond))},
			"DEGRADED", "RTT up 35ms over baseline 900µs"},
		{"rtt-rise-under-floor", "ESTABLISHED", []change.Change{probe(10*time.Second, "rtt-recent", us(9*time.Millisecond)), probe(10*time.Second, "rtt-baseline", us(500*time.Microsecond))},
			"HEALTHY", "established"},
		{"rtt-rise-under-ratio", "ESTABLISHED", []change.Change{probe(10*time.Second, "rtt-recent", us(130*time.Millisecond)), probe(10*time.Second, "rtt-baseline", us(100*time.Millisecond))},
			"HEALTHY", "established"},
		{"loss-and-step", "ESTABLISHED", []change.Change{probe(10*time.Second, "losses", change.Uint(1)), probe(10*time.Second, "last-loss", ns(10*time.Second)),
			probe(10*time.Second, "rtt-recent", us(60*time.Millisecond)), probe(10*time.Second, "rtt-baseline", us(20*time.Millisecond))},
			"DEGRADED", "keepalives unanswered (1 lost); RTT up 40ms over baseline 20ms"},
		{"down-wins", "ACTIVE", []change.Change{probe(10*time.Second, "losses", change.Uint(3)), probe(10*time.Second, "last-loss", ns(10*time.Second))},
			"DOWN", "session-state ACTIVE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCore(t)
			c.Apply([]change.Change{ch(change.SourceBMP, 0, change.NeighborPath("default", "10.0.0.2", "state", "session-state"), change.String(tc.state))})
			for _, p := range tc.probe {
				c.Apply([]change.Change{p})
			}
			h, _, _, _ := c.Leaf("r1", change.MeshdNeighborPath("default", "10.0.0.2", "verdict", "state", "health"))
			r, _, _, _ := c.Leaf("r1", change.MeshdNeighborPath("default", "10.0.0.2", "verdict", "state", "reason"))
			if h.GetStringVal() != tc.health || r.GetStringVal() != tc.want {
				t.Errorf("verdict %s %q, want %s %q", h.GetStringVal(), r.GetStringVal(), tc.health, tc.want)
			}
		})
	}
}

// Every leaf reads back, through Leaf and Snapshot, the value its last
// change gave it, whether the tree's field holds that value (state
// leaves), holds it in another form or is shared by two paths (the list
// key's leaf and its state leaf), or does not hold it at all (a config
// leaf, a shadow path in the compressed structs).
func TestLeavesReadBack(t *testing.T) {
	c := newCore(t, WithoutVerdict())
	nbr := func(elems ...string) *gnmi.Path { return change.NeighborPath("default", "10.0.0.2", elems...) }
	sets := []struct {
		p *gnmi.Path
		v *gnmi.TypedValue
	}{
		{nbr("state", "peer-as"), change.Uint(42009012)},
		{nbr("config", "peer-as"), change.Uint(65001)},
		{nbr("state", "session-state"), change.String("ESTABLISHED")},
		{nbr("state", "last-established"), change.Uint(1_700_000_000_123_456_789)},
		{nbr("neighbor-address"), change.String("10.0.0.2")},
		{nbr("state", "neighbor-address"), change.String("10.0.0.9")},
		{nbr("state", "description"), change.String("to r2")},
		{nbr("state", "enabled"), change.Bool(true)},
		{change.MeshdNeighborPath("default", "10.0.0.2", "probe", "state", "rtt-last"), change.Decimal(20123.456, 3)},
	}
	// Each is set twice, with its final value the second time, so that
	// both a new leaf and one already held are read back.
	for round := 0; round < 2; round++ {
		for i, s := range sets {
			v := s.v
			if round == 0 {
				v = change.Uint(uint64(i)) // a first value of another kind where one is taken
				if s.v.GetStringVal() != "" {
					v = change.String("first")
				}
				if s.v.GetBoolVal() {
					v = change.Bool(false)
				}
			}
			res := c.Apply([]change.Change{ch(change.SourceGNMI, time.Duration(round), s.p, v)})
			if round == 1 && res.Applied != 1 {
				t.Errorf("%s = %v: %+v", change.PathKey(s.p), s.v, res)
			}
		}
	}
	snap := map[string]*gnmi.TypedValue{}
	for _, u := range c.Snapshot("r1") {
		snap[u.Key] = u.Value
	}
	for _, s := range sets {
		v, _, _, ok := c.Leaf("r1", s.p)
		if !ok || !proto.Equal(v, s.v) {
			t.Errorf("Leaf(%s) = %v, %v; want %v", change.PathKey(s.p), v, ok, s.v)
		}
		if got := snap[change.PathKey(s.p)]; !proto.Equal(got, s.v) {
			t.Errorf("Snapshot's %s = %v, want %v", change.PathKey(s.p), got, s.v)
		}
	}
}

// BenchmarkHeldNeighbor reports the live heap a neighbor costs once
// held, with its verdict: the gNMI fleet simulator's 16 leaves of a BGP
// neighbor (bench/gnmisim), 100 neighbors a router. Run it with
// -benchtime=Nx for N neighbors.
func BenchmarkHeldNeighbor(b *testing.B) {
	afi := func(leaf string) []string { return []string{"afi-safis", "afi-safi", "state", "prefixes", leaf} }
	leaves := []struct {
		elems []string
		v     *gnmi.TypedValue
	}{
		{[]string{"state", "neighbor-address"}, nil},
		{[]string{"state", "peer-as"}, change.Uint(65001)},
		{[]string{"state", "local-as"}, change.Uint(65000)},
		{[]string{"state", "session-state"}, change.String("ESTABLISHED")},
		{[]string{"state", "established-transitions"}, change.Uint(1)},
		{[]string{"state", "last-established"}, change.Uint(1700000000000000000)},
		{[]string{"state", "messages", "received", "UPDATE"}, change.Uint(10)},
		{[]string{"state", "messages", "received", "NOTIFICATION"}, change.Uint(0)},
		{[]string{"state", "messages", "sent", "UPDATE"}, change.Uint(10)},
		{[]string{"state", "messages", "sent", "NOTIFICATION"}, change.Uint(0)},
		{afi("received"), change.Uint(100)},
		{afi("sent"), change.Uint(100)},
		{afi("installed"), change.Uint(100)},
		{[]string{"timers", "state", "hold-time"}, change.Uint(90)},
		{[]string{"timers", "state", "keepalive-interval"}, change.Uint(30)},
		{[]string{"timers", "state", "negotiated-hold-time"}, change.Uint(90)},
	}
	c := newCore(b)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		addr := fmt.Sprintf("10.%d.%d.%d", i/100>>8&255, i/100&255, i%100)
		chs := make([]change.Change, len(leaves))
		for j, l := range leaves {
			p := change.NeighborPath("default", addr, l.elems...)
			if l.elems[0] == "afi-safis" {
				p.Elem[len(p.Elem)-4].Key = map[string]string{"afi-safi-name": "IPV4_UNICAST"}
			}
			v := l.v
			if v == nil {
				v = change.String(addr)
			}
			chs[j] = change.Change{Router: fmt.Sprintf("r%d", i/100), Path: p, Value: v, Time: t0, Source: change.SourceGNMI}
		}
		if res := c.Apply(chs); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "heap-B/neighbor")
	runtime.KeepAlive(c)
}

// A neighbor records when each source but meshd's own last spoke of it:
// a source added to change must find room in nbrInfo.lastSeen.
func TestLastSeenHasRoomForEverySource(t *testing.T) {
	for src := change.Source(0); src.String() != "unknown" || src == 0; src++ {
		if src != change.SourceMeshd && int(src) >= len(nbrInfo{}.lastSeen) {
			t.Errorf("source %s (%d) has no room in lastSeen (%d)", src, src, len(nbrInfo{}.lastSeen))
		}
	}
}

// A state leaf reads its value from the field it shares with no other
// leaf; deleting the config leaf of the same name (a shadow path in the
// compressed structs) must leave that field, and so the state leaf, as
// it was.
func TestShadowDeleteKeepsStateLeaf(t *testing.T) {
	c := newCore(t, WithoutVerdict())
	st := change.NeighborPath("default", "10.0.0.2", "state", "peer-as")
	cf := change.NeighborPath("default", "10.0.0.2", "config", "peer-as")
	c.Apply([]change.Change{ch(change.SourceGNMI, 0, st, change.Uint(7)), ch(change.SourceGNMI, 0, cf, change.Uint(8))})
	c.Apply([]change.Change{ch(change.SourceGNMI, time.Second, cf, nil)})
	if v, _, _, ok := c.Leaf("r1", st); !ok || v.GetUintVal() != 7 {
		t.Errorf("state/peer-as after the config leaf's delete = %v, %v; want 7", v, ok)
	}
	if _, _, _, ok := c.Leaf("r1", cf); ok {
		t.Errorf("config/peer-as still held after its delete")
	}
}

// BenchmarkDeleteNeighbor deletes a neighbor's subtree from a router
// holding 100 neighbors and sets it again (a session withdrawn and back):
// the delete looks through every group of the router.
func BenchmarkDeleteNeighbor(b *testing.B) {
	c := newCore(b, WithoutVerdict())
	set := func(addr string) []change.Change {
		var chs []change.Change
		for _, l := range []string{"peer-as", "local-as", "established-transitions"} {
			chs = append(chs, change.Change{Router: "r1", Path: change.NeighborPath("default", addr, "state", l), Value: change.Uint(1), Time: t0, Source: change.SourceGNMI})
		}
		chs = append(chs, change.Change{Router: "r1", Path: change.NeighborPath("default", addr, "state", "session-state"), Value: change.String("ESTABLISHED"), Time: t0, Source: change.SourceGNMI})
		return chs
	}
	for i := 0; i < 100; i++ {
		c.Apply(set(fmt.Sprintf("10.0.0.%d", i)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		addr := fmt.Sprintf("10.0.0.%d", i%100)
		del := change.Change{Router: "r1", Path: change.NeighborPath("default", addr), Time: t0, Source: change.SourceGNMI}
		if res := c.Apply([]change.Change{del}); res.Applied != 4 {
			b.Fatalf("delete: %+v", res)
		}
		c.Apply(set(addr))
	}
}

// TestSchemaErrorKeepsCause: ErrSchema wraps ygot's own error, so a
// caller can still read its gRPC status.
func TestSchemaErrorKeepsCause(t *testing.T) {
	c := newCore(t)
	res := c.Apply([]change.Change{
		ch(change.SourceGNMI, 0, change.MustPath("/network-instances/network-instance[name=default]/no-such-leaf"), change.String("x")),
	})
	var gs interface{ GRPCStatus() *status.Status }
	if !errors.Is(res.Err, ErrSchema) || !errors.As(res.Err, &gs) {
		t.Fatalf("Err = %v (%T), want ErrSchema wrapping ygot's status error", res.Err, res.Err)
	}
}

// TestVerdictAfterClockStepsBack: meshd's clock (and its sources') ran an
// hour ahead, then stepped back. The verdict's "now" and the last-seen
// times follow the clock back at once: a flap right after the step is
// flagged, and last-seen shows the new times. Before, the latest times
// held from before the step stood for an hour.
func TestVerdictAfterClockStepsBack(t *testing.T) {
	wall := time.Now()
	tests := []struct {
		name  string
		ahead time.Duration // how far ahead the clock was before the step
		want  string
	}{
		{"stepped back an hour", time.Hour, "DEGRADED"},
		{"a router a minute fast", time.Minute, "DEGRADED"},
		{"stepped back a day", 24 * time.Hour, "DEGRADED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCore(t)
			nbr := func(at time.Time, leaf string, v *gnmi.TypedValue) change.Change {
				return change.Change{Router: "r1", Path: change.NeighborPath("default", "10.0.0.2", "state", leaf), Value: v, Time: at, Source: change.SourceGNMI}
			}
			before := wall.Add(tt.ahead)
			c.Apply([]change.Change{
				nbr(before, "session-state", change.String("ESTABLISHED")),
				nbr(before, "established-transitions", change.Uint(1)),
				nbr(before, "last-established", change.Uint(uint64(before.Add(-time.Hour).UnixNano()))),
			})
			// The step: the session flaps at the true time.
			c.Apply([]change.Change{
				nbr(wall, "established-transitions", change.Uint(2)),
				nbr(wall, "last-established", change.Uint(uint64(wall.UnixNano()))),
			})
			health, _, _, _ := c.Leaf("r1", change.MeshdNeighborPath("default", "10.0.0.2", "verdict", "state", "health"))
			if health.GetStringVal() != tt.want {
				t.Errorf("health = %v after a flap at the true time, want %s", health, tt.want)
			}
			// A counter moving 11 s later refreshes last-seen to the
			// true time.
			later := wall.Add(11 * time.Second)
			c.Apply([]change.Change{{Router: "r1", Path: change.NeighborPath("default", "10.0.0.2", "state", "messages", "received", "UPDATE"), Value: change.Uint(7), Time: later, Source: change.SourceGNMI}})
			seen, _, _, _ := c.Leaf("r1", change.MeshdNeighborPath("default", "10.0.0.2", "verdict", "state", "last-seen-gnmi"))
			want := uint64(later.UnixNano())
			if tt.ahead < clockSlack {
				want = uint64(before.UnixNano()) // a fast clock is not a step
			}
			if seen.GetUintVal() != want {
				t.Errorf("last-seen-gnmi = %d, want %d (%v off)", seen.GetUintVal(), want, time.Duration(int64(seen.GetUintVal())-int64(want)))
			}
		})
	}
}

// TestLostRouters: a consumer that missed batches is told which routers
// they held, once, so it resynchronises those only; past maxLostRouters
// routers it is told to resynchronise every one (nil).
func TestLostRouters(t *testing.T) {
	at := func(router string, i int) []change.Change {
		c := ch(change.SourceBMP, time.Duration(i), change.NeighborPath("default", "10.0.0.2", "state", "peer-as"), change.Uint(uint64(i+1)))
		c.Router = router
		return []change.Change{c}
	}
	tests := []struct {
		name    string
		dropped int // routers whose batch is dropped
		want    []string
	}{
		{"two routers", 2, []string{"d0", "d1"}},
		{"one router twice", 1, []string{"d0"}},
		{"too many to list", maxLostRouters + 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCore(t, WithoutVerdict())
			sub := c.Subscribe("slow", 1)
			c.Apply(at("first", 0)) // fills the queue
			for i := range tt.dropped {
				c.Apply(at(fmt.Sprintf("d%d", i), i+1))
			}
			if tt.name == "one router twice" {
				c.Apply(at("d0", 99))
			}
			<-sub.C()
			c.Apply(at("last", 100))
			b := <-sub.C()
			if b.Lost == 0 {
				t.Fatal("no loss reported")
			}
			got := b.LostRouters
			slices.Sort(got)
			if tt.want == nil {
				if got != nil {
					t.Errorf("LostRouters = %d routers, want nil (every router)", len(got))
				}
				return
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("LostRouters = %q, want %q", got, tt.want)
			}
			// Told once: the next loss lists only its own routers.
			c.Apply(at("again", 101))
			c.Apply(at("d9", 102))
			<-sub.C()
			c.Apply(at("later", 103))
			if b := <-sub.C(); !slices.Equal(b.LostRouters, []string{"d9"}) {
				t.Errorf("second loss: LostRouters = %q, want [d9]", b.LostRouters)
			}
		})
	}
}
