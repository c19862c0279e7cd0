//go:build integration

package peering_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/bmpbridge"
	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/merge"
	"github.com/meshd/meshd/peering"
)

var netSeq atomic.Int32

// rig is meshd's BMP bridge with the peering source feeding it, on the
// host's end of a veth into ns, and the events the merge core published.
type rig struct {
	core   *merge.Core
	bridge *bmpbridge.Bridge
	meshd  string // meshd's address on the session
	router string // the router's
	port   int
	mu     sync.Mutex
	events []change.Event
}

func newRig(t *testing.T, ns *testenv.Netns, routerAS uint32, name string) *rig {
	t.Helper()
	b := 1 + int(netSeq.Add(1))%250
	r := &rig{meshd: fmt.Sprintf("100.126.%d.1", b), router: fmt.Sprintf("100.126.%d.2", b), port: testenv.FreePort(t)}
	testenv.HostVeth(t, ns, r.meshd+"/30", r.router+"/30")
	core, err := merge.New(merge.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	br, err := bmpbridge.New(core, bmpbridge.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	r.core, r.bridge = core, br
	src, err := peering.New(peering.Config{
		Listen:   []string{net.JoinHostPort(r.meshd, fmt.Sprint(r.port))},
		LocalAS:  65000,
		RouterID: "10.255.255.1",
		HoldTime: 9 * time.Second,
		Peers:    []peering.Peer{{Address: r.router, AS: routerAS, Name: name}},
	}, br, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	sub := core.Subscribe("test", 4096)
	go func() {
		for batch := range sub.C() {
			r.mu.Lock()
			r.events = append(r.events, batch.Events...)
			r.mu.Unlock()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = src.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; br.Close(); sub.Close() })
	return r
}

func (r *rig) count(kind change.EventKind, f func(change.Event) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind && f(e) {
			n++
		}
	}
	return n
}

func (r *rig) leaf(router, path string) string {
	v, _, _, ok := r.core.Leaf(router, change.MustPath(path))
	if !ok || v == nil {
		return ""
	}
	if s := v.GetStringVal(); s != "" {
		return s
	}
	return fmt.Sprint(v.GetUintVal())
}

func gobgpdConf(as uint32, id, meshd string, port int) string {
	return fmt.Sprintf(`[global.config]
  as = %d
  router-id = %q
  port = -1

[[neighbors]]
  [neighbors.config]
    neighbor-address = %q
    peer-as = 65000
  [neighbors.transport.config]
    remote-port = %d
    local-address = %q
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
`, as, id, meshd, port, id)
}

// adjOut counts the routes gobgpd sends meshd, by its own API.
func adjOut(t *testing.T, d *testenv.Daemon, meshd, family string) int {
	out := d.Gobgp(t, "neighbor", meshd, "adj-out", "-a", family, "-j")
	var m map[string]json.RawMessage
	if strings.TrimSpace(out) == "" || strings.TrimSpace(out) == "null" {
		return 0
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("gobgp adj-out: %v: %s", err, out)
	}
	return len(m)
}

// TestGobgpdPeering: gobgpd, a router with no BMP, peers with meshd's
// peering source. Its session joins the record of the neighbor meshd is
// on the router; the routes meshd holds are the routes gobgpd says it
// sends (its own API), through an announcement and a withdrawal; its
// Cease (an administrative shutdown) is a peer_down with the
// NOTIFICATION's code and subcode.
func TestGobgpdPeering(t *testing.T) {
	ns := testenv.NewNetns(t, "peer")
	const name = "nobmp1"
	r := newRig(t, ns, 65010, name)
	spk := testenv.StartGobgpd(t, ns, gobgpdConf(65010, r.router, r.meshd, r.port))

	state := "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=" + r.meshd + "]/state/session-state"
	testenv.WaitFor(t, 30*time.Second, "the peering session ESTABLISHED in meshd's record", func() bool {
		return r.leaf(name, state) == "ESTABLISHED"
	})
	routes := func() int { return r.bridge.RouteCount(name, "default", r.meshd, "ADJ_RIB_OUT_POST") }
	for i := range 20 {
		spk.Gobgp(t, "global", "rib", "add", fmt.Sprintf("10.%d.%d.0/24", 90, i), "-a", "ipv4")
	}
	spk.Gobgp(t, "global", "rib", "add", "2001:db8:90::/48", "-a", "ipv6")
	testenv.WaitFor(t, 15*time.Second, "21 routes in meshd's RIB", func() bool { return routes() == 21 })
	if v4, v6 := adjOut(t, spk, r.meshd, "ipv4"), adjOut(t, spk, r.meshd, "ipv6"); v4+v6 != routes() {
		t.Errorf("gobgpd sends %d + %d routes, meshd holds %d", v4, v6, routes())
	}
	spk.Gobgp(t, "global", "rib", "del", "10.90.3.0/24", "-a", "ipv4")
	testenv.WaitFor(t, 15*time.Second, "the withdrawal in meshd's RIB", func() bool { return routes() == 20 })
	if v4, v6 := adjOut(t, spk, r.meshd, "ipv4"), adjOut(t, spk, r.meshd, "ipv6"); v4+v6 != routes() {
		t.Errorf("after the withdrawal gobgpd sends %d + %d routes, meshd holds %d", v4, v6, routes())
	}
	// The origin of a route is the router's AS: its own routes, an empty
	// AS_PATH from gobgpd's side, carry 65010 to an eBGP peer.
	if n := r.count(change.EventRoute, func(e change.Event) bool {
		return e.Route != nil && e.Route.Prefix == "10.90.1.0/24" && e.Route.OriginAS == 65010
	}); n == 0 {
		t.Error("no route event for 10.90.1.0/24 with origin AS 65010")
	}

	// An administrative shutdown: gobgpd sends a Cease.
	spk.Gobgp(t, "neighbor", r.meshd, "disable")
	testenv.WaitFor(t, 15*time.Second, "a peer_down with the router's Cease", func() bool {
		return r.count(change.EventPeerDown, func(e change.Event) bool {
			return fmt.Sprint(e.Fields["notification_code"]) == "6" && fmt.Sprint(e.Fields["notification_subcode"]) == "2"
		}) == 1
	})
	testenv.WaitFor(t, 15*time.Second, "the routes gone with the session", func() bool { return routes() == 0 })
	if got := r.leaf(name, state); got == "ESTABLISHED" {
		t.Errorf("session-state %q after the Cease", got)
	}
}
