//go:build integration

package bmpbridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/bmpbridge"
	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/sinks/influx"
)

// These tests hold meshd's BMP leaves and events against the routers' own
// view (FRR's vtysh JSON, gobgp's CLI JSON) and against Wireshark's BMP
// dissector on a capture of the same stream.

// frrNeighbor is the part of FRR's `show bgp neighbors ADDR json` the
// tests compare with.
type frrNeighbor struct {
	State       string `json:"bgpState"`
	Established uint64 `json:"connectionsEstablished"`
	Dropped     uint64 `json:"connectionsDropped"`
	RemoteAS    uint64 `json:"remoteAs"`
	// UpEpoch is when the session last established, in whole seconds.
	UpEpoch int64 `json:"bgpTimerUpEstablishedEpoch"`
}

func frrNeighborJSON(t *testing.T, d *testenv.Daemon, addr string) frrNeighbor {
	t.Helper()
	out := d.Vtysh(t, "show bgp neighbors "+addr+" json")
	var m map[string]frrNeighbor
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("FRR neighbor JSON: %v\n%s", err, out)
	}
	n, ok := m[addr]
	if !ok {
		t.Fatalf("FRR shows no neighbor %s:\n%s", addr, out)
	}
	return n
}

// tsharkBMPTypes returns the BMP message types Wireshark's dissector finds
// in a capture.
func tsharkBMPTypes(t *testing.T, pcap []byte, port int) (types []int) {
	t.Helper()
	testenv.Binary(t, "tshark")
	file := filepath.Join(t.TempDir(), "bmp.pcap")
	if err := os.WriteFile(file, pcap, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tshark", "-r", file, "-d", fmt.Sprintf("tcp.port==%d,bmp", port), "-Y", "bmp",
		"-T", "fields", "-E", "occurrence=a", "-e", "bmp.type")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	for _, line := range strings.Fields(string(out)) {
		for _, v := range strings.Split(line, ",") {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("tshark bmp.type %q: %v", v, err)
			}
			types = append(types, n)
		}
	}
	return types
}

