//go:build integration

package bmpbridge_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/bmpbridge"
	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
)

// gobgpdAddPathConf is a gobgpd speaker for the restart test: ADD-PATH on
// IPv4 unicast (receive or send), and, with a BMP host, route monitoring
// of every view ("all": pre-policy, post-policy and the Loc-RIB).
func gobgpdAddPathConf(as uint32, id, peer string, peerAS uint32, bmpHost string, bmpPort int, sysName string, receive bool) string {
	ap := "send"
	if receive {
		ap = "receive"
	}
	return speakerConf{as: as, id: id, peer: peer, peerAS: peerAS, bmpHost: bmpHost, bmpPort: bmpPort, sysName: sysName,
		bmpPolicy: "all", addPath: ap}.String()
}

// TestGobgpdBMPRestartAddPathLocRIB runs two gobgpd with ADD-PATH between
// them, the receiver exporting every BMP view to the bridge, and checks:
// path IDs decoded from a real speaker; an IPv6 withdraw; the Loc-RIB
// instance peer kept out of the neighbor list; and a BMP session restart
// with the router's full re-send making no duplicate route events and no
// double counts.
func TestGobgpdBMPRestartAddPathLocRIB(t *testing.T) {
	a := testenv.NewNetns(t, "bmpra")
	bns := testenv.NewNetns(t, "bmprb")
	testenv.Veth(t, a, bns, []string{"10.0.2.1/30"}, []string{"10.0.2.2/30"})
	h := newHarness(t, a, bmpbridge.Config{StaleTimeout: 5 * time.Second})
	const router, peer = "spk-ra", "10.0.2.2"
	testenv.StartGobgpd(t, a, gobgpdAddPathConf(4200000011, "10.0.2.1", peer, 4200000012, h.ip, h.port, router, true))
	spkB := testenv.StartGobgpd(t, bns, gobgpdAddPathConf(4200000012, "10.0.2.2", "10.0.2.1", 4200000011, "", 0, "", false))

	testenv.WaitFor(t, 30*time.Second, "neighbor ESTABLISHED in the core", func() bool {
		return h.value(router, nbr("default", peer, "state/session-state")) == "ESTABLISHED"
	})
	addPath := "/meshd/network-instances/network-instance[name=default]/neighbors/neighbor[neighbor-address=" + peer + "]/bmp/state/add-path"
	if got := h.value(router, addPath); !strings.Contains(got, "IPV4_UNICAST") {
		t.Errorf("bmp add-path = %q, want IPV4_UNICAST negotiated", got)
	}

	spkB.Gobgp(t, "global", "rib", "add", "10.98.0.0/24")
	spkB.Gobgp(t, "global", "rib", "add", "10.98.1.0/24")
	spkB.Gobgp(t, "global", "rib", "-a", "ipv6", "add", "2001:db8:98::/48")
	testenv.WaitFor(t, 20*time.Second, "3 routes pre-policy", func() bool {
		return h.bridge.RouteCount(router, "default", peer, "ADJ_RIB_IN_PRE") == 3
	})
	withID := func(e change.Event) bool {
		return e.Route.RIB == "ADJ_RIB_IN_PRE" && e.Route.AfiSafi == "IPV4_UNICAST" && e.Route.PathID != 0 && e.Route.Action == change.Announce
	}
	testenv.WaitFor(t, 5*time.Second, "IPv4 announces with a path ID", func() bool { return h.countEvents(change.EventRoute, withID) == 2 })

	// IPv6 withdraw.
	spkB.Gobgp(t, "global", "rib", "-a", "ipv6", "del", "2001:db8:98::/48")
	v6wd := func(e change.Event) bool {
		return e.Route.Action == change.Withdraw && e.Route.AfiSafi == "IPV6_UNICAST" && e.Route.Prefix == "2001:db8:98::/48" && e.Route.RIB == "ADJ_RIB_IN_PRE"
	}
	testenv.WaitFor(t, 10*time.Second, "IPv6 withdraw event", func() bool { return h.countEvents(change.EventRoute, v6wd) == 1 })
	testenv.WaitFor(t, 10*time.Second, "2 routes pre-policy", func() bool {
		return h.bridge.RouteCount(router, "default", peer, "ADJ_RIB_IN_PRE") == 2
	})

	// The Loc-RIB instance peer: routes kept, no neighbor entry.
	testenv.WaitFor(t, 10*time.Second, "Loc-RIB routes", func() bool {
		n := 0
		for _, ni := range []string{"global", "default"} {
			for _, addr := range []string{"0.0.0.0", "::"} {
				n += h.bridge.RouteCount(router, ni, addr, "LOC_RIB")
			}
		}
		return n >= 2
	})
	onlyPeer := func() {
		t.Helper()
		for _, u := range h.core.Snapshot(router) {
			if _, addr, _, ok := change.NeighborOf(u.Path); ok && addr != peer {
				t.Fatalf("neighbor %q in the core (path %s); only %s is a neighbor", addr, change.PathKey(u.Path), peer)
			}
		}
	}
	time.Sleep(300 * time.Millisecond) // a counter flush
	onlyPeer()

	// BMP session restart: gobgpd reconnects and re-sends everything.
	ribs := "/meshd/network-instances/network-instance[name=default]/neighbors/neighbor[neighbor-address=" + peer + "]/bmp/ribs/rib[view=ADJ_RIB_IN_PRE]/state/"
	annBefore, prefBefore := h.value(router, ribs+"announcements"), h.value(router, ribs+"prefixes")
	routeEvents := h.countEvents(change.EventRoute, nil)
	ups := h.countEvents(change.EventRouterUp, nil)
	if n := h.bridge.Disconnect(router); n != 1 {
		t.Fatalf("Disconnect closed %d sessions, want 1", n)
	}
	// gobgpd notices a lost collector only when it writes: a new route
	// makes it write, fail and reconnect; the re-send then carries it.
	time.Sleep(200 * time.Millisecond)
	spkB.Gobgp(t, "global", "rib", "add", "10.98.2.0/24")
	testenv.WaitFor(t, 20*time.Second, "the router's second BMP session", func() bool { return h.countEvents(change.EventRouterUp, nil) == ups+1 })
	for deadline := time.Now().Add(20 * time.Second); h.value(router, ribs+"duplicates") != "2"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("re-send not counted as 2 duplicates: duplicates %q, announcements %q, prefixes %q; events:\n%s",
				h.value(router, ribs+"duplicates"), h.value(router, ribs+"announcements"), h.value(router, ribs+"prefixes"), h.dumpRoutes())
		}
	}
	testenv.WaitFor(t, 10*time.Second, "3 routes pre-policy", func() bool {
		return h.bridge.RouteCount(router, "default", peer, "ADJ_RIB_IN_PRE") == 3
	})
	time.Sleep(time.Second) // anything late from the re-send
	// Every (view, prefix, path ID) announced exactly once across both
	// sessions; the only new events are the new route's, one per view.
	perRoute := map[string]int{}
	for _, e := range h.allEvents() {
		if e.Kind == change.EventRoute && e.Route.Action == change.Announce {
			perRoute[fmt.Sprintf("%s %s %s#%d", e.Neighbor, e.Route.RIB, e.Route.Prefix, e.Route.PathID)]++
		}
	}
	for k, n := range perRoute {
		if n != 1 {
			t.Errorf("%s announced %d times", k, n)
		}
	}
	newEvents := h.countEvents(change.EventRoute, nil) - routeEvents
	newRoute := h.countEvents(change.EventRoute, func(e change.Event) bool { return e.Route.Prefix == "10.98.2.0/24" })
	if newEvents != newRoute || newRoute == 0 {
		t.Errorf("route events since the restart = %d, of which %d for the new route; want only the new route's\n%s", newEvents, newRoute, h.dumpRoutes())
	}
	if got, want := h.value(router, ribs+"announcements"), fmt.Sprint(atoi(annBefore)+1); got != want {
		t.Errorf("announcements = %s after the re-send, want %s (%s before + the new route)", got, want, annBefore)
	}
	if got := h.value(router, ribs+"prefixes"); prefBefore != "2" || got != "3" {
		t.Errorf("prefixes = %s after the re-send (%s before), want 3", got, prefBefore)
	}
	if got := h.value(router, nbr("default", peer, "state/established-transitions")); got != "1" {
		t.Errorf("established-transitions = %s after the re-send, want 1", got)
	}
	// Past stale-timeout, nothing re-sent was expired.
	time.Sleep(5 * time.Second)
	if n := h.bridge.RouteCount(router, "default", peer, "ADJ_RIB_IN_PRE"); n != 3 {
		t.Errorf("routes after stale-timeout = %d, want 3", n)
	}
	if n := h.countEvents(change.EventPeerDown, nil); n != 0 {
		t.Errorf("peer_down events = %d, want 0: %+v", n, h.allEvents())
	}
	onlyPeer()
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// TestFRRBMPRestart: FRR's BMP session to meshd is cut; FRR reconnects and
// sends its monitored tables again. Every route is announced once across
// both sessions, the re-send is counted as duplicates, the counters and
// the neighbor's transitions are unchanged, and nothing is expired.
func TestFRRBMPRestart(t *testing.T) {
	a := testenv.NewNetns(t, "frrra")
	bns := testenv.NewNetns(t, "frrrb")
	testenv.Veth(t, a, bns, []string{"10.0.5.1/30"}, []string{"10.0.5.2/30"})
	h := newHarness(t, a, bmpbridge.Config{StaleTimeout: 3 * time.Second})
	testenv.StartFRR(t, a, fmt.Sprintf(`frr defaults traditional
hostname frr-ra
!
router bgp 4200000031
 bgp router-id 10.0.5.1
 no bgp ebgp-requires-policy
 neighbor 10.0.5.2 remote-as 4200000032
 neighbor 10.0.5.2 timers 3 9
 neighbor 10.0.5.2 timers connect 1
 address-family ipv4 unicast
  neighbor 10.0.5.2 soft-reconfiguration inbound
 exit-address-family
 !
 bmp targets meshd
  bmp connect %s port %d min-retry 100 max-retry 1000
  bmp monitor ipv4 unicast pre-policy
 exit
!
`, h.ip, h.port))
	spkB := testenv.StartGobgpd(t, bns, gobgpdConf(4200000032, "10.0.5.2", "10.0.5.1", 4200000031, "", 0, ""))
	const router, peer = "frr-ra", "10.0.5.2"
	testenv.WaitFor(t, 40*time.Second, "FRR's neighbor ESTABLISHED in the core", func() bool {
		return h.value(router, nbr("default", peer, "state/session-state")) == "ESTABLISHED"
	})
	for _, p := range []string{"10.96.0.0/24", "10.96.1.0/24", "10.96.2.0/24"} {
		spkB.Gobgp(t, "global", "rib", "add", p)
	}
	testenv.WaitFor(t, 20*time.Second, "3 routes pre-policy", func() bool {
		return h.bridge.RouteCount(router, "default", peer, "ADJ_RIB_IN_PRE") == 3
	})
	ribs := "/meshd/network-instances/network-instance[name=default]/neighbors/neighbor[neighbor-address=" + peer + "]/bmp/ribs/rib[view=ADJ_RIB_IN_PRE]/state/"
	testenv.WaitFor(t, 5*time.Second, "3 announce events", func() bool {
		return h.countEvents(change.EventRoute, func(e change.Event) bool { return e.Route.Action == change.Announce }) == 3
	})
	annBefore, transBefore := h.value(router, ribs+"announcements"), h.value(router, nbr("default", peer, "state/established-transitions"))
	ups := h.countEvents(change.EventRouterUp, nil)
	// FRR may have reported a collided first connection as a Peer Down.
	downs := h.countEvents(change.EventPeerDown, nil)

	if n := h.bridge.Disconnect(router); n != 1 {
		t.Fatalf("Disconnect closed %d sessions, want 1", n)
	}
	testenv.WaitFor(t, 20*time.Second, "FRR's second BMP session", func() bool { return h.countEvents(change.EventRouterUp, nil) == ups+1 })
	testenv.WaitFor(t, 20*time.Second, "the re-send counted as 3 duplicates", func() bool { return h.value(router, ribs+"duplicates") == "3" })
	// Past stale-timeout: the re-sent routes were not expired.
	time.Sleep(4 * time.Second)
	if n := h.bridge.RouteCount(router, "default", peer, "ADJ_RIB_IN_PRE"); n != 3 {
		t.Errorf("routes after the restart and stale-timeout = %d, want 3", n)
	}
	if n := h.countEvents(change.EventRoute, nil); n != 3 {
		t.Errorf("route events = %d across both sessions, want 3; events:\n%s", n, h.dumpRoutes())
	}
	if got := h.value(router, ribs+"announcements"); got != annBefore {
		t.Errorf("announcements = %s after the re-send, want %s", got, annBefore)
	}
	if got := h.value(router, nbr("default", peer, "state/established-transitions")); got != transBefore {
		t.Errorf("established-transitions = %s after the re-send, want %s", got, transBefore)
	}
	if n := h.countEvents(change.EventPeerDown, nil) - downs; n != 0 {
		t.Errorf("peer_down events since the restart = %d, want 0", n)
	}
}
