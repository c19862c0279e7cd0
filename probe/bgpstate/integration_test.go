//go:build integration

package bgpstate

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/gnmitarget"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/merge"
)

// served wires a poller of r to a gnmitarget server as `meshd probe --bgp`
// does, and to a merge core that counts leaves not fitting the schema.
type servedPoller struct {
	p       *Poller
	cl      gpb.GNMIClient
	mu      sync.Mutex
	invalid int
	errs    []error
}

func serve(t *testing.T, r Reader, router string) *servedPoller {
	t.Helper()
	ocs, ms, err := merge.Schemas()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gnmitarget.New(gnmitarget.WithSchema(ocs.RootSchema(), ms.RootSchema()))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	core, err := merge.New()
	if err != nil {
		t.Fatal(err)
	}
	sp := &servedPoller{}
	publish := func(chs []change.Change) {
		ups := make([]change.Update, len(chs))
		for i, c := range chs {
			ups[i] = change.Update{Router: router, Path: c.Path, Key: change.PathKey(c.Path), Value: c.Value, Time: c.Time, Source: c.Source}
		}
		srv.Update(router, ups)
		res := core.Apply(chs)
		sp.mu.Lock()
		sp.invalid += res.Invalid
		if res.Err != nil {
			sp.errs = append(sp.errs, res.Err)
		}
		sp.mu.Unlock()
	}
	sp.p, err = NewPoller(Config{Daemon: "test", Interval: 500 * time.Millisecond}, r, router, publish)
	if err == nil {
		t.Fatal("a daemon other than frr or gobgp was accepted")
	}
	if sp.p, err = NewPoller(Config{Daemon: "frr", Interval: 500 * time.Millisecond}, r, router, publish); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = sp.p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	sp.cl = gpb.NewGNMIClient(conn)
	return sp
}

// get reads every leaf the target serves under /network-instances with a
// real gNMI Get, keyed by canonical path.
func (sp *servedPoller) get(t *testing.T, router string) map[string]*gpb.TypedValue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := sp.cl.Get(ctx, &gpb.GetRequest{Prefix: &gpb.Path{Target: router},
		Path: []*gpb.Path{{Elem: []*gpb.PathElem{{Name: "network-instances"}}}}, Encoding: gpb.Encoding_PROTO})
	if err != nil {
		return nil
	}
	out := map[string]*gpb.TypedValue{}
	for _, n := range resp.GetNotification() {
		for _, u := range n.GetUpdate() {
			p := &gpb.Path{Elem: append(append([]*gpb.PathElem(nil), n.GetPrefix().GetElem()...), u.GetPath().GetElem()...)}
			out[change.PathKey(p)] = u.GetVal()
		}
	}
	return out
}

func (sp *servedPoller) checkValid(t *testing.T) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.invalid != 0 {
		t.Errorf("%d leaves did not fit the OpenConfig schema: %v", sp.invalid, sp.errs)
	}
}

type want struct {
	path *gpb.Path
	ok   func(*gpb.TypedValue) bool
	desc string
}

func eqS(s string) func(*gpb.TypedValue) bool {
	return func(v *gpb.TypedValue) bool { return v.GetStringVal() == s }
}
func eqU(u uint64) func(*gpb.TypedValue) bool {
	return func(v *gpb.TypedValue) bool { return v.GetUintVal() == u }
}
func geU(u uint64) func(*gpb.TypedValue) bool {
	return func(v *gpb.TypedValue) bool { return v.GetUintVal() >= u }
}