// TestFRRPeerDownFlood resets an FRR session twice while the peer refuses
// to reconnect for a few seconds each time. FRR 8.4 sends a BMP Peer Down
// on every failed attempt; meshd must count only the real downs: its
// down-count, established-transitions and peer_down events must equal
// FRR's own connectionsDropped and connectionsEstablished.
func TestFRRPeerDownFlood(t *testing.T) {
	a := testenv.NewNetns(t, "flda")
	bns := testenv.NewNetns(t, "fldb")
	testenv.Veth(t, a, bns, []string{"10.0.3.1/30"}, []string{"10.0.3.2/30"})
	h := newHarness(t, a, bmpbridge.Config{})
	stopCapture := h.capture(t)
	in := startInflux(t, h)
	spkA := testenv.StartFRR(t, a, fmt.Sprintf(`frr defaults traditional
hostname frr-flood
!
router bgp 4200000003
 bgp router-id 10.0.3.1
 no bgp ebgp-requires-policy
 neighbor 10.0.3.2 remote-as 4200000002
 neighbor 10.0.3.2 timers 3 9
 neighbor 10.0.3.2 timers connect 1
 !
 bmp targets meshd
  bmp connect %s port %d min-retry 100 max-retry 1000
  bmp monitor ipv4 unicast post-policy
 exit
!
`, h.ip, h.port))
	spkB := testenv.StartGobgpd(t, bns, gobgpdConf(4200000002, "10.0.3.2", "10.0.3.1", 4200000003, "", 0, ""))

	const router, addr = "frr-flood", "10.0.3.2"
	state := func() string { return h.value(router, nbr("default", addr, "state/session-state")) }
	testenv.WaitFor(t, 40*time.Second, "FRR's neighbor ESTABLISHED in the core", func() bool { return state() == "ESTABLISHED" })
	// When FRR says each establishment happened, for the peer_up events.
	ups := []int64{frrNeighborJSON(t, spkA, addr).UpEpoch}

	const resets = 2
	for i := 1; i <= resets; i++ {
		received := h.metric(t, "meshd_bmp_messages_total", "type", "peer_down")
		spkB.Gobgp(t, "neighbor", "10.0.3.1", "disable")
		testenv.WaitFor(t, 30*time.Second, "FRR's session down", func() bool {
			return frrNeighborJSON(t, spkA, addr).Dropped == uint64(i)
		})
		// FRR retries every second and is refused each time: wait for
		// at least three of its Peer Downs past the real one.
		testenv.WaitFor(t, 30*time.Second, "FRR's Peer Downs for failed reconnects", func() bool {
			return h.metric(t, "meshd_bmp_messages_total", "type", "peer_down") >= received+4
		})
		spkB.Gobgp(t, "neighbor", "10.0.3.1", "enable")
		testenv.WaitFor(t, 40*time.Second, "FRR's session back up", func() bool {
			return frrNeighborJSON(t, spkA, addr).State == "Established" && state() == "ESTABLISHED"
		})
		ups = append(ups, frrNeighborJSON(t, spkA, addr).UpEpoch)
	}

	frr := frrNeighborJSON(t, spkA, addr)
	t.Logf("FRR: %+v; meshd ignored Peer Downs: %v", frr, h.metric(t, "meshd_bmp_peer_downs_ignored_total"))
	testenv.WaitFor(t, 10*time.Second, "meshd's transitions to match FRR's", func() bool {
		return h.value(router, nbr("default", addr, "state/established-transitions")) == strconv.FormatUint(frr.Established, 10)
	})
	mp := "/meshd/network-instances/network-instance[name=default]/neighbors/neighbor[neighbor-address=" + addr + "]/bmp/state/"
	if got := h.value(router, mp+"down-count"); got != strconv.FormatUint(frr.Dropped, 10) {
		t.Errorf("down-count %s, FRR's connectionsDropped %d", got, frr.Dropped)
	}
	if got := h.value(router, mp+"up-count"); got != strconv.FormatUint(frr.Established, 10) {
		t.Errorf("up-count %s, FRR's connectionsEstablished %d", got, frr.Established)
	}
	downs := func(e change.Event) bool { return e.Neighbor == addr }
	if n := h.countEvents(change.EventPeerDown, downs); n != int(frr.Dropped) {
		t.Errorf("peer_down events %d, FRR's connectionsDropped %d", n, frr.Dropped)
	}
	// The peer_down events as InfluxDB holds them.
	q := fmt.Sprintf(`SELECT count(reason_code) FROM bgp_session_event WHERE event = 'peer_down' AND router = '%s' AND neighbor = '%s'`, router, addr)
	if !waitUntil(20*time.Second, func() bool { return influxCount(t, in, q) == int64(frr.Dropped) }) {
		t.Errorf("InfluxDB holds %d peer_down events, FRR's connectionsDropped %d", influxCount(t, in, q), frr.Dropped)
	}
	// Every peer_down is stamped after the test began, not with FRR's
	// boot time.
	for _, e := range h.allEvents() {
		if e.Kind == change.EventPeerDown && time.Since(e.Time) > 5*time.Minute {
			t.Errorf("peer_down stamped %v", e.Time)
		}
	}

	// Every peer_up is stamped when FRR says the session established.
	// FRR stamps the Peer Up with the peer's previous state change (the
	// boot for the first, the down for the others); its epoch is whole
	// seconds, and the Peer Up reaches meshd within milliseconds on
	// loopback, so 2 s is one second of rounding and one of slack.
	var upTimes []time.Time
	for _, e := range h.allEvents() {
		if e.Kind == change.EventPeerUp && e.Neighbor == addr {
			upTimes = append(upTimes, e.Time)
		}
	}
	if len(upTimes) != len(ups) {
		t.Errorf("%d peer_up events, FRR established %d times", len(upTimes), len(ups))
	}
	for i := range min(len(upTimes), len(ups)) {
		if d := upTimes[i].Sub(time.Unix(ups[i], 0)); d < -2*time.Second || d > 2*time.Second {
			t.Errorf("peer_up %d at %v, FRR's bgpTimerUpEstablishedEpoch %v (%v apart)", i+1, upTimes[i].UTC(), time.Unix(ups[i], 0).UTC(), d)
		}
	}
	if len(upTimes) > 0 {
		if got, want := h.value(router, nbr("default", addr, "state/last-established")), strconv.FormatInt(upTimes[len(upTimes)-1].UnixNano(), 10); got != want {
			t.Errorf("last-established %s, want the last peer_up's %s", got, want)
		}
	}

	// Wireshark sees the flood that meshd did not count.
	types := tsharkBMPTypes(t, stopCapture(), h.port)
	var pd int
	for _, ty := range types {
		if ty == 2 {
			pd++
		}
	}
	t.Logf("tshark: %d BMP messages, %d Peer Down", len(types), pd)
	if pd <= int(frr.Dropped) {
		t.Errorf("tshark counts %d Peer Downs for %d drops: the flood this test is about did not happen", pd, frr.Dropped)
	}
	if got := h.metric(t, "meshd_bmp_peer_downs_ignored_total"); int(got) != pd-int(frr.Dropped) {
		t.Errorf("meshd ignored %v Peer Downs, tshark counts %d of which %d real", got, pd, frr.Dropped)
	}
}

