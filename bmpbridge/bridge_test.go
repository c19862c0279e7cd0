package bmpbridge

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/merge"
)

type rig struct {
	core   *merge.Core
	b      *Bridge
	addr   string
	mu     sync.Mutex
	events []change.Event
}

// newRig starts a bridge that knows the target edge1; opts add to that.
func newRig(t *testing.T, cfg Config, opts ...Option) *rig {
	t.Helper()
	core, err := merge.New(merge.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]Option{WithConfig(cfg), WithRegisterer(prometheus.NewRegistry()), WithTargets("edge1")}, opts...)
	b, err := New(core, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{core: core, b: b, addr: ln.Addr().String()}
	sub := core.Subscribe("t", 1<<14)
	go func() {
		for batch := range sub.C() {
			r.mu.Lock()
			r.events = append(r.events, batch.Events...)
			r.mu.Unlock()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = b.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); b.Close(); sub.Close() })
	return r
}

func (r *rig) send(t *testing.T, stream []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(stream); err != nil {
		t.Fatal(err)
	}
	return c
}

func (r *rig) count(kind change.EventKind, f func(change.Event) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind && (f == nil || f(e)) {
			n++
		}
	}
	return n
}

func (r *rig) val(router string, p *gpb.Path) *gpb.TypedValue {
	v, _, _, _ := r.core.Leaf(router, p)
	return v
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var (
	t0    = time.Unix(1_700_000_000, 0)
	pAddr = netip.MustParseAddr("192.0.2.2")
	rID   = netip.MustParseAddr("10.255.0.1")
	pID   = netip.MustParseAddr("10.255.0.2")
)

func peer() *bmpgen.Peer {
	return &bmpgen.Peer{Addr: pAddr, AS: 42009012, BGPID: pID, Time: t0}
}

func upStream(sysName string) []byte {
	fams := []uint32{1<<8 | 1, 2<<8 | 1}
	sent := bmpgen.Open{AS: 65001, HoldTime: 90, ID: rID, Families: fams, FourOctet: true}
	recv := bmpgen.Open{AS: 42009012, HoldTime: 30, ID: pID, Families: fams, FourOctet: true}
	b := bmpgen.AppendInitiation(nil, sysName, "unit test")
	return bmpgen.AppendPeerUp(b, peer(), netip.MustParseAddr("192.0.2.1"), 179, 50000, sent, recv, "")
}

func table(n int, origin uint32) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		pf := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
		b = bmpgen.AppendRouteMonitoring(b, peer(), &bmpgen.Route{Prefixes: []netip.Prefix{pf}, ASPath: []uint32{42009012, origin}, NextHop: pAddr})
	}
	return b
}

