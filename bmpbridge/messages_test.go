package bmpbridge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/merge"
)

func connected(r *rig, router string) *bool {
	v := r.val(router, change.MeshdRouterPath("bmp-connected"))
	if v == nil {
		return nil
	}
	b := v.GetBoolVal()
	return &b
}

// TestTermination: a Termination ends the session from meshd's side even
// while the router keeps the TCP connection open; its reason is counted by
// code, kept in last-termination-reason and its text logged. Nothing
// after it is applied.
func TestTermination(t *testing.T) {
	tests := []struct {
		code uint16
		want string
	}{
		{0, "session administratively closed"},
		{1, "unspecified reason"},
		{2, "out of resources"},
		{3, "redundant connection"},
		{4, "session permanently administratively closed"},
		{9, "unknown reason 9"},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(int(tc.code)), func(t *testing.T) {
			var log testenv.SyncBuffer
			r := newRig(t, Config{}, WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
			text := "going away " + strconv.Itoa(int(tc.code))
			stream := bmpgen.AppendTermination(upStream("edge1"), tc.code, text)
			stream = append(stream, table(1, 65000)...)
			c := r.send(t, stream)
			defer c.Close()
			// The test never closes its end: only meshd can end the session.
			waitFor(t, "bmp-connected false", func() bool {
				b := connected(r, "edge1")
				return b != nil && !*b
			})
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("meshd did not close the connection: read error %v", err)
			}
			if got := r.val("edge1", change.MeshdRouterPath("last-termination-reason")).GetStringVal(); got != tc.want {
				t.Errorf("last-termination-reason = %q, want %q", got, tc.want)
			}
			if got := testutil.ToFloat64(r.b.m.terminations.WithLabelValues(strconv.Itoa(int(tc.code)))); got != 1 {
				t.Errorf("terminations{reason=%d} = %v, want 1", tc.code, got)
			}
			if !contains(log.String(), text) {
				t.Errorf("termination text %q not logged:\n%s", text, log.String())
			}
			if n := r.b.RouteCount("edge1", "default", "192.0.2.2", ""); n != 0 {
				t.Errorf("routes after the Termination = %d, want 0", n)
			}
			waitFor(t, "router_down event", func() bool { return r.count(change.EventRouterDown, nil) == 1 })
		})
	}
}

// TestRouteMirroring: Route Mirroring messages are counted, their BGP
// messages are not taken for routes, and the session goes on.
func TestRouteMirroring(t *testing.T) {
	r := newRig(t, Config{})
	mirrored := bmpgen.AppendUpdate(nil, &bmpgen.Route{Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, ASPath: []uint32{42009012}, NextHop: pAddr})
	keepalive := append(bytes.Repeat([]byte{0xff}, 16), 0, 19, 4)
	stream := upStream("edge1")
	stream = bmpgen.AppendRouteMirroring(stream, peer(), mirrored, bmpgen.MirrorErroredPDU)
	stream = bmpgen.AppendRouteMirroring(stream, peer(), nil, bmpgen.MirrorMessagesLost)
	stream = bmpgen.AppendRouteMirroring(stream, peer(), keepalive)
	// An errored PDU is malformed by definition: an attribute runs past
	// the UPDATE's end. It is still a well-formed mirroring message.
	broken := slices.Clone(mirrored)
	broken[len(broken)-4] = 0xff
	stream = bmpgen.AppendRouteMirroring(stream, peer(), broken, bmpgen.MirrorErroredPDU)
	stream = append(stream, table(1, 65000)...)
	c := r.send(t, stream)
	defer c.Close()
	waitFor(t, "the route after the mirrored messages", func() bool { return r.b.RouteCount("edge1", "default", "192.0.2.2", "") == 1 })
	if got := testutil.ToFloat64(r.b.m.mirrored); got != 4 {
		t.Errorf("mirrored messages = %v, want 4", got)
	}
	if got := testutil.ToFloat64(r.b.m.messages.WithLabelValues("route_mirroring")); got != 4 {
		t.Errorf("messages{type=route_mirroring} = %v, want 4", got)
	}
	if got := testutil.ToFloat64(r.b.m.errors.WithLabelValues("malformed")); got != 0 {
		t.Errorf("malformed = %v, want 0", got)
	}
	waitFor(t, "one route event", func() bool { return r.count(change.EventRoute, nil) == 1 })
	if n := r.count(change.EventRoute, func(e change.Event) bool { return e.Route.Prefix == "198.51.100.0/24" }); n != 0 {
		t.Errorf("the mirrored UPDATE made %d route events", n)
	}
	if b := connected(r, "edge1"); b == nil || !*b {
		t.Error("bmp-connected is not true")
	}
}