// gobgpOrigins reads `gobgp global rib -j` (the router's Loc-RIB) and
// returns each prefix's origin AS as the router sees it: the last AS of
// the AS_PATH, or the router's own AS for a path it originates (empty
// AS_PATH).
func gobgpOrigins(t *testing.T, d *testenv.Daemon, localAS uint32) map[string]uint32 {
	t.Helper()
	out := d.Gobgp(t, "global", "rib", "-j")
	var rib map[string][]struct {
		Attrs []struct {
			Type    int `json:"type"`
			ASPaths []struct {
				Type int      `json:"segment_type"`
				ASNs []uint32 `json:"asns"`
			} `json:"as_paths"`
		} `json:"attrs"`
		Best bool `json:"best"`
	}
	if err := json.Unmarshal([]byte(out), &rib); err != nil {
		t.Fatalf("gobgp global rib -j: %v\n%s", err, out)
	}
	origins := map[string]uint32{}
	for prefix, paths := range rib {
		for _, p := range paths {
			if !p.Best {
				continue
			}
			o := localAS
			for _, a := range p.Attrs {
				if a.Type != 2 {
					continue
				}
				for _, seg := range a.ASPaths {
					if len(seg.ASNs) > 0 {
						o = seg.ASNs[len(seg.ASNs)-1]
					}
				}
			}
			origins[prefix] = o
		}
	}
	return origins
}