func TestBridgeSessionFlow(t *testing.T) {
	r := newRig(t, Config{})
	stream := upStream("edge1")
	stream = append(stream, table(100, 4200000001)...)
	stream = bmpgen.AppendEndOfRIB(stream, peer())
	c := r.send(t, stream)
	n := change.NeighborPath("default", "192.0.2.2", "state", "session-state")
	waitFor(t, "ESTABLISHED", func() bool { return r.val("edge1", n).GetStringVal() == "ESTABLISHED" })
	if as := r.val("edge1", change.NeighborPath("default", "192.0.2.2", "state", "peer-as")).GetUintVal(); as != 42009012 {
		t.Errorf("peer-as = %d", as)
	}
	waitFor(t, "100 announce events", func() bool { return r.count(change.EventRoute, nil) == 100 })
	prefixes := keyed(change.MeshdNeighborPath("default", "192.0.2.2", "bmp", "ribs", "rib", "state", "prefixes"), "rib", "view", "ADJ_RIB_IN_PRE")
	waitFor(t, "prefix counter 100", func() bool { return r.val("edge1", prefixes).GetUintVal() == 100 })
	c.Close()
	waitFor(t, "bmp-connected false", func() bool {
		v := r.val("edge1", change.MeshdRouterPath("bmp-connected"))
		return v != nil && !v.GetBoolVal()
	})

	// The router reconnects and re-sends its whole table: no new route
	// events, duplicates counted; one origin change and one more-specific
	// with another origin are reported.
	stream = upStream("edge1")
	stream = append(stream, table(100, 4200000001)...)
	stream = bmpgen.AppendRouteMonitoring(stream, peer(), &bmpgen.Route{Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.5.0/24")}, ASPath: []uint32{42009012, 64666}, NextHop: pAddr})
	stream = bmpgen.AppendRouteMonitoring(stream, peer(), &bmpgen.Route{Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.7.128/25")}, ASPath: []uint32{42009012, 64777}, NextHop: pAddr})
	stream = bmpgen.AppendStats(stream, peer(), []bmpgen.Stat{{Type: 7, Value: 101}, {Type: 200, Value: 5, Len: 4}})
	c = r.send(t, stream)
	defer c.Close()
	waitFor(t, "two origin changes", func() bool { return r.count(change.EventOriginChange, nil) == 2 })
	waitFor(t, "route events", func() bool { return r.count(change.EventRoute, nil) == 102 })
	dups := keyed(change.MeshdNeighborPath("default", "192.0.2.2", "bmp", "ribs", "rib", "state", "duplicates"), "rib", "view", "ADJ_RIB_IN_PRE")
	waitFor(t, "100 duplicates", func() bool { return r.val("edge1", dups).GetUintVal() == 100 })
	if got := r.count(change.EventOriginChange, func(e change.Event) bool {
		return e.Fields["more_specific_of"] == "10.0.7.0/24" && e.Fields["new_origin_as"] == int64(64777) && e.Fields["old_origin_as"] == int64(4200000001)
	}); got != 1 {
		t.Errorf("more-specific origin change events = %d", got)
	}
	unknown := keyed(change.MeshdNeighborPath("default", "192.0.2.2", "bmp", "stats", "counter", "state", "value"), "counter", "type", "200")
	waitFor(t, "unknown stat type kept by number", func() bool { return r.val("edge1", unknown).GetUintVal() == 5 })
	// The re-sent Peer Up (same time) is not a new establishment.
	if tr := r.val("edge1", change.NeighborPath("default", "192.0.2.2", "state", "established-transitions")).GetUintVal(); tr != 1 {
		t.Errorf("established-transitions = %d, want 1", tr)
	}

	// Peer down with a Cease.
	if _, err := c.Write(bmpgen.AppendPeerDown(nil, peer(), 3, 6, 2, nil, 0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "IDLE", func() bool { return r.val("edge1", n).GetStringVal() == "IDLE" })
	reason := r.val("edge1", change.MeshdNeighborPath("default", "192.0.2.2", "bmp", "state", "last-down-reason")).GetStringVal()
	if reason != "remote system closed the session with a NOTIFICATION: Cease / Administrative Shutdown" {
		t.Errorf("last-down-reason = %q", reason)
	}
	waitFor(t, "prefixes 0 after peer down", func() bool { return r.val("edge1", prefixes).GetUintVal() == 0 })
}

func TestFirstMessageMustBeInitiation(t *testing.T) {
	r := newRig(t, Config{})
	c := r.send(t, bmpgen.AppendStats(nil, peer(), []bmpgen.Stat{{Type: 0, Value: 1}}))
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection not closed")
	}
	waitFor(t, "no_initiation counted", func() bool {
		return testutil.ToFloat64(r.b.m.errors.WithLabelValues("no_initiation")) == 1
	})
	if len(r.core.Routers()) != 0 {
		t.Errorf("routers = %v", r.core.Routers())
	}
}

func TestMalformedMessageSkipped(t *testing.T) {
	r := newRig(t, Config{Aliases: map[string][]string{"core1": {"sys-core1"}}})
	stream := upStream("sys-core1")
	bad := bmpgen.AppendRouteMonitoring(nil, peer(), &bmpgen.Route{Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, ASPath: []uint32{1}, NextHop: pAddr})
	bad[6+42+19+2], bad[6+42+19+3] = 0xff, 0xf0
	stream = append(stream, bad...)
	stream = append(stream, table(3, 65000)...)
	c := r.send(t, stream)
	defer c.Close()
	waitFor(t, "3 routes after the bad message", func() bool { return r.b.RouteCount("core1", "default", "192.0.2.2", "") == 3 })
	waitFor(t, "bmp-errors 1", func() bool { return r.val("core1", change.MeshdRouterPath("bmp-errors")).GetUintVal() == 1 })
	// Bad framing closes the session cleanly.
	if _, err := c.Write([]byte{9, 9, 9, 9, 9, 9}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "framing error counted", func() bool {
		return testutil.ToFloat64(r.b.m.errors.WithLabelValues("framing")) == 1
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Listen: []string{"nohost"}}, "bmp.listen[0]"},
		{Config{MaxRouters: -1}, "bmp.max-routers"},
		{Config{Aliases: map[string][]string{"a": {"x"}, "b": {"x"}}}, "bmp.aliases"},
		{Config{VRFs: map[string]string{"65000:1": ""}}, "bmp.vrfs[65000:1]"},
		{Config{MaxMessageSize: 10}, "bmp.max-message-size"},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		if err == nil || !contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
	ok := Config{Listen: []string{":11019", "[::]:11019"}}
	ok.SetDefaults()
	if err := ok.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestReaderFraming feeds the batched reader a stream cut at awkward
// places (inside headers, inside messages, many messages per write) and
// then a stream that ends inside a message.
func TestReaderFraming(t *testing.T) {
	r := newRig(t, Config{})
	stream := append(upStream("edge1"), table(700, 65000)...)
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, cut := 0, 0; cut < len(stream); i++ {
		n := []int{1, 3, 5, 7, 40, 97, 4000, 70000}[i%8]
		n = min(n, len(stream)-cut)
		if _, err := c.Write(stream[cut : cut+n]); err != nil {
			t.Fatal(err)
		}
		cut += n
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // let the reader catch up and see partial messages
		}
	}
	waitFor(t, "700 routes", func() bool { return r.b.RouteCount("edge1", "default", "192.0.2.2", "") == 700 })
	if n := r.count(change.EventRoute, nil); n != 700 {
		waitFor(t, "700 route events", func() bool { return r.count(change.EventRoute, nil) == 700 })
	}
	// A message cut short by the end of the stream is a framing error.
	part := table(1, 65001)
	if _, err := c.Write(part[:len(part)-3]); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	waitFor(t, "framing error counted", func() bool {
		return testutil.ToFloat64(r.b.m.errors.WithLabelValues("framing")) == 1
	})
	if got := r.count(change.EventRoute, nil); got != 700 {
		t.Fatalf("route events = %d, want 700", got)
	}
}

func peerUpFor(p *bmpgen.Peer, tableName string) []byte {
	fams := []uint32{1<<8 | 1, 2<<8 | 1}
	sent := bmpgen.Open{AS: 65001, HoldTime: 90, ID: rID, Families: fams, FourOctet: true}
	recv := bmpgen.Open{AS: p.AS, HoldTime: 30, ID: p.BGPID, Families: fams, FourOctet: true}
	return bmpgen.AppendPeerUp(nil, p, netip.MustParseAddr("192.0.2.1"), 179, 50000, sent, recv, tableName)
}

func routesFor(p *bmpgen.Peer, n int, second byte) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		pf := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, second, byte(i), 0}), 24)
		b = bmpgen.AppendRouteMonitoring(b, p, &bmpgen.Route{Prefixes: []netip.Prefix{pf}, ASPath: []uint32{p.AS, 65000}, NextHop: pAddr})
	}
	return b
}