// mpUpdate is a BGP UPDATE whose only NLRI is in MP_REACH_NLRI (or
// MP_UNREACH_NLRI when withdraw) of afi/safi, the NLRI given raw.
func mpUpdate(afi uint16, safi uint8, nlri []byte, withdraw bool) []byte {
	var mp []byte
	mp = binary.BigEndian.AppendUint16(mp, afi)
	mp = append(mp, safi)
	typ := byte(15)
	if !withdraw {
		typ = 14
		mp = append(mp, 4, 192, 0, 2, 2, 0) // next hop, reserved
	}
	mp = append(mp, nlri...)
	var attrs []byte
	if !withdraw {
		attrs = append(attrs, 0x40, 1, 1, 0)                      // ORIGIN IGP
		attrs = append(attrs, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe8) // AS_PATH 65000
	}
	attrs = append(attrs, 0x90, typ)
	attrs = binary.BigEndian.AppendUint16(attrs, uint16(len(mp)))
	attrs = append(attrs, mp...)
	b := bytes.Repeat([]byte{0xff}, 16)
	b = binary.BigEndian.AppendUint16(b, uint16(19+4+len(attrs)))
	b = append(b, 2, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(attrs)))
	return append(b, attrs...)
}

// TestSkippedFamilies: UPDATEs of families meshd does not decode are
// counted by family (unknown ones as "other", to bound the label set),
// make no routes, and the routes after them still arrive.
func TestSkippedFamilies(t *testing.T) {
	// RFC 4761 VPLS NLRI: length, RD, VE ID, block offset, size, label base.
	vpls := []byte{0, 17, 0, 0, 0xfd, 0xe8, 0, 0, 0, 1, 0, 1, 0, 1, 0, 10, 0x01, 0x86, 0xa1}
	tests := []struct {
		afi      uint16
		safi     uint8
		nlri     []byte
		withdraw bool
		label    string
	}{
		{25, 65, vpls, false, "L2VPN_VPLS"},
		{25, 65, vpls, true, "L2VPN_VPLS"},
		{1, 2, []byte{24, 233, 252, 0}, false, "IPV4_MULTICAST"},
		{16399, 77, []byte{24, 10, 9, 9}, false, "other"},
	}
	r := newRig(t, Config{})
	stream := upStream("edge1")
	want := map[string]float64{}
	for _, tc := range tests {
		stream = bmpgen.AppendRouteMonitoringMsg(stream, peer(), mpUpdate(tc.afi, tc.safi, tc.nlri, tc.withdraw))
		want[tc.label]++
	}
	stream = append(stream, table(1, 65000)...)
	c := r.send(t, stream)
	defer c.Close()
	waitFor(t, "the IPv4 route after the skipped families", func() bool { return r.b.RouteCount("edge1", "default", "192.0.2.2", "") == 1 })
	for label, n := range want {
		if got := testutil.ToFloat64(r.b.m.skipped.WithLabelValues(label)); got != n {
			t.Errorf("skipped{afi_safi=%s} = %v, want %v", label, got, n)
		}
	}
	if got := testutil.CollectAndCount(r.b.m.skipped); got != len(want) {
		t.Errorf("skipped-families series = %d, want %d", got, len(want))
	}
	if got := testutil.ToFloat64(r.b.m.errors.WithLabelValues("malformed")); got != 0 {
		t.Errorf("malformed = %v, want 0", got)
	}
	waitFor(t, "one route event", func() bool { return r.count(change.EventRoute, nil) == 1 })
}