// TestGobgpdHijackFlaggedOnOriginator: gobgpd A (BMP, all route
// monitoring policies) originates 10.200.1.0/24; its peer B announces the
// more-specific 10.200.1.0/25. A, the victim, must flag it: its own /24
// is only in its Loc-RIB, with an empty AS_PATH. Then the other way: B
// originates 10.200.2.0/24 and A hijacks it with 10.200.2.0/25, which A's
// Loc-RIB must flag too (the two-router `fault hijack r1 10.200.2.0/25`
// that raised nothing). The origin AS meshd stores for every Loc-RIB
// route must be what gobgp's own RIB says.
func TestGobgpdHijackFlaggedOnOriginator(t *testing.T) {
	a := testenv.NewNetns(t, "hija")
	bns := testenv.NewNetns(t, "hijb")
	testenv.Veth(t, a, bns, []string{"10.0.4.1/30"}, []string{"10.0.4.2/30"})
	h := newHarness(t, a, bmpbridge.Config{})
	const asA, asB = 4200000001, 4200000002
	spkA := testenv.StartGobgpd(t, a, speakerConf{as: asA, id: "10.0.4.1", peer: "10.0.4.2", peerAS: asB, bmpHost: h.ip, bmpPort: h.port, sysName: "hij-a", bmpPolicy: "all", statsTimeout: 15}.String())
	spkB := testenv.StartGobgpd(t, bns, gobgpdConf(asB, "10.0.4.2", "10.0.4.1", asA, "", 0, ""))
	const router = "hij-a"
	testenv.WaitFor(t, 30*time.Second, "neighbor ESTABLISHED in the core", func() bool {
		return h.value(router, nbr("default", "10.0.4.2", "state/session-state")) == "ESTABLISHED"
	})
	spkA.Gobgp(t, "global", "rib", "add", "10.200.1.0/24")
	spkB.Gobgp(t, "global", "rib", "add", "10.200.2.0/24")
	inLocRIB := func(prefix string, origin uint32) func(change.Event) bool {
		return func(e change.Event) bool {
			return e.Route.RIB == "LOC_RIB" && e.Route.Action == change.Announce && e.Route.Prefix == prefix && e.Route.OriginAS == origin
		}
	}
	testenv.WaitFor(t, 20*time.Second, "A's own /24 in its Loc-RIB with origin A", func() bool {
		return h.countEvents(change.EventRoute, inLocRIB("10.200.1.0/24", asA)) > 0
	})
	testenv.WaitFor(t, 20*time.Second, "B's /24 in A's Loc-RIB", func() bool {
		return h.countEvents(change.EventRoute, inLocRIB("10.200.2.0/24", asB)) > 0
	})
	// gobgpd sends no End-of-RIB over BMP: meshd takes what arrives in
	// the first originCheckDelay (30 s) after a view's first route as
	// the initial table, whose more-specifics are no news.
	time.Sleep(31 * time.Second)
	if n := h.countEvents(change.EventOriginChange, nil); n != 0 {
		t.Fatalf("%d origin_change events before any hijack:\n%s", n, h.dumpRoutes())
	}

	spkB.Gobgp(t, "global", "rib", "add", "10.200.1.0/25")
	spkA.Gobgp(t, "global", "rib", "add", "10.200.2.0/25")
	flagged := func(prefix string, was, now uint32, rib string) func(change.Event) bool {
		return func(e change.Event) bool {
			f := e.Fields
			return f["prefix"] == prefix && f["old_origin_as"] == int64(was) && f["new_origin_as"] == int64(now) && f["rib"] == rib
		}
	}
	for _, w := range []struct {
		prefix   string
		was, now uint32
		rib      string
	}{
		{"10.200.1.0/25", asA, asB, "ADJ_RIB_IN_PRE"},
		{"10.200.1.0/25", asA, asB, "ADJ_RIB_IN_POST"},
		{"10.200.1.0/25", asA, asB, "LOC_RIB"},
		{"10.200.2.0/25", asB, asA, "LOC_RIB"},
	} {
		if !waitUntil(20*time.Second, func() bool {
			return h.countEvents(change.EventOriginChange, flagged(w.prefix, w.was, w.now, w.rib)) > 0
		}) {
			t.Errorf("no origin_change for %s in %s (%d -> %d)", w.prefix, w.rib, w.was, w.now)
		}
	}
	if t.Failed() {
		t.Logf("events:\n%s", h.dumpRoutes())
	}
	if got := h.metric(t, "meshd_bmp_route_events_total", "outcome", "origin_change"); got < 4 {
		t.Errorf("meshd_bmp_route_events_total{outcome=origin_change} = %v, want at least 4", got)
	}

	// meshd's origin AS of every Loc-RIB route is gobgp's.
	want := gobgpOrigins(t, spkA, asA)
	t.Logf("gobgp's Loc-RIB origins: %v", want)
	if len(want) != 4 {
		t.Fatalf("gobgp shows %d best paths, want 4: %v", len(want), want)
	}
	for prefix, o := range want {
		if h.countEvents(change.EventRoute, inLocRIB(prefix, o)) == 0 {
			t.Errorf("meshd has no Loc-RIB route %s with gobgp's origin AS %d; events:\n%s", prefix, o, h.dumpRoutes())
		}
	}
}