// neighborsIn lists the neighbor addresses any leaf of the router is under.
func neighborsIn(r *rig, router string) map[string]bool {
	out := map[string]bool{}
	for _, u := range r.core.Snapshot(router) {
		if _, addr, _, ok := change.NeighborOf(u.Path); ok {
			out[addr] = true
		}
	}
	return out
}

// TestPseudoPeersAreNoNeighbors sends a Loc-RIB instance peer (RFC 9069)
// with routes, and instance stats for 0.0.0.0 as FRR does: neither may
// show as a neighbor; the Loc-RIB routes are kept and counted.
func TestPseudoPeersAreNoNeighbors(t *testing.T) {
	r := newRig(t, Config{})
	loc := &bmpgen.Peer{Type: 3, AS: 65001, BGPID: rID, Time: t0}
	inst := &bmpgen.Peer{Addr: netip.IPv4Unspecified(), AS: 65001, BGPID: rID, Time: t0}
	stream := upStream("edge1")
	stream = append(stream, table(5, 65000)...)
	stream = append(stream, peerUpFor(loc, "global")...)
	stream = append(stream, routesFor(loc, 3, 50)...)
	stream = bmpgen.AppendStats(stream, inst, []bmpgen.Stat{{Type: 7, Value: 8}})
	stream = bmpgen.AppendStats(stream, loc, []bmpgen.Stat{{Type: 8, Value: 3}})
	c := r.send(t, stream)
	defer c.Close()
	waitFor(t, "3 Loc-RIB routes", func() bool { return r.b.RouteCount("edge1", "global", "0.0.0.0", "LOC_RIB") == 3 })
	prefixes := keyed(change.MeshdNeighborPath("default", "192.0.2.2", "bmp", "ribs", "rib", "state", "prefixes"), "rib", "view", "ADJ_RIB_IN_PRE")
	waitFor(t, "the real neighbor's counter", func() bool { return r.val("edge1", prefixes).GetUintVal() == 5 })
	waitFor(t, "instance stats events", func() bool {
		return r.count(change.EventStats, func(e change.Event) bool { return e.Fields["pseudo_peer"] == true }) == 2
	})
	waitFor(t, "Loc-RIB route gauge", func() bool {
		return testutil.ToFloat64(r.b.m.instanceRoutes.WithLabelValues("edge1", "global", "LOC_RIB")) == 3
	})
	nbrs := neighborsIn(r, "edge1")
	if !nbrs["192.0.2.2"] || len(nbrs) != 1 {
		t.Fatalf("neighbors in the core = %v, want only 192.0.2.2", nbrs)
	}
	// Loc-RIB Peer Down: routes cleared and counted, still no neighbor.
	if _, err := c.Write(bmpgen.AppendPeerDown(nil, loc, 5, 0, 0, nil, 0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Loc-RIB cleared", func() bool { return r.b.RouteCount("edge1", "global", "0.0.0.0", "") == 0 })
	waitFor(t, "peer_down with routes_cleared 3", func() bool {
		return r.count(change.EventPeerDown, func(e change.Event) bool { return e.Fields["routes_cleared"] == int64(3) }) == 1
	})
	// Each cleared route is withdrawn as a route event too, so a store of
	// route events does not keep them announced.
	waitFor(t, "3 Loc-RIB withdraw route events", func() bool {
		return r.count(change.EventRoute, func(e change.Event) bool {
			return e.Route.Action == change.Withdraw && e.Route.RIB == "LOC_RIB" && e.Route.OriginAS != 0
		}) == 3
	})
	if nbrs := neighborsIn(r, "edge1"); len(nbrs) != 1 {
		t.Fatalf("neighbors after Loc-RIB down = %v", nbrs)
	}
}

// TestStalePeerAfterReconnect: after a BMP reconnect the router re-sends
// one of its two peers; the other is expired once stale-timeout passes,
// its routes cleared and counted as withdrawals. The re-sent peer's
// routes make no new route events.
func TestStalePeerAfterReconnect(t *testing.T) {
	r := newRig(t, Config{StaleTimeout: 300 * time.Millisecond})
	p2 := &bmpgen.Peer{Addr: netip.MustParseAddr("192.0.2.3"), AS: 65003, BGPID: netip.MustParseAddr("10.255.0.3"), Time: t0}
	stream := append(upStream("edge1"), table(10, 65000)...)
	stream = append(stream, peerUpFor(p2, "")...)
	stream = append(stream, routesFor(p2, 7, 60)...)
	c := r.send(t, stream)
	waitFor(t, "17 route events", func() bool { return r.count(change.EventRoute, nil) == 17 })
	c.Close()
	waitFor(t, "bmp-connected false", func() bool {
		v := r.val("edge1", change.MeshdRouterPath("bmp-connected"))
		return v != nil && !v.GetBoolVal()
	})
	if n := r.b.RouteCount("edge1", "default", "192.0.2.3", ""); n != 7 {
		t.Fatalf("peer 2 routes kept across the disconnect = %d, want 7", n)
	}
	c = r.send(t, append(upStream("edge1"), table(10, 65000)...))
	defer c.Close()
	waitFor(t, "peer 2 expired", func() bool { return r.b.RouteCount("edge1", "default", "192.0.2.3", "") == 0 })
	wd := keyed(change.MeshdNeighborPath("default", "192.0.2.3", "bmp", "ribs", "rib", "state", "withdrawals"), "rib", "view", "ADJ_RIB_IN_PRE")
	waitFor(t, "7 withdrawals counted", func() bool { return r.val("edge1", wd).GetUintVal() == 7 })
	state := change.NeighborPath("default", "192.0.2.3", "state", "session-state")
	waitFor(t, "peer 2 IDLE", func() bool { return r.val("edge1", state).GetStringVal() == "IDLE" })
	if got := testutil.ToFloat64(r.b.m.cleared.WithLabelValues("stale")); got != 7 {
		t.Errorf("stale routes cleared metric = %v, want 7", got)
	}
	// Events reach the rig through a consumer's queue, a moment after the
	// core's state: wait for the event, then check no second one came.
	stale := func(e change.Event) bool { return e.Fields["stale"] == true && e.Neighbor == "192.0.2.3" }
	waitFor(t, "stale peer_down event", func() bool { return r.count(change.EventPeerDown, stale) >= 1 })
	if n := r.count(change.EventPeerDown, stale); n != 1 {
		t.Errorf("stale peer_down events = %d, want 1", n)
	}
	if n := r.b.RouteCount("edge1", "default", "192.0.2.2", ""); n != 10 {
		t.Errorf("re-announced peer's routes = %d, want 10", n)
	}
	// 17 announces, then a withdraw for each expired route of peer 2;
	// the re-send of peer 1's table repeats none.
	withdrawn := func(e change.Event) bool { return e.Route.Action == change.Withdraw && e.Neighbor == "192.0.2.3" }
	waitFor(t, "7 withdraw route events for the expired peer", func() bool { return r.count(change.EventRoute, withdrawn) == 7 })
	if n := r.count(change.EventRoute, nil); n != 24 {
		t.Errorf("route events = %d, want 17 announces and 7 withdraws (the re-send must not repeat them)", n)
	}
	if s := r.val("edge1", change.NeighborPath("default", "192.0.2.2", "state", "session-state")).GetStringVal(); s != "ESTABLISHED" {
		t.Errorf("peer 1 session-state = %q", s)
	}
}

// TestOriginChangeAcrossViews: a more-specific (or the same prefix) with
// another origin than the covering route is reported whichever of the
// router's RIB views holds the covering route, also when one of the two
// is the router's own (an empty AS_PATH in its Loc-RIB or Adj-RIB-Out,
// whose origin is the router's AS, 65001 in upStream's Peer Up).
func TestOriginChangeAcrossViews(t *testing.T) {
	const local, remote = 65001, 42009012
	locRIB := func() *bmpgen.Peer { return &bmpgen.Peer{Type: 3, AS: local, BGPID: rID, Time: t0} }
	ribOut := func() *bmpgen.Peer {
		p := peer()
		p.Flags = bmpgen.FlagL | bmpgen.FlagO
		return p
	}
	own := func(p string) *bmpgen.Route {
		return &bmpgen.Route{Prefixes: []netip.Prefix{netip.MustParsePrefix(p)}, NextHop: netip.MustParseAddr("192.0.2.1")}
	}
	theirs := func(p string) *bmpgen.Route {
		return &bmpgen.Route{Prefixes: []netip.Prefix{netip.MustParsePrefix(p)}, ASPath: []uint32{remote}, NextHop: pAddr}
	}
	type msg struct {
		p *bmpgen.Peer
		r *bmpgen.Route
	}
	tests := []struct {
		name     string
		before   []msg // the table before End-of-RIB
		after    msg   // the news
		old, new int64
		covering string
		rib      string
	}{
		{"their more-specific of our Loc-RIB prefix", []msg{{locRIB(), own("10.200.2.0/24")}}, msg{peer(), theirs("10.200.2.0/25")}, local, remote, "10.200.2.0/24", "LOC_RIB"},
		{"our more-specific of their prefix", []msg{{peer(), theirs("10.200.1.0/24")}}, msg{locRIB(), own("10.200.1.0/25")}, remote, local, "10.200.1.0/24", "ADJ_RIB_IN_PRE"},
		{"their more-specific of our Adj-RIB-Out prefix", []msg{{ribOut(), own("10.200.3.0/24")}}, msg{peer(), theirs("10.200.3.0/25")}, local, remote, "10.200.3.0/24", "ADJ_RIB_OUT_POST"},
		{"their copy of our Loc-RIB prefix", []msg{{locRIB(), own("10.200.4.0/24")}}, msg{peer(), theirs("10.200.4.0/24")}, local, remote, "", "LOC_RIB"},
	}
	// Not news: export policy rewriting the path of a route the router
	// sends on (remove-private-as) gives it another origin in the
	// Adj-RIB-Out.
	t.Run("Adj-RIB-Out rewrite", func(t *testing.T) {
		r := newRig(t, Config{})
		stream := upStream("edge1")
		stream = bmpgen.AppendRouteMonitoring(stream, peer(), theirs("10.200.5.0/24"))
		for _, p := range []*bmpgen.Peer{peer(), ribOut()} {
			stream = bmpgen.AppendEndOfRIB(stream, p)
		}
		stream = bmpgen.AppendRouteMonitoring(stream, ribOut(), own("10.200.5.0/24"))
		c := r.send(t, stream)
		defer c.Close()
		// An origin_change comes in the same batch as the route events.
		waitFor(t, "both route events", func() bool { return r.count(change.EventRoute, nil) == 2 })
		if n := r.count(change.EventOriginChange, nil); n != 0 {
			t.Errorf("%d origin_change events for the rewritten Adj-RIB-Out route", n)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{})
			stream := upStream("edge1")
			for _, m := range tc.before {
				stream = bmpgen.AppendRouteMonitoring(stream, m.p, m.r)
			}
			for _, p := range []*bmpgen.Peer{peer(), locRIB(), ribOut()} {
				stream = bmpgen.AppendEndOfRIB(stream, p)
			}
			stream = bmpgen.AppendRouteMonitoring(stream, tc.after.p, tc.after.r)
			c := r.send(t, stream)
			defer c.Close()
			waitFor(t, "an origin_change event", func() bool { return r.count(change.EventOriginChange, nil) > 0 })
			r.mu.Lock()
			defer r.mu.Unlock()
			for _, e := range r.events {
				if e.Kind != change.EventOriginChange {
					continue
				}
				f := e.Fields
				ms, _ := f["more_specific_of"].(string)
				if f["old_origin_as"] != tc.old || f["new_origin_as"] != tc.new || ms != tc.covering || f["covering_rib"] != tc.rib {
					t.Errorf("origin_change %v, want old %d new %d more_specific_of %q covering_rib %s", f, tc.old, tc.new, tc.covering, tc.rib)
				}
			}
			// The router's own routes carry its AS as their origin.
			for _, e := range r.events {
				if e.Kind == change.EventRoute && e.Route.ASPath == "" && e.Route.OriginAS != local {
					t.Errorf("own route %s in %s: origin_as %d, want %d", e.Route.Prefix, e.Route.RIB, e.Route.OriginAS, local)
				}
			}
		})
	}
}

// TestFRRFeedQuirks replays FRR 8.4's feed for a neighbor without
// soft-reconfiguration inbound: post-policy routes whose AS_PATH starts
// with FRR's own AS (65001 in upStream's Peer Up), each followed by a
// pre-policy withdraw of the same route. The neighbor's path is the route
// event's AS path; received-pre-policy is not written (the feed cannot
// carry it) rather than shown as 0; the withdraws are no missing
// withdraws. A feed that carries pre-policy routes (gobgpd's) keeps its
// received-pre-policy, and Adj-RIB-Out paths keep the prepend.
func TestFRRFeedQuirks(t *testing.T) {
	post := func() *bmpgen.Peer { p := peer(); p.Flags = bmpgen.FlagL; return p }
	out := func() *bmpgen.Peer { p := peer(); p.Flags = bmpgen.FlagL | bmpgen.FlagO; return p }
	route := func(p string, path ...uint32) *bmpgen.Route {
		return &bmpgen.Route{Prefixes: []netip.Prefix{netip.MustParsePrefix(p)}, ASPath: path, NextHop: pAddr}
	}
	wd := func(p string) *bmpgen.Route {
		return &bmpgen.Route{Prefixes: []netip.Prefix{netip.MustParsePrefix(p)}, Withdraw: true}
	}
	leaf := func(l string) *gpb.Path {
		return change.AfiSafiPath("default", "192.0.2.2", "IPV4_UNICAST", "state", "prefixes", l)
	}
	for _, tc := range []struct {
		name    string
		stream  func() []byte
		pre     int // received-pre-policy, -1 for none
		missing float64
		quirks  map[string]float64
		asPaths map[string]string // view -> AS path of 10.1.0.0/24
	}{
		{"FRR live updates", func() []byte {
			b := upStream("edge1")
			b = bmpgen.AppendEndOfRIB(b, post())
			b = bmpgen.AppendEndOfRIB(b, peer())
			for _, p := range []string{"10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24"} {
				b = bmpgen.AppendRouteMonitoring(b, post(), route(p, 65001, 42009012))
				b = bmpgen.AppendRouteMonitoring(b, peer(), wd(p))
			}
			return bmpgen.AppendRouteMonitoring(b, out(), route("10.1.0.0/24", 65001, 42009012))
		}, -1, 0, map[string]float64{"local_as_prepended": 1, "pre_policy_without_adj_rib_in": 1},
			map[string]string{"ADJ_RIB_IN_POST": "42009012", "ADJ_RIB_OUT_POST": "65001 42009012"}},
		{"FRR initial sync", func() []byte {
			b := upStream("edge1")
			for _, p := range []string{"10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24"} {
				b = bmpgen.AppendRouteMonitoring(b, post(), route(p, 65001, 42009012, 64999))
			}
			b = bmpgen.AppendEndOfRIB(b, post())
			return bmpgen.AppendEndOfRIB(b, peer())
		}, -1, 0, map[string]float64{"local_as_prepended": 1, "pre_policy_without_adj_rib_in": 1},
			map[string]string{"ADJ_RIB_IN_POST": "42009012 64999"}},
		{"FRR pre-policy only", func() []byte {
			b := upStream("edge1")
			b = bmpgen.AppendEndOfRIB(b, peer())
			for _, p := range []string{"10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24"} {
				b = bmpgen.AppendRouteMonitoring(b, peer(), wd(p))
			}
			// The post-policy routes (what the test waits for) come
			// after the withdraws, so these were judged without them.
			for _, p := range []string{"10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24"} {
				b = bmpgen.AppendRouteMonitoring(b, post(), route(p, 42009012))
			}
			return b
		}, -1, 0, map[string]float64{"local_as_prepended": 0, "pre_policy_without_adj_rib_in": 1},
			map[string]string{"ADJ_RIB_IN_POST": "42009012"}},
		{"FRR soft-reconfiguration, first route denied", func() []byte {
			b := upStream("edge1")
			b = bmpgen.AppendEndOfRIB(b, post())
			b = bmpgen.AppendEndOfRIB(b, peer())
			b = bmpgen.AppendRouteMonitoring(b, post(), wd("10.9.0.0/24"))
			b = bmpgen.AppendRouteMonitoring(b, peer(), wd("10.9.0.0/24"))
			for _, p := range []string{"10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24"} {
				b = bmpgen.AppendRouteMonitoring(b, post(), route(p, 65001, 42009012))
				b = bmpgen.AppendRouteMonitoring(b, peer(), route(p, 65001, 42009012))
			}
			return b
		}, 3, 2, map[string]float64{"local_as_prepended": 1, "pre_policy_without_adj_rib_in": 0},
			map[string]string{"ADJ_RIB_IN_PRE": "42009012", "ADJ_RIB_IN_POST": "42009012"}},
		{"gobgpd", func() []byte {
			b := upStream("edge1")
			for _, p := range []string{"10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24"} {
				b = bmpgen.AppendRouteMonitoring(b, peer(), route(p, 42009012))
				b = bmpgen.AppendRouteMonitoring(b, post(), route(p, 42009012))
			}
			b = bmpgen.AppendRouteMonitoring(b, peer(), route("10.4.0.0/24", 42009012))
			b = bmpgen.AppendEndOfRIB(b, post())
			return bmpgen.AppendEndOfRIB(b, peer())
		}, 4, 0, map[string]float64{"local_as_prepended": 0, "pre_policy_without_adj_rib_in": 0},
			map[string]string{"ADJ_RIB_IN_PRE": "42009012", "ADJ_RIB_IN_POST": "42009012"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{FlushInterval: 20 * time.Millisecond})
			c := r.send(t, tc.stream())
			defer c.Close()
			// The pre-policy view's own counter is written in the same
			// pass as received-pre-policy would be.
			preView := keyed(change.MeshdNeighborPath("default", "192.0.2.2", "bmp", "ribs", "rib", "state", "prefixes"), "rib", "view", "ADJ_RIB_IN_PRE")
			waitFor(t, "received 3 and the pre-policy view's counter", func() bool {
				return r.val("edge1", leaf("received")).GetUintVal() == 3 && r.val("edge1", preView) != nil &&
					(tc.pre < 0 || r.val("edge1", leaf("received-pre-policy")).GetUintVal() == uint64(tc.pre))
			})
			got := r.val("edge1", leaf("received-pre-policy"))
			if tc.pre >= 0 && got.GetUintVal() != uint64(tc.pre) {
				t.Errorf("received-pre-policy = %v, want %d", got, tc.pre)
			}
			if tc.pre < 0 && got != nil {
				t.Errorf("received-pre-policy = %v, want none: the sender keeps no Adj-RIB-In", got)
			}
			for q, want := range tc.quirks {
				if n := testutil.ToFloat64(r.b.m.quirks[q]); n != want {
					t.Errorf("quirk %s counted %v, want %v", q, n, want)
				}
			}
			if n := testutil.ToFloat64(r.b.m.outcomes[3]); n != tc.missing {
				t.Errorf("missing withdraws %v, want %v", n, tc.missing)
			}
			// Events reach the rig through the core's subscription, a
			// moment after the leaves.
			for view, want := range tc.asPaths {
				announce := func(e change.Event) bool {
					return e.Route.RIB == view && e.Route.Prefix == "10.1.0.0/24" && e.Route.Action == change.Announce
				}
				waitFor(t, view+" announce of 10.1.0.0/24", func() bool { return r.count(change.EventRoute, announce) > 0 })
				if n := r.count(change.EventRoute, func(e change.Event) bool { return announce(e) && e.Route.ASPath == want }); n == 0 {
					t.Errorf("%s: no announce of 10.1.0.0/24 with AS path %q", view, want)
				}
			}
		})
	}
}