// TestRouterIdentity: a session is named by an alias of its sysName, then
// of its source address, then by a known target named like its sysName,
// the target at its address, a target named like its address, else by
// its sysName, else by its address. The rig's sessions come from
// 127.0.0.1 and the rig knows the target edge1.
func TestRouterIdentity(t *testing.T) {
	tests := []struct {
		name    string
		aliases map[string][]string
		targets []string
		at      []string // targets whose gNMI address is 127.0.0.1
		sysName string
		want    string
	}{
		{name: "address alias", aliases: map[string][]string{"core9": {"127.0.0.1"}}, sysName: "no-such-target", want: "core9"},
		{name: "sysName alias before address alias", aliases: map[string][]string{"core9": {"127.0.0.1"}, "core8": {"sys8"}}, sysName: "sys8", want: "core8"},
		{name: "target at the address", at: []string{"edge7"}, sysName: "no-such-target", want: "edge7"},
		{name: "address two targets share", at: []string{"edge7", "edge8"}, sysName: "no-such-target", want: "no-such-target"},
		{name: "target named by the sysName before the target at the address", at: []string{"edge7"}, sysName: "edge1", want: "edge1"},
		{name: "address alias before the target at the address", aliases: map[string][]string{"core9": {"127.0.0.1"}}, at: []string{"edge7"}, sysName: "x", want: "core9"},
		{name: "target named by the address", targets: []string{"127.0.0.1"}, sysName: "no-such-target", want: "127.0.0.1"},
		{name: "target named by the sysName", targets: []string{"127.0.0.1"}, sysName: "edge1", want: "edge1"},
		{name: "unknown sysName", sysName: "stranger", want: "stranger"},
		{name: "no sysName", want: "127.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := []Option{WithTargets(tc.targets...)}
			for _, name := range tc.at {
				opts = append(opts, WithTargetAddress(name, netip.MustParseAddr("::ffff:127.0.0.1")))
			}
			r := newRig(t, Config{Aliases: tc.aliases}, opts...)
			c := r.send(t, bmpgen.AppendInitiation(nil, tc.sysName, "unit test"))
			defer c.Close()
			waitFor(t, "router "+tc.want, func() bool { return r.val(tc.want, change.MeshdRouterPath("name")).GetStringVal() == tc.want })
			if got := r.core.Routers(); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("routers = %v, want [%s]", got, tc.want)
			}
			if got := r.val(tc.want, change.MeshdRouterPath("bmp-address")).GetStringVal(); got != "127.0.0.1" {
				t.Errorf("bmp-address = %q", got)
			}
			waitFor(t, "router_up event", func() bool {
				return r.count(change.EventRouterUp, func(e change.Event) bool { return e.Router == tc.want }) == 1
			})
		})
	}
}