// waitUntil polls cond until it holds or timeout passes.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// TestFRRFeedSemantics holds meshd's view of an FRR 8.4 router's BMP feed
// against FRR's own tables, for a neighbor with and without
// soft-reconfiguration inbound (FRR keeps an Adj-RIB-In, which its
// pre-policy monitoring reads, only with it). received must be FRR's
// accepted count (pfxRcd); received-pre-policy FRR's received-routes
// count where FRR has them, and absent where it has not (FRR then sends a
// pre-policy withdraw after every post-policy announce); the AS path of
// every Adj-RIB-In route event must be FRR's path for the route, though
// Wireshark shows FRR's own AS prepended on the wire.
func TestFRRFeedSemantics(t *testing.T) {
	for i, softIn := range []bool{false, true} {
		t.Run(fmt.Sprintf("soft-reconfiguration=%v", softIn), func(t *testing.T) {
			a := testenv.NewNetns(t, fmt.Sprintf("sema%d", i))
			bns := testenv.NewNetns(t, fmt.Sprintf("semb%d", i))
			aIP, bIP := fmt.Sprintf("10.0.%d.1", 5+i), fmt.Sprintf("10.0.%d.2", 5+i)
			testenv.Veth(t, a, bns, []string{aIP + "/30"}, []string{bIP + "/30"})
			h := newHarness(t, a, bmpbridge.Config{FlushInterval: 200 * time.Millisecond})
			stopCapture := h.capture(t)
			soft := ""
			if softIn {
				soft = "  neighbor " + bIP + " soft-reconfiguration inbound\n"
			}
			router := fmt.Sprintf("frr-sem%d", i)
			spkA := testenv.StartFRR(t, a, fmt.Sprintf(`frr defaults traditional
hostname %s
!
router bgp 4200000003
 bgp router-id %s
 no bgp ebgp-requires-policy
 neighbor %s remote-as 4200000002
 neighbor %s timers 3 9
 neighbor %s timers connect 1
 address-family ipv4 unicast
%s  neighbor %s route-map IN in
 exit-address-family
 !
 bmp targets meshd
  bmp connect %s port %d min-retry 100 max-retry 1000
  bmp monitor ipv4 unicast pre-policy
  bmp monitor ipv4 unicast post-policy
 exit
!
ip prefix-list DENY seq 5 permit 10.88.9.0/24
route-map IN deny 10
 match ip address prefix-list DENY
route-map IN permit 20
!
`, router, aIP, bIP, bIP, bIP, soft, bIP, h.ip, h.port))
			spkB := testenv.StartGobgpd(t, bns, gobgpdConf(4200000002, bIP, aIP, 4200000003, "", 0, ""))
			testenv.WaitFor(t, 40*time.Second, "ESTABLISHED in the core", func() bool {
				return h.value(router, nbr("default", bIP, "state/session-state")) == "ESTABLISHED"
			})
			// Three routes FRR accepts, one its import policy denies.
			for _, p := range []string{"10.88.1.0/24", "10.88.2.0/24", "10.88.3.0/24", "10.88.9.0/24"} {
				spkB.Gobgp(t, "global", "rib", "add", p)
			}
			type summary struct {
				IPv4 struct {
					Peers map[string]struct {
						PfxRcd uint64 `json:"pfxRcd"`
					} `json:"peers"`
				} `json:"ipv4Unicast"`
			}
			var accepted uint64
			testenv.WaitFor(t, 20*time.Second, "FRR accepting 3 routes", func() bool {
				var s summary
				if err := json.Unmarshal([]byte(spkA.Vtysh(t, "show bgp summary json")), &s); err != nil {
					return false
				}
				accepted = s.IPv4.Peers[bIP].PfxRcd
				return accepted == 3
			})
			af := nbr("default", bIP, "afi-safis/afi-safi[afi-safi-name=IPV4_UNICAST]/state/prefixes/")
			testenv.WaitFor(t, 20*time.Second, "meshd's received to be FRR's pfxRcd", func() bool {
				return h.value(router, af+"received") == strconv.FormatUint(accepted, 10)
			})
			pre := h.value(router, af+"received-pre-policy")
			// Everything FRR sent is in by now (received matched): what
			// Wireshark sees of it.
			pcap := stopCapture()
			nlri := strings.Join(tsharkField(t, pcap, h.port, "bgp.nlri_prefix"), ",")
			if softIn {
				// FRR 8.4 sends a pre-policy route only when its import
				// policy accepts it (BMP's queue is fed from route
				// processing): the denied 10.88.9.0/24 is in FRR's
				// Adj-RIB-In but never on the BMP wire until a BMP
				// session's initial table sync. meshd can count only what
				// was sent; the test holds both facts.
				if strings.Contains(nlri, "10.88.9.0") {
					t.Errorf("tshark shows the denied 10.88.9.0/24 in FRR's feed (%s): FRR sends pre-policy routes its policy denies after all", nlri)
				}
				// What FRR sends for it instead: withdraws, pre-policy too,
				// though its Adj-RIB-In holds it (meshd's pre-policy rules
				// must not take that for a missing Adj-RIB-In).
				wd := strings.Join(tsharkField(t, pcap, h.port, "bgp.withdrawn_prefix"), ",")
				t.Logf("tshark withdrawn prefixes: %s", wd)
				if !strings.Contains(wd, "10.88.9.0") {
					t.Errorf("tshark shows no withdraw of the denied 10.88.9.0/24: %s", wd)
				}
				var rr struct {
					Total uint64 `json:"totalPrefixCounter"`
				}
				out := spkA.Vtysh(t, "show bgp ipv4 unicast neighbors "+bIP+" received-routes json")
				if err := json.Unmarshal([]byte(out), &rr); err != nil {
					t.Fatalf("received-routes json: %v\n%s", err, out)
				}
				if rr.Total != 4 {
					t.Errorf("FRR's received-routes counts %d, want 4 (the denied one too)", rr.Total)
				}
				if !waitUntil(10*time.Second, func() bool {
					return h.value(router, af+"received-pre-policy") == strconv.FormatUint(rr.Total-1, 10)
				}) {
					t.Errorf("received-pre-policy %q, FRR's received-routes count %d less the denied route it does not send; events:\n%s", h.value(router, af+"received-pre-policy"), rr.Total, h.dumpRoutes())
				}
			} else if pre != "" {
				t.Errorf("received-pre-policy = %s; FRR keeps no Adj-RIB-In without soft-reconfiguration inbound", pre)
			}
			if got := h.metric(t, "meshd_bmp_sender_quirks_total", "quirk", "pre_policy_without_adj_rib_in"); (got > 0) == softIn {
				t.Errorf("pre_policy_without_adj_rib_in counted %v with soft-reconfiguration %v", got, softIn)
			}

			// AS paths: FRR's own view of each route against meshd's
			// route events.
			var rib struct {
				Routes map[string][]struct {
					Path string `json:"path"`
				} `json:"routes"`
			}
			out := spkA.Vtysh(t, "show bgp ipv4 unicast json")
			if err := json.Unmarshal([]byte(out), &rib); err != nil {
				t.Fatalf("show bgp ipv4 unicast json: %v\n%s", err, out)
			}
			for prefix, paths := range rib.Routes {
				if len(paths) != 1 {
					t.Fatalf("FRR has %d paths for %s", len(paths), prefix)
				}
				for _, view := range []string{"ADJ_RIB_IN_POST", "ADJ_RIB_IN_PRE"} {
					if view == "ADJ_RIB_IN_PRE" && !softIn {
						continue
					}
					match := func(e change.Event) bool {
						return e.Route.RIB == view && e.Route.Prefix == prefix && e.Route.Action == change.Announce
					}
					testenv.WaitFor(t, 10*time.Second, view+" event for "+prefix, func() bool { return h.countEvents(change.EventRoute, match) > 0 })
					for _, e := range h.allEvents() {
						if e.Kind == change.EventRoute && match(e) && (e.Route.ASPath != paths[0].Path || e.Route.OriginAS != 4200000002) {
							t.Errorf("%s %s: AS path %q origin %d, FRR's path %q", view, prefix, e.Route.ASPath, e.Route.OriginAS, paths[0].Path)
						}
					}
				}
			}
			// On the wire, FRR's own AS leads.
			paths := tsharkField(t, pcap, h.port, "bgp.update.path_attribute.as_path_segment.as4")
			t.Logf("tshark AS path segments: %q", paths)
			if !slices.ContainsFunc(paths, func(s string) bool { return strings.HasPrefix(s, "4200000003,4200000002") }) {
				t.Errorf("tshark shows no AS path starting with FRR's AS: %q", paths)
			}
		})
	}
}

