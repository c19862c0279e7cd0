//go:build integration

package peering_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
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
	return newRigMD5(t, ns, routerAS, name, "")
}

func newRigMD5(t *testing.T, ns *testenv.Netns, routerAS uint32, name, password string) *rig {
	return newRigWith(t, ns, routerAS, name, password, nil)
}

// newRigWith is newRig with a TCP MD5 key and bridge options made once
// the addresses are known.
func newRigWith(t *testing.T, ns *testenv.Netns, routerAS uint32, name, password string, opts func(r *rig) []bmpbridge.Option) *rig {
	t.Helper()
	b := 1 + int(netSeq.Add(1))%250
	r := &rig{meshd: fmt.Sprintf("100.126.%d.1", b), router: fmt.Sprintf("100.126.%d.2", b), port: testenv.FreePort(t)}
	testenv.HostVeth(t, ns, r.meshd+"/30", r.router+"/30")
	core, err := merge.New(merge.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	bopts := []bmpbridge.Option{bmpbridge.WithRegisterer(prometheus.NewRegistry())}
	if opts != nil {
		bopts = append(bopts, opts(r)...)
	}
	br, err := bmpbridge.New(core, bopts...)
	if err != nil {
		t.Fatal(err)
	}
	r.core, r.bridge = core, br
	src, err := peering.New(peering.Config{
		Listen:   []string{net.JoinHostPort(r.meshd, fmt.Sprint(r.port))},
		LocalAS:  65000,
		RouterID: "10.255.255.1",
		HoldTime: 9 * time.Second,
		Peers:    []peering.Peer{{Address: r.router, AS: routerAS, Name: name, Password: password}},
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

// gobgpdConf is a gobgpd that peers from id with peer (at port, 0:
// BGP's own) for the families given, and listens for none.
func gobgpdConf(as uint32, id, peer string, peerAS uint32, port int, families ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `[global.config]
  as = %d
  router-id = %q
  port = -1

[[neighbors]]
  [neighbors.config]
    neighbor-address = %q
    peer-as = %d
  [neighbors.transport.config]
    local-address = %q
`, as, id, peer, peerAS, id)
	if port != 0 {
		fmt.Fprintf(&b, "    remote-port = %d\n", port)
	}
	b.WriteString(`  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
`)
	for _, f := range families {
		fmt.Fprintf(&b, "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = %q\n", f)
	}
	return b.String()
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
	spk := testenv.StartGobgpd(t, ns, gobgpdConf(65010, r.router, r.meshd, 65000, r.port, "ipv4-unicast", "ipv6-unicast"))

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

	// The session's messages in the record: the UPDATEs gobgpd says it
	// sent meshd (its own API), End-of-RIBs included.
	nbr := strings.TrimSuffix(state, "session-state")
	var sentUpd uint64
	testenv.WaitFor(t, 15*time.Second, "messages/sent/UPDATE in meshd's record equal to gobgpd's count", func() bool {
		sentUpd, _ = gobgpSent(t, spk, r.meshd)
		return sentUpd > 0 && r.leaf(name, nbr+"messages/sent/UPDATE") == fmt.Sprint(sentUpd)
	})
	if got := r.leaf(name, nbr+"messages/received/UPDATE"); got != "0" {
		t.Errorf("messages/received/UPDATE %q, want 0: meshd advertises nothing", got)
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
	// gobgpd forgets a disabled neighbor's counters: the Cease it sent
	// is the peer_down above.
	if got := r.leaf(name, nbr+"messages/sent/NOTIFICATION"); got != "1" {
		t.Errorf("messages/sent/NOTIFICATION %q in meshd's record after the router's Cease, want 1", got)
	}
	if got := r.leaf(name, nbr+"messages/sent/UPDATE"); got != fmt.Sprint(sentUpd) {
		t.Errorf("messages/sent/UPDATE %q after the session, gobgpd said %d before its Cease", got, sentUpd)
	}
}

// gobgpSent is what gobgpd says it sent peer: UPDATEs and NOTIFICATIONs.
func gobgpSent(t *testing.T, d *testenv.Daemon, peer string) (updates, notifications uint64) {
	t.Helper()
	out := d.Gobgp(t, "neighbor", peer, "-j")
	var n struct {
		State struct {
			Messages struct {
				Sent struct {
					Update       uint64 `json:"update"`
					Notification uint64 `json:"notification"`
				} `json:"sent"`
			} `json:"messages"`
		} `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &n); err != nil {
		t.Fatalf("gobgp neighbor %s -j: %v: %s", peer, err, out)
	}
	return n.State.Messages.Sent.Update, n.State.Messages.Sent.Notification
}

// frrPaths counts the paths FRR's own table holds for prefixes under
// 10.91/16 (show bgp json), which ADD-PATH sends meshd every one of.
func frrPaths(t *testing.T, d *testenv.Daemon) (prefixes, paths int) {
	out := d.Vtysh(t, "show bgp ipv4 unicast json")
	var m struct {
		Routes map[string][]json.RawMessage `json:"routes"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("show bgp json: %v", err)
	}
	for p, ps := range m.Routes {
		if strings.HasPrefix(p, "10.91.") {
			prefixes++
			paths += len(ps)
		}
	}
	return prefixes, paths
}

// TestFRRPeeringAddPath: FRR peers with meshd and sends it every path
// (addpath-tx-all-paths) of prefixes two upstream gobgpd announce: the
// paths meshd holds are the paths FRR's own table holds (show bgp
// json), and when one upstream goes, its paths go from both.
func TestFRRPeeringAddPath(t *testing.T) {
	frr := testenv.NewNetns(t, "pfrr")
	u1, u2 := testenv.NewNetns(t, "pup1"), testenv.NewNetns(t, "pup2")
	testenv.Veth(t, frr, u1, []string{"10.0.11.1/30"}, []string{"10.0.11.2/30"})
	testenv.Veth(t, frr, u2, []string{"10.0.12.1/30"}, []string{"10.0.12.2/30"})
	const name = "frr-peer"
	r := newRig(t, frr, 4200000003, name)
	d := testenv.StartFRR(t, frr, fmt.Sprintf(`frr defaults traditional
hostname frr-peer
!
router bgp 4200000003
 bgp router-id 10.0.11.1
 no bgp ebgp-requires-policy
 bgp bestpath as-path multipath-relax
 neighbor 10.0.11.2 remote-as 4200000011
 neighbor 10.0.12.2 remote-as 4200000012
 neighbor %s remote-as 65000
 neighbor %s port %d
 neighbor %s update-source %s
 neighbor 10.0.11.2 timers 3 9
 neighbor 10.0.12.2 timers 3 9
 neighbor %s timers 3 9
 neighbor 10.0.11.2 timers connect 1
 neighbor 10.0.12.2 timers connect 1
 neighbor %s timers connect 1
 address-family ipv4 unicast
  neighbor %s addpath-tx-all-paths
 exit-address-family
!
`, r.meshd, r.meshd, r.port, r.meshd, r.router, r.meshd, r.meshd, r.meshd))
	up1 := testenv.StartGobgpd(t, u1, gobgpdConf(4200000011, "10.0.11.2", "10.0.11.1", 4200000003, 0, "ipv4-unicast"))
	up2 := testenv.StartGobgpd(t, u2, gobgpdConf(4200000012, "10.0.12.2", "10.0.12.1", 4200000003, 0, "ipv4-unicast"))
	for i := range 10 {
		up1.Gobgp(t, "global", "rib", "add", fmt.Sprintf("10.91.%d.0/24", i), "-a", "ipv4")
		up2.Gobgp(t, "global", "rib", "add", fmt.Sprintf("10.91.%d.0/24", i), "-a", "ipv4")
	}
	up2.Gobgp(t, "global", "rib", "add", "10.91.100.0/24", "-a", "ipv4")
	held := func() int { return r.bridge.RouteCount(name, "default", r.meshd, "ADJ_RIB_OUT_POST") }
	// 10 prefixes with two paths each and one with one, beside FRR's own
	// routes (none here): 21 paths.
	testenv.WaitFor(t, 60*time.Second, "FRR's 21 paths of 11 prefixes in meshd's RIB", func() bool {
		p, n := frrPaths(t, d)
		return p == 11 && n == 21 && held() == 21
	})
	up1.Gobgp(t, "neighbor", "10.0.11.1", "disable")
	testenv.WaitFor(t, 30*time.Second, "the first upstream's paths gone from FRR and from meshd", func() bool {
		p, n := frrPaths(t, d)
		return p == 11 && n == 11 && held() == 11
	})
}

// startBIRD runs BIRD 2 in ns with conf until the test ends, and returns
// a function running birdc commands against it.
func startBIRD(t *testing.T, ns *testenv.Netns, conf string) func(cmd ...string) string {
	t.Helper()
	bin, birdc := testenv.Binary(t, "bird"), testenv.Binary(t, "birdc")
	dir := t.TempDir()
	path, sock := dir+"/bird.conf", dir+"/bird.ctl"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command(bin, "-f", "-c", path, "-s", sock, "-P", dir+"/bird.pid")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("BIRD's log:\n%s", log.String())
		}
	})
	run := func(args ...string) string {
		out, err := exec.Command(birdc, append([]string{"-s", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("birdc %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	testenv.WaitFor(t, 20*time.Second, "BIRD answering birdc", func() bool {
		err := exec.Command(birdc, "-s", sock, "show", "status").Run()
		return err == nil
	})
	return run
}

// birdCount reads birdc's "count": a protocol with channels in two
// tables ends with their total.
var birdCount = regexp.MustCompile(`(?:^|\n)(?:Total: )?(\d+) of \d+ routes[^\n]*\s*$`)

// TestBIRDPeering: BIRD 2, which has no BMP, peers with meshd. The routes
// meshd holds are those BIRD says it exports to meshd (show route export
// count), through a new static route and its removal; BIRD's protocol
// disabled is a Cease (administrative shutdown) in meshd's peer_down.
func TestBIRDPeering(t *testing.T) {
	ns := testenv.NewNetns(t, "pbird")
	const name = "bird1"
	r := newRig(t, ns, 4200000005, name)
	dir := t.TempDir()
	extra := dir + "/extra.conf"
	if err := os.WriteFile(extra, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	birdc := startBIRD(t, ns, fmt.Sprintf(`log stderr { warning, error, fatal };
router id %s;
protocol device { scan time 10; }
protocol static own4 {
  ipv4 { import all; };
  route 10.92.0.0/24 blackhole;
  route 10.92.1.0/24 blackhole;
  route 10.92.2.0/24 blackhole;
  include %q;
}
protocol static own6 {
  ipv6 { import all; };
  route 2001:db8:92::/48 blackhole;
  route 2001:db8:93::/48 blackhole;
}
protocol bgp meshd {
  local %s as 4200000005;
  neighbor %s port %d as 65000;
  hold time 9;
  keepalive time 3;
  connect retry time 1;
  ipv4 { import none; export all; };
  ipv6 { import none; export all; next hop address 2001:db8:ffff::2; };
}
`, r.router, extra, r.router, r.meshd, r.port))
	state := "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=" + r.meshd + "]/state/session-state"
	testenv.WaitFor(t, 30*time.Second, "BIRD's session ESTABLISHED in meshd's record", func() bool { return r.leaf(name, state) == "ESTABLISHED" })
	held := func() int { return r.bridge.RouteCount(name, "default", r.meshd, "ADJ_RIB_OUT_POST") }
	exported := func() int {
		m := birdCount.FindStringSubmatch(birdc("show", "route", "export", "meshd", "count"))
		if m == nil {
			return -1
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	// Over an IPv4 session BIRD exports IPv6 routes only with an IPv6
	// next hop (next hop address); without one it sends their
	// withdrawal.
	testenv.WaitFor(t, 15*time.Second, "meshd holding what BIRD exports (3 IPv4 and 2 IPv6 routes)", func() bool { return exported() == 5 && held() == 5 })
	if err := os.WriteFile(extra, []byte("route 10.92.9.0/24 blackhole;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	birdc("configure")
	testenv.WaitFor(t, 15*time.Second, "the new route exported and held", func() bool { return exported() == 6 && held() == 6 })
	if err := os.WriteFile(extra, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	birdc("configure")
	testenv.WaitFor(t, 15*time.Second, "its withdrawal", func() bool { return exported() == 5 && held() == 5 })
	birdc("disable", "meshd")
	testenv.WaitFor(t, 15*time.Second, "a peer_down with BIRD's Cease", func() bool {
		return r.count(change.EventPeerDown, func(e change.Event) bool { return fmt.Sprint(e.Fields["notification_code"]) == "6" }) == 1
	})
	testenv.WaitFor(t, 15*time.Second, "the routes gone with the session", func() bool { return held() == 0 })
}

// TestBIRDPeeringMD5: with a TCP MD5 key on both ends (RFC 2385) the
// session comes up and carries the routes; with a wrong key on BIRD's
// end it does not.
func TestBIRDPeeringMD5(t *testing.T) {
	for _, tt := range []struct {
		name, birdKey string
		up            bool
	}{
		{"same key", "meshd-md5", true},
		{"wrong key", "not-the-key", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ns := testenv.NewNetns(t, "pmd5")
			const name = "bird-md5"
			r := newRigMD5(t, ns, 4200000005, name, "meshd-md5")
			startBIRD(t, ns, fmt.Sprintf(`log stderr { warning, error, fatal };
router id %s;
protocol device { scan time 10; }
protocol static own4 { ipv4 { import all; }; route 10.93.0.0/24 blackhole; }
protocol bgp meshd {
  local %s as 4200000005;
  neighbor %s port %d as 65000;
  password %q;
  hold time 9;
  connect retry time 1;
  ipv4 { import none; export all; };
}
`, r.router, r.router, r.meshd, r.port, tt.birdKey))
			held := func() int { return r.bridge.RouteCount(name, "default", r.meshd, "ADJ_RIB_OUT_POST") }
			if tt.up {
				testenv.WaitFor(t, 30*time.Second, "the MD5-signed session up with its route", func() bool { return held() == 1 })
				return
			}
			// Three connect retries of BIRD's: with the wrong key the
			// kernel drops every segment, and nothing comes.
			time.Sleep(5 * time.Second)
			if n := held(); n != 0 {
				t.Errorf("a session with the wrong MD5 key carried %d routes", n)
			}
		})
	}
}

// TestPeeringNamedByTarget: a peer with no name is the router of the
// gNMI target at its address, as a BMP router without a sysName is, so
// its routes and session join that router's record.
func TestPeeringNamedByTarget(t *testing.T) {
	ns := testenv.NewNetns(t, "pname")
	const target = "edge-gnmi"
	r := newRigWith(t, ns, 65010, "", "", func(r *rig) []bmpbridge.Option {
		ip, _ := netip.ParseAddr(r.router)
		return []bmpbridge.Option{bmpbridge.WithTargets(target), bmpbridge.WithTargetAddress(target, ip)}
	})
	spk := testenv.StartGobgpd(t, ns, gobgpdConf(65010, r.router, r.meshd, 65000, r.port, "ipv4-unicast", "ipv6-unicast"))
	spk.Gobgp(t, "global", "rib", "add", "10.94.0.0/24", "-a", "ipv4")
	testenv.WaitFor(t, 30*time.Second, "the route held under the target's name", func() bool {
		return r.bridge.RouteCount(target, "default", r.meshd, "ADJ_RIB_OUT_POST") == 1
	})
}

// TestFRRPeeringGracefulRestart: FRR restarts gracefully (RFC 4724)
// while peering with meshd, the helper. Killed, its routes stay in
// meshd's RIB, the session not established; back with one network
// fewer, the routes it sends again were never withdrawn, and its
// End-of-RIB withdraws the one it no longer has: meshd holds what FRR
// says it advertises (show bgp json). Killed again and not back within
// its restart time, its routes go.
func TestFRRPeeringGracefulRestart(t *testing.T) {
	frr := testenv.NewNetns(t, "pgr")
	const name = "frr-gr"
	r := newRig(t, frr, 4200000004, name)
	conf := func(without int) string {
		var nets strings.Builder
		for i := range 10 {
			if i != without {
				fmt.Fprintf(&nets, "  network 10.93.%d.0/24\n", i)
			}
		}
		return fmt.Sprintf(`frr defaults traditional
hostname frr-gr
!
router bgp 4200000004
 bgp router-id %[1]s
 no bgp ebgp-requires-policy
 no bgp network import-check
 bgp graceful-restart
 bgp graceful-restart restart-time 30
 neighbor %[2]s remote-as 65000
 neighbor %[2]s port %[3]d
 neighbor %[2]s update-source %[1]s
 neighbor %[2]s timers 3 9
 neighbor %[2]s timers connect 1
 address-family ipv4 unicast
%[4]s exit-address-family
!
`, r.router, r.meshd, r.port, nets.String())
	}
	d := testenv.StartFRR(t, frr, conf(-1))
	held := func() int { return r.bridge.RouteCount(name, "default", r.meshd, "ADJ_RIB_OUT_POST") }
	state := "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=" + r.meshd + "]/state/session-state"
	testenv.WaitFor(t, 60*time.Second, "FRR's 10 networks in meshd's RIB", func() bool {
		return held() == 10 && advertised(t, d, r.meshd) == 10
	})
	withdrawals := func() []string {
		var out []string
		r.count(change.EventRoute, func(e change.Event) bool {
			if e.Route != nil && e.Route.Action == change.Withdraw && strings.HasPrefix(e.Route.Prefix, "10.93.") {
				out = append(out, e.Route.Prefix)
			}
			return false
		})
		return out
	}

	d.Kill()
	testenv.WaitFor(t, 30*time.Second, "the session no longer established in meshd's record", func() bool {
		return r.leaf(name, state) == "ACTIVE"
	})
	if n, w := held(), withdrawals(); n != 10 || len(w) != 0 {
		t.Fatalf("during the restart meshd holds %d routes and withdrew %v, want the 10 kept", n, w)
	}

	if err := os.WriteFile(d.Conf, []byte(conf(5)), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Start()
	testenv.WaitFor(t, 60*time.Second, "FRR back, its End-of-RIB taking the network it no longer has", func() bool {
		return r.leaf(name, state) == "ESTABLISHED" && held() == 9 && advertised(t, d, r.meshd) == 9
	})
	// The RIB changes at once; its events reach the core's subscribers
	// a batch later.
	testenv.WaitFor(t, 10*time.Second, "the withdrawal's route event", func() bool { return len(withdrawals()) > 0 })
	if w := withdrawals(); len(w) != 1 || w[0] != "10.93.5.0/24" {
		t.Errorf("withdrawals over the restart %v, want 10.93.5.0/24 only", w)
	}

	d.Kill()
	testenv.WaitFor(t, 90*time.Second, "the routes gone once FRR's restart time (30 s) passed", func() bool { return held() == 0 })
}

// advertised is how many routes FRR says it advertises to neighbor.
func advertised(t *testing.T, d *testenv.Daemon, neighbor string) int {
	t.Helper()
	out := d.Vtysh(t, "show bgp ipv4 unicast neighbors "+neighbor+" advertised-routes json")
	var m struct {
		Total int `json:"totalPrefixCounter"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		return -1
	}
	return m.Total
}