// TestPeerHistory: up, down, up, down of one neighbor are kept as
// numbered history entries, oldest dropped beyond bmp.history, with the
// Peer Down reasons; last-established is the latest Peer Up's time.
func TestPeerHistory(t *testing.T) {
	r := newRig(t, Config{History: 3})
	at := func(d time.Duration) *bmpgen.Peer {
		p := peer()
		p.Time = t0.Add(d)
		return p
	}
	stream := upStream("edge1") // Peer Up at t0
	stream = bmpgen.AppendPeerDown(stream, at(10*time.Second), 2, 0, 0, nil, 24)
	stream = append(stream, peerUpFor(at(20*time.Second), "")...)
	stream = bmpgen.AppendPeerDown(stream, at(30*time.Second), 3, 6, 2, nil, 0)
	c := r.send(t, stream)
	defer c.Close()

	nb := func(e ...string) *gpb.Path { return change.MeshdNeighborPath("default", "192.0.2.2", e...) }
	hist := func(seq int, leaf string) *gpb.Path {
		return keyed(nb("bmp", "history", "event", "state", leaf), "event", "sequence", strconv.Itoa(seq))
	}
	waitFor(t, "fourth history entry", func() bool { return r.val("edge1", hist(4, "kind")).GetStringVal() == "DOWN" })
	type entry struct {
		kind   string
		at     time.Duration
		code   uint64
		reason string
	}
	want := map[int]entry{
		2: {"DOWN", 10 * time.Second, 2, "local system closed the session without a NOTIFICATION"},
		3: {"UP", 20 * time.Second, 0, ""},
		4: {"DOWN", 30 * time.Second, 3, "remote system closed the session with a NOTIFICATION"},
	}
	for seq, w := range want {
		got := entry{
			kind:   r.val("edge1", hist(seq, "kind")).GetStringVal(),
			at:     time.Duration(r.val("edge1", hist(seq, "time")).GetUintVal()) - time.Duration(t0.UnixNano()),
			code:   r.val("edge1", hist(seq, "reason-code")).GetUintVal(),
			reason: r.val("edge1", hist(seq, "reason")).GetStringVal(),
		}
		if got != w {
			t.Errorf("history %d = %+v, want %+v", seq, got, w)
		}
		if s := r.val("edge1", hist(seq, "sequence")).GetUintVal(); s != uint64(seq) {
			t.Errorf("history %d sequence leaf = %d", seq, s)
		}
	}
	if v := r.val("edge1", hist(1, "kind")); v != nil {
		t.Errorf("history 1 kept beyond bmp.history 3: %v", v)
	}
	oc := func(leaf string) *gpb.Path { return change.NeighborPath("default", "192.0.2.2", "state", leaf) }
	if got := r.val("edge1", oc("last-established")).GetUintVal(); got != uint64(t0.Add(20*time.Second).UnixNano()) {
		t.Errorf("last-established = %d, want the second Peer Up's time", got)
	}
	if got := r.val("edge1", oc("established-transitions")).GetUintVal(); got != 2 {
		t.Errorf("established-transitions = %d, want 2", got)
	}
	if got := r.val("edge1", nb("bmp", "state", "down-count")).GetUintVal(); got != 2 {
		t.Errorf("down-count = %d, want 2", got)
	}
	// The events tell the same story, in order.
	waitFor(t, "second peer_down event", func() bool { return r.count(change.EventPeerDown, nil) == 2 })
	r.mu.Lock()
	var kinds []change.EventKind
	for _, e := range r.events {
		if e.Kind == change.EventPeerUp || e.Kind == change.EventPeerDown {
			kinds = append(kinds, e.Kind)
		}
	}
	r.mu.Unlock()
	if w := []change.EventKind{change.EventPeerUp, change.EventPeerDown, change.EventPeerUp, change.EventPeerDown}; !slices.Equal(kinds, w) {
		t.Errorf("peer events = %v, want %v", kinds, w)
	}
}