// tsharkField returns one field of every BMP frame of a capture, as
// tshark prints it (occurrences joined by commas), empty ones left out.
func tsharkField(t *testing.T, pcap []byte, port int, field string) []string {
	t.Helper()
	testenv.Binary(t, "tshark")
	file := filepath.Join(t.TempDir(), "bmp.pcap")
	if err := os.WriteFile(file, pcap, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tshark", "-r", file, "-d", fmt.Sprintf("tcp.port==%d,bmp", port), "-Y", "bmp", "-T", "fields", "-E", "occurrence=a", "-e", field)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	var vals []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			vals = append(vals, l)
		}
	}
	return vals
}

// TestGobgpdCounts holds meshd's prefix counts of a gobgpd neighbor
// against gobgp's own, with an import policy rejecting one of four
// routes: received-pre-policy is gobgp's received (its Adj-RIB-In),
// received the routes of the neighbor in gobgp's RIB (post-policy). gobgp's
// own "accepted" is not that: it counts the paths not rejected as loops
// (pkg/server/peer.go SetRejected), ignoring the import policy, and it is
// what gobgpd sends as statistics type 8, type 7 being received.
func TestGobgpdCounts(t *testing.T) {
	a := testenv.NewNetns(t, "cnta")
	bns := testenv.NewNetns(t, "cntb")
	testenv.Veth(t, a, bns, []string{"10.0.7.1/30"}, []string{"10.0.7.2/30"})
	h := newHarness(t, a, bmpbridge.Config{FlushInterval: 200 * time.Millisecond})
	conf := speakerConf{as: 4200000001, id: "10.0.7.1", peer: "10.0.7.2", peerAS: 4200000002, bmpHost: h.ip, bmpPort: h.port, sysName: "cnt-a", bmpPolicy: "all", statsTimeout: 15}.String() + `
[[defined-sets.prefix-sets]]
  prefix-set-name = "ps9"
  [[defined-sets.prefix-sets.prefix-list]]
    ip-prefix = "10.66.9.0/24"

[[policy-definitions]]
  name = "deny9"
  [[policy-definitions.statements]]
    name = "s1"
    [policy-definitions.statements.conditions.match-prefix-set]
      prefix-set = "ps9"
    [policy-definitions.statements.actions]
      route-disposition = "reject-route"

[global.apply-policy.config]
  import-policy-list = ["deny9"]
  default-import-policy = "accept-route"
`
	spkA := testenv.StartGobgpd(t, a, conf)
	spkB := testenv.StartGobgpd(t, bns, gobgpdConf(4200000002, "10.0.7.2", "10.0.7.1", 4200000001, "", 0, ""))
	const router, addr = "cnt-a", "10.0.7.2"
	testenv.WaitFor(t, 30*time.Second, "ESTABLISHED in the core", func() bool {
		return h.value(router, nbr("default", addr, "state/session-state")) == "ESTABLISHED"
	})
	for _, p := range []string{"10.66.1.0/24", "10.66.2.0/24", "10.66.3.0/24", "10.66.9.0/24"} {
		spkB.Gobgp(t, "global", "rib", "add", p)
	}
	type gobgpNeighbor struct {
		AfiSafis []struct {
			State struct {
				Family struct {
					Afi int `json:"afi"`
				} `json:"family"`
				Received uint64 `json:"received"`
				Accepted uint64 `json:"accepted"`
			} `json:"state"`
		} `json:"afi_safis"`
	}
	var received, accepted uint64
	testenv.WaitFor(t, 20*time.Second, "gobgp receiving 4 routes", func() bool {
		out := spkA.Gobgp(t, "neighbor", addr, "-j")
		var n gobgpNeighbor
		if err := json.Unmarshal([]byte(out), &n); err != nil {
			t.Fatalf("gobgp neighbor -j: %v\n%s", err, out)
		}
		received, accepted = 0, 0
		for _, f := range n.AfiSafis {
			if f.State.Family.Afi == 1 {
				received, accepted = f.State.Received, f.State.Accepted
			}
		}
		return received == 4
	})
	inRIB := uint64(len(gobgpOrigins(t, spkA, 4200000001))) // every route is B's
	t.Logf("gobgp: received %d, accepted %d, in its RIB %d", received, accepted, inRIB)
	if inRIB != 3 {
		t.Fatalf("gobgp's RIB holds %d routes, want 3 (one rejected by import policy)", inRIB)
	}
	af := nbr("default", addr, "afi-safis/afi-safi[afi-safi-name=IPV4_UNICAST]/state/prefixes/")
	if !waitUntil(20*time.Second, func() bool {
		return h.value(router, af+"received-pre-policy") == strconv.FormatUint(received, 10) &&
			h.value(router, af+"received") == strconv.FormatUint(inRIB, 10)
	}) {
		t.Errorf("received-pre-policy %s, received %s; gobgp: received %d, in its RIB %d", h.value(router, af+"received-pre-policy"), h.value(router, af+"received"), received, inRIB)
	}
	stat := func(typ int) string {
		return h.value(router, fmt.Sprintf("/meshd/network-instances/network-instance[name=default]/neighbors/neighbor[neighbor-address=%s]/bmp/stats/counter[type=%d]/state/value", addr, typ))
	}
	testenv.WaitFor(t, 40*time.Second, "gobgpd's stats 7 and 8 to be its received and accepted", func() bool {
		return stat(7) == strconv.FormatUint(received, 10) && stat(8) == strconv.FormatUint(accepted, 10)
	})
	// FRR's quirks are not gobgpd's; gobgpd's own (path IDs on its
	// Loc-RIB routes) is counted when its Loc-RIB is monitored.
	for _, q := range []string{"local_as_prepended", "pre_policy_without_adj_rib_in"} {
		if got := h.metric(t, "meshd_bmp_sender_quirks_total", "quirk", q); got != 0 {
			t.Errorf("sender quirk %s counted %v times for gobgpd, want none", q, got)
		}
	}
}