// TestOwnRoutesBeforePeerUp: FRR sends its own networks (post-policy,
// peer 0.0.0.0, an empty AS_PATH) as soon as bgpd starts, before any
// Peer Up tells meshd the router's AS. Once a Peer Up does, those routes
// are announced again with the router's AS as their origin (the lab's
// verify found them in bmp_route with origin_as 0 for good).
func TestOwnRoutesBeforePeerUp(t *testing.T) {
	r := newRig(t, Config{})
	self := &bmpgen.Peer{Flags: 0x40, Addr: netip.MustParseAddr("0.0.0.0"), Time: t0}
	own := netip.MustParsePrefix("10.200.2.0/24")
	stream := bmpgen.AppendInitiation(nil, "edge1", "unit test")
	stream = bmpgen.AppendRouteMonitoring(stream, self, &bmpgen.Route{Prefixes: []netip.Prefix{own}, NextHop: netip.MustParseAddr("0.0.0.0")})
	c := r.send(t, stream)
	defer c.Close()
	ownRoute := func(origin uint32) func(e change.Event) bool {
		return func(e change.Event) bool {
			return e.Route.Prefix == own.String() && e.Route.Action == change.Announce && e.Route.OriginAS == origin
		}
	}
	waitFor(t, "the own route, origin unknown", func() bool { return r.count(change.EventRoute, ownRoute(0)) == 1 })
	fams := []uint32{1<<8 | 1}
	sent := bmpgen.Open{AS: 65001, HoldTime: 90, ID: rID, Families: fams, FourOctet: true}
	recv := bmpgen.Open{AS: 42009012, HoldTime: 30, ID: pID, Families: fams, FourOctet: true}
	if _, err := c.Write(bmpgen.AppendPeerUp(nil, peer(), netip.MustParseAddr("192.0.2.1"), 179, 50000, sent, recv, "")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the own route restated with the router's AS", func() bool { return r.count(change.EventRoute, ownRoute(65001)) == 1 })
}

// TestEndOfRIBPerFamily: an IPv4 End-of-RIB ends the IPv4 initial table
// only; a more-specific of another origin in the IPv6 table that follows
// is part of that table, not news. After the IPv6 End-of-RIB it is.
func TestEndOfRIBPerFamily(t *testing.T) {
	r := newRig(t, Config{})
	nh6 := netip.MustParseAddr("2001:db8::2")
	v6 := func(p string, origin uint32) *bmpgen.Route {
		return &bmpgen.Route{Prefixes: []netip.Prefix{netip.MustParsePrefix(p)}, ASPath: []uint32{42009012, origin}, NextHop: nh6}
	}
	stream := upStream("edge1")
	stream = append(stream, table(3, 4200000001)...)
	stream = bmpgen.AppendEndOfRIB(stream, peer())
	stream = bmpgen.AppendRouteMonitoring(stream, peer(), v6("2001:db8::/32", 64500))
	stream = bmpgen.AppendRouteMonitoring(stream, peer(), v6("2001:db8:1::/48", 64501))
	stream = bmpgen.AppendEndOfRIBFamily(stream, peer(), 2, 1)
	stream = bmpgen.AppendRouteMonitoring(stream, peer(), v6("2001:db8:2::/48", 64502))
	c := r.send(t, stream)
	defer c.Close()
	waitFor(t, "6 route events", func() bool { return r.count(change.EventRoute, nil) == 6 })
	// An origin_change comes in the same batch as its route's event.
	if n := r.count(change.EventOriginChange, nil); n != 1 {
		t.Fatalf("%d origin_change events, want 1 (for 2001:db8:2::/48 only)", n)
	}
	if n := r.count(change.EventOriginChange, func(e change.Event) bool {
		return e.Fields["prefix"] == "2001:db8:2::/48" && e.Fields["more_specific_of"] == "2001:db8::/32"
	}); n != 1 {
		t.Errorf("no origin_change for 2001:db8:2::/48")
	}
}

// TestPeerNotUp: Route Monitoring and Stats for a BGP peer with no Peer
// Up (RFC 7854 3.3 has the Up first) are skipped, counted and logged;
// they make no neighbor and no RIB. The router's own pseudo-peer is
// exempt (FRR sends its Loc-RIB first), and the same peer's routes are
// taken once it is up, and refused again after its Peer Down.
func TestPeerNotUp(t *testing.T) {
	r := newRig(t, Config{})
	stranger := &bmpgen.Peer{Addr: netip.MustParseAddr("198.51.100.9"), AS: 64999, BGPID: netip.MustParseAddr("10.255.9.9"), Time: t0}
	loc := &bmpgen.Peer{Type: 3, AS: 65001, BGPID: rID, Time: t0}
	notUp := func() float64 { return testutil.ToFloat64(r.b.m.errors.WithLabelValues("peer_not_up")) }
	stream := upStream("edge1")
	stream = append(stream, routesFor(stranger, 4, 9)...)
	stream = append(stream, bmpgen.AppendStats(nil, stranger, []bmpgen.Stat{{Type: 7, Value: 1}})...)
	stream = append(stream, routesFor(loc, 2, 8)...)
	stream = append(stream, table(3, 65000)...)
	c := r.send(t, stream)
	defer c.Close()
	waitFor(t, "the up peer's 3 routes and the Loc-RIB's 2", func() bool {
		return r.b.RouteCount("edge1", "default", "192.0.2.2", "") == 3 && notUp() == 5
	})
	if neighborsIn(r, "edge1")["198.51.100.9"] {
		t.Error("a peer with no Peer Up became a neighbor")
	}
	waitFor(t, "bmp-errors 5", func() bool { return r.val("edge1", change.MeshdRouterPath("bmp-errors")).GetUintVal() == 5 })
	// Up, its routes are taken.
	if _, err := c.Write(append(peerUpFor(stranger, ""), routesFor(stranger, 4, 9)...)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stranger's 4 routes once up", func() bool { return r.b.RouteCount("edge1", "default", "198.51.100.9", "") == 4 })
	// Down, refused again.
	if _, err := c.Write(append(bmpgen.AppendPeerDown(nil, stranger, 3, 6, 2, nil, 0), routesFor(stranger, 1, 7)...)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a route after the Peer Down refused", func() bool { return notUp() == 6 })
	if n := r.b.RouteCount("edge1", "default", "198.51.100.9", ""); n != 0 {
		t.Errorf("%d routes held for a peer that went down", n)
	}
}