func (sp *servedPoller) waitFor(t *testing.T, router string, timeout time.Duration, ws []want) {
	t.Helper()
	var last map[string]*gpb.TypedValue
	var missing string
	deadline := time.Now().Add(timeout)
	for {
		last = sp.get(t, router)
		missing = ""
		for _, w := range ws {
			if v := last[change.PathKey(w.path)]; v == nil || !w.ok(v) {
				missing = fmt.Sprintf("%s (%s) is %v", change.PathKey(w.path), w.desc, v)
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s over gNMI: %s", timeout, missing)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

const (
	frrAS   = 4200000003
	gobgpAS = 65002
)

// TestDaemonsOverGNMI runs FRR 8.4 (bgpd) and gobgpd v4 peering over IPv4
// and IPv6 in two namespaces, polls each through its real interface
// (vtysh, the gRPC API dialled inside gobgpd's namespace), and reads the
// leaves back over gNMI: sessions, ASes, prefix counts, message counters,
// and a reset counted as a second establishment with a NOTIFICATION.
func TestDaemonsOverGNMI(t *testing.T) {
	pair := testenv.StartBGPPair(t, "bst", 77, frrAS, gobgpAS)
	frr, gb := pair.FRR, pair.Gobgpd
	gb.Gobgp(t, "global", "rib", "add", "203.0.113.0/24", "-a", "ipv4")
	gb.Gobgp(t, "global", "rib", "add", "198.51.100.0/24", "-a", "ipv4")
	gb.Gobgp(t, "global", "rib", "add", "2001:db8:77::/48", "-a", "ipv6")

	fsp := serve(t, &FRR{Vtysh: testenv.Binary(t, "vtysh"), Socket: frr.Dir}, "ra")
	gsp := serve(t, &GoBGP{Netns: gb.NS.Name}, "rb")

	st := func(addr string, elems ...string) *gpb.Path {
		return change.NeighborPath("default", addr, append([]string{"state"}, elems...)...)
	}
	pfx := func(addr, afi, leaf string) *gpb.Path {
		return change.AfiSafiPath("default", addr, afi, "state", "prefixes", leaf)
	}
	t.Run("frr", func(t *testing.T) {
		fsp.waitFor(t, "ra", 45*time.Second, []want{
			{st("10.77.0.2", "session-state"), eqS("ESTABLISHED"), "v4 session up"},
			{st("fd00:77::2", "session-state"), eqS("ESTABLISHED"), "v6 session up"},
			{st("10.77.0.2", "peer-as"), eqU(gobgpAS), "peer AS"},
			{st("10.77.0.2", "local-as"), eqU(frrAS), "4-byte local AS"},
			{st("10.77.0.2", "established-transitions"), eqU(1), "one establishment"},
			{st("10.77.0.2", "last-established"), func(v *gpb.TypedValue) bool {
				return time.Since(time.Unix(0, int64(v.GetUintVal()))) < 2*time.Minute
			}, "recent, in ns"},
			{st("10.77.0.2", "messages", "received", "UPDATE"), geU(1), "updates received"},
			{pfx("10.77.0.2", "IPV4_UNICAST", "received"), eqU(2), "two v4 prefixes received"},
			{pfx("10.77.0.2", "IPV4_UNICAST", "installed"), eqU(2), "two v4 prefixes installed"},
			// FRR has no sender-side AS-path loop check: it sends its own
			// prefix and gobgpd's two back.
			{pfx("10.77.0.2", "IPV4_UNICAST", "sent"), eqU(3), "three v4 prefixes sent"},
			{pfx("fd00:77::2", "IPV6_UNICAST", "received"), eqU(1), "one v6 prefix received"},
			{change.NeighborPath("default", "10.77.0.2", "timers", "state", "negotiated-hold-time"), eqU(9), "hold time"},
		})
	})
	t.Run("gobgp", func(t *testing.T) {
		gsp.waitFor(t, "rb", 30*time.Second, []want{
			{st("10.77.0.1", "session-state"), eqS("ESTABLISHED"), "v4 session up"},
			{st("fd00:77::1", "session-state"), eqS("ESTABLISHED"), "v6 session up"},
			{st("10.77.0.1", "peer-as"), eqU(frrAS), "4-byte peer AS"},
			{st("10.77.0.1", "local-as"), eqU(gobgpAS), "local AS"},
			{st("10.77.0.1", "established-transitions"), eqU(1), "one establishment"},
			{pfx("10.77.0.1", "IPV4_UNICAST", "received"), eqU(1), "one v4 prefix received"},
			{pfx("10.77.0.1", "IPV4_UNICAST", "sent"), eqU(2), "two v4 prefixes sent"},
			{pfx("fd00:77::1", "IPV6_UNICAST", "sent"), eqU(1), "one v6 prefix sent"},
		})
	})
	t.Run("reset", func(t *testing.T) {
		// gobgpd resets the IPv4 session: both sides count a second
		// establishment, FRR a NOTIFICATION received, gobgpd one sent.
		gb.Gobgp(t, "neighbor", "10.77.0.1", "reset")
		fsp.waitFor(t, "ra", 40*time.Second, []want{
			{st("10.77.0.2", "established-transitions"), eqU(2), "second establishment"},
			{st("10.77.0.2", "messages", "received", "NOTIFICATION"), geU(1), "the reset's NOTIFICATION"},
			{st("10.77.0.2", "session-state"), eqS("ESTABLISHED"), "up again"},
		})
		gsp.waitFor(t, "rb", 20*time.Second, []want{
			{st("10.77.0.1", "established-transitions"), eqU(2), "second establishment"},
			{st("10.77.0.1", "messages", "sent", "NOTIFICATION"), geU(1), "the reset's NOTIFICATION"},
			{st("10.77.0.1", "session-state"), eqS("ESTABLISHED"), "up again"},
		})
	})
	fsp.checkValid(t)
	gsp.checkValid(t)
}