// startInflux runs a real InfluxDB with meshd's sink fed by the harness's
// merge core.
func startInflux(t *testing.T, h *harness) *testenv.Influxd {
	t.Helper()
	in := testenv.StartInfluxd(t)
	s, err := influx.New(influx.Config{URL: in.URL, Database: "meshd", CreateDatabase: true, SpoolDir: t.TempDir(),
		FlushInterval: 100 * time.Millisecond, Timeout: 2 * time.Second, SnapshotInterval: -1, BatchSize: 5000},
		influx.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	sub := h.core.Subscribe("influx", 4096)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, sub) }()
	t.Cleanup(func() {
		cancel()
		<-done
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		_ = s.Close(cctx)
	})
	return in
}

// influxCount runs a SELECT count(...) query and returns the count, 0
// for no series.
func influxCount(t *testing.T, in *testenv.Influxd, q string) int64 {
	t.Helper()
	out, err := in.Query("meshd", q)
	if err != nil {
		t.Fatalf("influx query: %v", err)
	}
	var r struct {
		Results []struct {
			Series []struct {
				Values [][]json.Number `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("influx answer %s: %v", out, err)
	}
	if len(r.Results) == 0 || len(r.Results[0].Series) == 0 || len(r.Results[0].Series[0].Values) == 0 || len(r.Results[0].Series[0].Values[0]) < 2 {
		return 0
	}
	n, _ := r.Results[0].Series[0].Values[0][1].Int64()
	return n
}