// TestListenIPv4AndIPv6: bmp.listen takes IPv6 addresses as well as IPv4
// ones, and a router exporting over IPv6 is taken like any other.
func TestListenIPv4AndIPv6(t *testing.T) {
	probe, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatalf("this machine has no IPv6 loopback, which the test needs: %v", err)
	}
	probe.Close()
	core, err := merge.New(merge.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(core, WithConfig(Config{Listen: []string{"127.0.0.1:0", "[::1]:0"}}), WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := b.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	waitFor(t, "both listeners", func() bool { return len(b.Addrs()) == 2 })
	for _, a := range b.Addrs() {
		ap := netip.MustParseAddrPort(a.String())
		router := "v4-router"
		if ap.Addr().Is6() {
			router = "v6-router"
		}
		c, err := net.Dial("tcp", a.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(upStream(router)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, router+" connected", func() bool {
			v, _, _, _ := core.Leaf(router, change.MeshdRouterPath("bmp-connected"))
			return v.GetBoolVal()
		})
		if got := b.RouteCount(router, "default", "192.0.2.2", ""); got != 0 {
			t.Errorf("%s: %d routes before any was sent", router, got)
		}
	}
}

// TestPeerDownFlood replays what FRR 8.4 sends around one session reset
// while the peer refuses to reconnect: a Peer Down per failed attempt
// (bgp_bmp.c sends one on every backward FSM transition), stamped with
// the peer's last state change, and for a peer never up with the
// router's boot time. Only the real down counts: down-count, history and
// peer_down events say 1, the rest is counted as ignored.
func TestPeerDownFlood(t *testing.T) {
	r := newRig(t, Config{})
	boot := t0.Add(-40 * time.Minute)
	at := func(p *bmpgen.Peer, ts time.Time) *bmpgen.Peer {
		p.Time = ts
		return p
	}
	never := func() *bmpgen.Peer {
		return &bmpgen.Peer{Addr: netip.MustParseAddr("192.0.2.9"), AS: 42009099, Time: boot}
	}
	stream := upStream("edge1") // 192.0.2.2 up at t0
	// A neighbor configured but never up: FRR reports it at BMP start and
	// after every failed attempt.
	for range 3 {
		stream = bmpgen.AppendPeerDown(stream, never(), 3, 0, 0, nil, 0)
	}
	// The real down, then the flood of failed reconnects (each with the
	// time of the down, the peer's last change), then one stamped before
	// the session was up at all.
	stream = bmpgen.AppendPeerDown(stream, at(peer(), t0.Add(10*time.Second)), 3, 6, 4, nil, 0)
	for range 6 {
		stream = bmpgen.AppendPeerDown(stream, at(peer(), t0.Add(10*time.Second)), 2, 0, 0, nil, 0)
	}
	stream = bmpgen.AppendPeerDown(stream, at(peer(), boot), 3, 0, 0, nil, 0)
	c := r.send(t, stream)
	defer c.Close()

	nb := func(addr string, e ...string) *gpb.Path { return change.MeshdNeighborPath("default", addr, e...) }
	oc := func(addr, leaf string) *gpb.Path { return change.NeighborPath("default", addr, "state", leaf) }
	waitFor(t, "Peer Downs handled", func() bool {
		return testutil.ToFloat64(r.b.m.ignoredDowns["never_up"]) == 3 && testutil.ToFloat64(r.b.m.ignoredDowns["already_down"]) == 7
	})
	if got := r.val("edge1", nb("192.0.2.2", "bmp", "state", "down-count")).GetUintVal(); got != 1 {
		t.Errorf("down-count = %d, want 1", got)
	}
	if got := r.val("edge1", nb("192.0.2.2", "bmp", "state", "last-down")).GetUintVal(); got != uint64(t0.Add(10*time.Second).UnixNano()) {
		t.Errorf("last-down = %v, want the real down's time", time.Unix(0, int64(got)))
	}
	if got := r.val("edge1", nb("192.0.2.2", "bmp", "state", "last-down-reason-code")).GetUintVal(); got != 3 {
		t.Errorf("last-down-reason-code = %d, want the real down's 3", got)
	}
	if v := r.val("edge1", nb("192.0.2.2", "bmp", "history", "event")); v != nil {
		t.Errorf("history list has a value: %v", v)
	}
	if v := r.val("edge1", keyed(nb("192.0.2.2", "bmp", "history", "event", "state", "kind"), "event", "sequence", "3")); v != nil {
		t.Errorf("history entry 3 (beyond up, down): %v", v)
	}
	if got := r.val("edge1", oc("192.0.2.2", "established-transitions")).GetUintVal(); got != 1 {
		t.Errorf("established-transitions = %d, want 1", got)
	}
	// The never-up neighbor: known to be configured and not established,
	// with no down counted and no event.
	if got := r.val("edge1", oc("192.0.2.9", "session-state")).GetStringVal(); got != "IDLE" {
		t.Errorf("never-up neighbor session-state = %q, want IDLE", got)
	}
	if v := r.val("edge1", nb("192.0.2.9", "bmp", "state", "down-count")); v != nil {
		t.Errorf("never-up neighbor down-count = %v, want none", v)
	}
	waitFor(t, "the one peer_down event", func() bool { return r.count(change.EventPeerDown, nil) >= 1 })
	// The core has applied all the above: events of the same batches
	// would have arrived with them.
	if n := r.count(change.EventPeerDown, nil); n != 1 {
		t.Errorf("peer_down events = %d, want 1", n)
	}
	r.mu.Lock()
	for _, e := range r.events {
		if e.Kind == change.EventPeerDown && !e.Time.Equal(t0.Add(10*time.Second)) {
			t.Errorf("peer_down event at %v, want %v", e.Time, t0.Add(10*time.Second))
		}
	}
	r.mu.Unlock()
}

// TestPeerDownImplausibleTime: a Peer Down stamped before the peer's
// last Peer Up (FRR's boot-time stamp), or with no time, is stamped with
// the receive time instead.
func TestPeerDownImplausibleTime(t *testing.T) {
	for _, tc := range []struct {
		name string
		ts   time.Time
	}{{"before the Peer Up", t0.Add(-40 * time.Minute)}, {"zero", time.Time{}}, {"far future", time.Now().Add(24 * time.Hour)}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{})
			p := peer()
			p.Time = tc.ts
			before := time.Now()
			c := r.send(t, bmpgen.AppendPeerDown(upStream("edge1"), p, 2, 0, 0, nil, 0))
			defer c.Close()
			ld := change.MeshdNeighborPath("default", "192.0.2.2", "bmp", "state", "last-down")
			waitFor(t, "last-down", func() bool { return r.val("edge1", ld) != nil })
			got := time.Unix(0, int64(r.val("edge1", ld).GetUintVal()))
			if got.Before(before) || got.After(time.Now()) {
				t.Errorf("last-down = %v, want the receive time (after %v)", got, before)
			}
		})
	}
}

// TestPeerUpTime: FRR stamps a Peer Up sent as the session establishes
// with the peer's previous state change (its Peer Down's time, or the
// router's boot for a first establishment); meshd then takes the receive
// time. Peer Ups stamped after the peer's last down, or sent at a BMP
// session's start with no down before them, keep the router's time.
func TestPeerUpTime(t *testing.T) {
	boot := t0.Add(-40 * time.Minute)
	down := t0.Add(10 * time.Second)
	at := func(ts time.Time) *bmpgen.Peer {
		p := peer()
		p.Time = ts
		return p
	}
	fams := []uint32{1<<8 | 1}
	sent := bmpgen.Open{AS: 65001, HoldTime: 90, ID: rID, Families: fams, FourOctet: true}
	recv := bmpgen.Open{AS: 42009012, HoldTime: 30, ID: pID, Families: fams, FourOctet: true}
	up := func(b []byte, ts time.Time, port uint16) []byte {
		return bmpgen.AppendPeerUp(b, at(ts), netip.MustParseAddr("192.0.2.1"), 179, port, sent, recv, "")
	}
	init := bmpgen.AppendInitiation(nil, "edge1", "unit test")
	for _, tc := range []struct {
		name   string
		stream []byte
		ups    int
		want   time.Time // zero: the receive time
	}{
		{"at the BMP session's start, up for a while", up(init, boot, 50000), 1, boot},
		{"first establishment after a down at the start, stamped with the boot (FRR)",
			up(bmpgen.AppendPeerDown(init, at(boot), 3, 0, 0, nil, 0), boot, 50000), 1, time.Time{}},
		{"again after a down, stamped with the down's time (FRR)",
			up(bmpgen.AppendPeerDown(up(init, t0, 50000), at(down), 3, 0, 0, nil, 0), down, 50001), 2, time.Time{}},
		{"again after a down, stamped when it established (gobgpd)",
			up(bmpgen.AppendPeerDown(up(init, t0, 50000), at(down), 3, 0, 0, nil, 0), down.Add(time.Second), 50001), 2, down.Add(time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{})
			before := time.Now()
			c := r.send(t, tc.stream)
			defer c.Close()
			waitFor(t, fmt.Sprintf("%d peer_up events", tc.ups), func() bool { return r.count(change.EventPeerUp, nil) == tc.ups })
			evs := r.eventsOf(change.EventPeerUp)
			got := evs[len(evs)-1].Time
			le := time.Unix(0, int64(r.val("edge1", change.NeighborPath("default", pAddr.String(), "state", "last-established")).GetUintVal()))
			switch {
			case tc.want.IsZero() && (got.Before(before) || got.After(time.Now())):
				t.Errorf("peer_up event at %v, want the receive time (after %v)", got, before)
			case !tc.want.IsZero() && !got.Equal(tc.want):
				t.Errorf("peer_up event at %v, want the router's %v", got, tc.want)
			case !le.Equal(got):
				t.Errorf("last-established %v, want the peer_up event's %v", le, got)
			}
		})
	}
}
