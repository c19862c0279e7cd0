//go:build integration

package bmpbridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/bmpbridge"
	"github.com/meshd/meshd/bmpbridge/decode"
	"github.com/meshd/meshd/bmpbridge/pcapstream"
	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/merge"
)

var hostNetSeq atomic.Uint32

// hostNet returns a /30 for a veth between the test process and a
// namespace: the host address, the namespace address (both CIDR) and the
// bare host IP.
func hostNet() (host, ns, hostIP string) {
	n := hostNetSeq.Add(1)
	b := (os.Getpid()%60)*4 + int(n%4)
	hostIP = fmt.Sprintf("100.127.%d.%d", b, 1)
	return hostIP + "/30", fmt.Sprintf("100.127.%d.%d/30", b, 2), hostIP
}

// harness is a merge core with a bridge listening where a namespace can
// reach it, recording every event the core publishes.
type harness struct {
	core   *merge.Core
	bridge *bmpbridge.Bridge
	ip     string
	port   int
	nsIf   string
	ns     *testenv.Netns
	reg    *prometheus.Registry
	mu     sync.Mutex
	events []change.Event
}

func newHarness(t *testing.T, ns *testenv.Netns, cfg bmpbridge.Config) *harness {
	t.Helper()
	return newHarnessWith(t, ns, func(*harness) bmpbridge.Config { return cfg })
}

// newHarnessWith is newHarness with the bridge's config made by cfg once
// the harness's address is known (cfg may call h.reach).
func newHarnessWith(t *testing.T, ns *testenv.Netns, cfg func(h *harness) bmpbridge.Config) *harness {
	t.Helper()
	hostCIDR, nsCIDR, hostIP := hostNet()
	_, nsIf := testenv.HostVeth(t, ns, hostCIDR, nsCIDR)
	core, err := merge.New(merge.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	h := &harness{core: core, ip: hostIP, nsIf: nsIf, ns: ns, reg: reg}
	b, err := bmpbridge.New(core, bmpbridge.WithConfig(cfg(h)), bmpbridge.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(hostIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.bridge, h.port = b, ln.Addr().(*net.TCPAddr).Port
	sub := core.Subscribe("test", 4096)
	go func() {
		for batch := range sub.C() {
			h.mu.Lock()
			h.events = append(h.events, batch.Events...)
			h.mu.Unlock()
		}
	}()
	go func() { _ = b.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); b.Close(); sub.Close() })
	return h
}

// value returns a leaf's value as text, or "" when it is not set.
func (h *harness) value(router string, path string) string {
	v, _, _, ok := h.core.Leaf(router, change.MustPath(path))
	if !ok || v == nil {
		return ""
	}
	if b, ok := v.GetValue().(*gpb.TypedValue_BoolVal); ok {
		return fmt.Sprint(b.BoolVal)
	}
	if s := v.GetStringVal(); s != "" {
		return s
	}
	if v.GetLeaflistVal() != nil {
		var out []string
		for _, e := range v.GetLeaflistVal().GetElement() {
			out = append(out, e.GetStringVal())
		}
		return strings.Join(out, ",")
	}
	return fmt.Sprint(v.GetUintVal() + uint64(v.GetIntVal()))
}

// metric sums the samples of a bridge metric whose labels include
// labels (name=value pairs).
func (h *harness) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				ok := false
				for _, lp := range m.GetLabel() {
					ok = ok || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
				}
				if !ok {
					continue next
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func (h *harness) allEvents() []change.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]change.Event(nil), h.events...)
}

func (h *harness) countEvents(kind change.EventKind, match func(change.Event) bool) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, e := range h.events {
		if e.Kind == kind && (match == nil || match(e)) {
			n++
		}
	}
	return n
}

func (h *harness) dumpRoutes() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, e := range h.events {
		fmt.Fprintf(&b, "%s %v\n", e.Kind, e.Fields)
		if e.Route != nil {
			fmt.Fprintf(&b, "%s %s/%s %+v\n", e.Router, e.NetworkInstance, e.Neighbor, *e.Route)
		}
	}
	return b.String()
}

// capture starts tcpdump on the namespace's side of the bridge link and
// returns a function that stops it and returns the pcap bytes.
func (h *harness) capture(t *testing.T) func() []byte {
	t.Helper()
	testenv.Binary(t, "tcpdump")
	file := filepath.Join(t.TempDir(), "bmp.pcap")
	cmd := h.ns.Command("tcpdump", "--immediate-mode", "-i", h.nsIf, "-U", "-s", "0", "-w", file, "tcp", "port", strconv.Itoa(h.port))
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	testenv.WaitFor(t, 10*time.Second, "tcpdump listening", func() bool { return strings.Contains(errb.String(), "listening") })
	stopped := false
	stop := func() []byte {
		if !stopped {
			stopped = true
			time.Sleep(200 * time.Millisecond)
			_ = cmd.Process.Signal(syscall.SIGINT)
			_ = cmd.Wait()
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("capture: %v", err)
		}
		return b
	}
	t.Cleanup(func() { stop() })
	return stop
}

// decodeCapture runs what `meshd bmp decode` runs on a pcap and returns
// the decoded lines.
func decodeCapture(t *testing.T, pcap []byte) []decode.Line {
	t.Helper()
	flows, err := pcapstream.Read(bytes.NewReader(pcap))
	if err != nil {
		t.Fatalf("pcap: %v", err)
	}
	var out bytes.Buffer
	for _, f := range flows {
		if len(f.Data) > 0 && f.Data[0] == 3 {
			if err := decode.WriteJSON(&out, f.String(), f.Data, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	var lines []decode.Line
	for _, l := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		var d decode.Line
		if err := json.Unmarshal(l, &d); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		lines = append(lines, d)
	}
	return lines
}

func nbr(ni, addr, leaf string) string {
	return fmt.Sprintf("/network-instances/network-instance[name=%s]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=%s]/%s", ni, addr, leaf)
}

// speakerConf describes a gobgpd test speaker with one neighbor.
type speakerConf struct {
	as, peerAS       uint32
	id, peer         string
	bmpHost, sysName string // no BMP export when bmpHost is empty
	bmpPort          int
	bmpPolicy        string // route-monitoring-policy; default pre-policy
	statsTimeout     int
	addPath          string   // "", "send" or "receive"
	families         []string // gobgpd afi-safi names enabled besides IPv4 and IPv6 unicast
}

func (c speakerConf) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, `[global.config]
  as = %d
  router-id = %q
  local-address-list = [%q]

[[neighbors]]
  [neighbors.config]
    neighbor-address = %q
    peer-as = %d
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
`, c.as, c.id, c.id, c.peer, c.peerAS)
	ap := map[string]string{"send": "send-max = 4", "receive": "receive = true"}[c.addPath]
	if ap != "" {
		fmt.Fprintf(&b, "  [neighbors.add-paths.config]\n    %s\n", ap)
	}
	for _, fam := range append([]string{"ipv4-unicast", "ipv6-unicast"}, c.families...) {
		fmt.Fprintf(&b, "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = %q\n", fam)
		// ADD-PATH on IPv4 only, so IPv6 routes arrive without path IDs.
		if ap != "" && fam == "ipv4-unicast" {
			fmt.Fprintf(&b, "    [neighbors.afi-safis.add-paths.config]\n      %s\n", ap)
		}
	}
	if c.bmpHost != "" {
		b.WriteString(bmpServer(c.bmpHost, c.bmpPort, c.bmpPolicy, c.statsTimeout, c.sysName))
	}
	return b.String()
}

// bmpServer is a gobgpd [[bmp-servers]] entry; a config may hold several.
func bmpServer(host string, port int, policy string, statsTimeout int, sysName string) string {
	if policy == "" {
		policy = "pre-policy"
	}
	return fmt.Sprintf(`
[[bmp-servers]]
  [bmp-servers.config]
    address = %q
    port = %d
    route-monitoring-policy = %q
    statistics-timeout = %d
    sys-name = %q
    sys-descr = "gobgpd test speaker"
`, host, port, policy, statsTimeout, sysName)
}

func gobgpdConf(as uint32, id, peer string, peerAS uint32, bmpHost string, bmpPort int, sysName string) string {
	return speakerConf{as: as, id: id, peer: peer, peerAS: peerAS, bmpHost: bmpHost, bmpPort: bmpPort, sysName: sysName, statsTimeout: 15}.String()
}

// TestGobgpdPeerEstablished is the end-to-end path: two gobgpd in two
// namespaces establish eBGP with 4-byte ASNs; one exports BMP to the
// bridge, and the merge core shows the neighbor ESTABLISHED with the
// right peer-as, then its routes, then the session going down.
func TestGobgpdPeerEstablished(t *testing.T) {
	a := testenv.NewNetns(t, "bmpa")
	bns := testenv.NewNetns(t, "bmpb")
	testenv.Veth(t, a, bns, []string{"10.0.0.1/30"}, []string{"10.0.0.2/30"})
	h := newHarness(t, a, bmpbridge.Config{})
	stopCapture := h.capture(t)

	testenv.StartGobgpd(t, a, gobgpdConf(4200000001, "10.0.0.1", "10.0.0.2", 4200000002, h.ip, h.port, "spk-a"))
	spkB := testenv.StartGobgpd(t, bns, gobgpdConf(4200000002, "10.0.0.2", "10.0.0.1", 4200000001, "", 0, ""))

	const router = "spk-a"
	testenv.WaitFor(t, 30*time.Second, "neighbor 10.0.0.2 ESTABLISHED in the core", func() bool {
		return h.value(router, nbr("default", "10.0.0.2", "state/session-state")) == "ESTABLISHED"
	})
	if got := h.value(router, nbr("default", "10.0.0.2", "state/peer-as")); got != "4200000002" {
		t.Errorf("peer-as = %s, want 4200000002", got)
	}
	if got := h.value(router, nbr("default", "10.0.0.2", "state/local-as")); got != "4200000001" {
		t.Errorf("local-as = %s, want 4200000001", got)
	}
	if got := h.value(router, nbr("default", "10.0.0.2", "timers/state/negotiated-hold-time")); got != "9" {
		t.Errorf("negotiated-hold-time = %s, want 9", got)
	}
	if got := h.value(router, nbr("default", "10.0.0.2", "state/supported-capabilities")); !strings.Contains(got, "ASN32") || !strings.Contains(got, "MPBGP") {
		t.Errorf("supported-capabilities = %q, want ASN32 and MPBGP", got)
	}
	if got := h.value(router, "/meshd/router/state/sys-descr"); got != "gobgpd test speaker" {
		t.Errorf("sys-descr = %q", got)
	}
	if got := h.value(router, "/meshd/router/state/bmp-connected"); got != "true" {
		t.Errorf("bmp-connected = %q, want true", got)
	}

	// Routes from B arrive in A's pre-policy Adj-RIB-In.
	spkB.Gobgp(t, "global", "rib", "add", "10.99.0.0/24", "community", "65000:100", "large-community", "4200000002:1:2")
	spkB.Gobgp(t, "global", "rib", "-a", "ipv6", "add", "2001:db8:99::/48")
	testenv.WaitFor(t, 20*time.Second, "two routes in the BMP RIB", func() bool {
		return h.bridge.RouteCount(router, "default", "10.0.0.2", "ADJ_RIB_IN_PRE") == 2
	})
	isOurs := func(e change.Event) bool {
		r := e.Route
		return r.Action == change.Announce && r.Prefix == "10.99.0.0/24" && r.OriginAS == 4200000002 &&
			r.ASPath == "4200000002" && len(r.Communities) == 1 && r.Communities[0] == "65000:100" &&
			len(r.LargeCommunities) == 1 && r.LargeCommunities[0] == "4200000002:1:2" && r.RIB == "ADJ_RIB_IN_PRE" &&
			r.NextHop == "10.0.0.2" && e.Neighbor == "10.0.0.2" && e.NetworkInstance == "default"
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.countEvents(change.EventRoute, isOurs) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if found := h.countEvents(change.EventRoute, isOurs); found != 1 {
		t.Errorf("announce events for 10.99.0.0/24 with origin AS 4200000002 = %d, want 1; events:\n%s", found, h.dumpRoutes())
	}
	testenv.WaitFor(t, 10*time.Second, "prefix counter in the meshd model", func() bool {
		return h.value(router, "/meshd/network-instances/network-instance[name=default]/neighbors/neighbor[neighbor-address=10.0.0.2]/bmp/ribs/rib[view=ADJ_RIB_IN_PRE]/state/prefixes") == "2"
	})
	spkB.Gobgp(t, "global", "rib", "del", "10.99.0.0/24")
	testenv.WaitFor(t, 10*time.Second, "withdraw", func() bool {
		return h.bridge.RouteCount(router, "default", "10.0.0.2", "ADJ_RIB_IN_PRE") == 1
	})

	// The same stream, captured with tcpdump and decoded offline as
	// `meshd bmp decode` does, shows the Peer Up and the route.
	lines := decodeCapture(t, stopCapture())
	var sawUp, sawRoute bool
	for _, l := range lines {
		if l.Error != "" {
			t.Errorf("decode error in capture: %s", l.Error)
		}
		if l.PeerUp != nil && l.PeerUp.PeerAS == 4200000002 && l.Peer.Address == "10.0.0.2" {
			sawUp = true
		}
		if l.Update != nil && l.Update.Attrs != nil && l.Update.Attrs.OriginAS == 4200000002 {
			for _, n := range l.Update.Announce {
				sawRoute = sawRoute || n.Prefix == "10.99.0.0/24"
			}
		}
	}
	if !sawUp || !sawRoute || lines[0].Initiation == nil || lines[0].Initiation.SysName != "spk-a" {
		t.Errorf("capture decode: initiation first=%v peer up=%v route=%v (%d lines)", lines[0].Initiation, sawUp, sawRoute, len(lines))
	}

	// Stats reports arrive every 15 s (gobgpd's minimum).
	testenv.WaitFor(t, 25*time.Second, "a stats report", func() bool {
		return h.countEvents(change.EventStats, nil) > 0
	})

	// B goes away: the core shows the session down with its reason.
	spkB.Stop()
	testenv.WaitFor(t, 30*time.Second, "neighbor 10.0.0.2 down in the core", func() bool {
		s := h.value(router, nbr("default", "10.0.0.2", "state/session-state"))
		return s == "IDLE" || s == "ACTIVE"
	})
	// Events reach the harness through a consumer's queue, a moment
	// after the core's state shows the change (a CI run checked between).
	testenv.WaitFor(t, 5*time.Second, "a peer_down event", func() bool {
		return h.countEvents(change.EventPeerDown, nil) > 0
	})
	if got := h.value(router, "/meshd/network-instances/network-instance[name=default]/neighbors/neighbor[neighbor-address=10.0.0.2]/bmp/state/last-down-reason"); got == "" {
		t.Error("last-down-reason is empty")
	} else {
		t.Logf("last-down-reason: %s", got)
	}
}

// TestFRRPeerEstablished has FRR's bgpd (-M bmp) export BMP for its eBGP
// session with a gobgpd (4-byte ASNs on both sides), then checks the
// neighbor, a route with its origin AS, and the session going down.
func TestFRRPeerEstablished(t *testing.T) {
	a := testenv.NewNetns(t, "frra")
	bns := testenv.NewNetns(t, "frrb")
	testenv.Veth(t, a, bns, []string{"10.0.1.1/30"}, []string{"10.0.1.2/30"})
	h := newHarness(t, a, bmpbridge.Config{})
	spkA := testenv.StartFRR(t, a, fmt.Sprintf(`frr defaults traditional
hostname frr-a
!
router bgp 4200000003
 bgp router-id 10.0.1.1
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 10.0.1.2 remote-as 4200000002
 neighbor 10.0.1.2 timers 3 9
 neighbor 10.0.1.2 timers connect 1
 !
 ! FRR keeps an Adj-RIB-In, which BMP pre-policy monitoring reads, only
 ! with soft-reconfiguration inbound.
 address-family ipv4 unicast
  neighbor 10.0.1.2 soft-reconfiguration inbound
 exit-address-family
 address-family ipv6 unicast
  neighbor 10.0.1.2 activate
  neighbor 10.0.1.2 soft-reconfiguration inbound
 exit-address-family
 !
 bmp targets meshd
  bmp connect %s port %d min-retry 100 max-retry 1000
  bmp monitor ipv4 unicast pre-policy
  bmp monitor ipv4 unicast post-policy
  bmp monitor ipv6 unicast pre-policy
  bmp stats interval 1000
 exit
!
`, h.ip, h.port))
	spkB := testenv.StartGobgpd(t, bns, gobgpdConf(4200000002, "10.0.1.2", "10.0.1.1", 4200000003, "", 0, ""))

	const router = "frr-a"
	testenv.WaitFor(t, 40*time.Second, "FRR's neighbor 10.0.1.2 ESTABLISHED in the core", func() bool {
		return h.value(router, nbr("default", "10.0.1.2", "state/session-state")) == "ESTABLISHED"
	})
	if got := h.value(router, nbr("default", "10.0.1.2", "state/peer-as")); got != "4200000002" {
		t.Errorf("peer-as = %s, want 4200000002", got)
	}
	if got := h.value(router, nbr("default", "10.0.1.2", "state/local-as")); got != "4200000003" {
		t.Errorf("local-as = %s, want 4200000003", got)
	}
	spkB.Gobgp(t, "global", "rib", "add", "10.77.0.0/24")
	deadline := time.Now().Add(20 * time.Second)
	for h.bridge.RouteCount(router, "default", "10.0.1.2", "ADJ_RIB_IN_PRE") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("route not in FRR's pre-policy Adj-RIB-In; events:\n%s\nFRR: %s", h.dumpRoutes(), spkA.Vtysh(t, "show bgp ipv4 unicast", "show bmp"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	testenv.WaitFor(t, 10*time.Second, "the route in FRR's post-policy Adj-RIB-In too", func() bool {
		return h.bridge.RouteCount(router, "default", "10.0.1.2", "ADJ_RIB_IN_POST") == 1
	})
	for _, view := range []string{"ADJ_RIB_IN_PRE", "ADJ_RIB_IN_POST"} {
		deadline := time.Now().Add(5 * time.Second)
		match := func(e change.Event) bool {
			// FRR 8.4 encodes the monitored UPDATE as it would send it on,
			// with its own AS prepended; meshd drops it (package doc).
			return e.Route.RIB == view && e.Route.Prefix == "10.77.0.0/24" && e.Route.OriginAS == 4200000002 &&
				e.Route.ASPath == "4200000002"
		}
		for h.countEvents(change.EventRoute, match) == 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if n := h.countEvents(change.EventRoute, match); n == 0 {
			t.Errorf("%s: no announce event for 10.77.0.0/24 from AS 4200000002; events:\n%s", view, h.dumpRoutes())
		}
	}
	testenv.WaitFor(t, 10*time.Second, "a stats report from FRR", func() bool { return h.countEvents(change.EventStats, nil) > 0 })

	// IPv6 over the IPv4 session, then both routes withdrawn.
	spkB.Gobgp(t, "global", "rib", "-a", "ipv6", "add", "2001:db8:77::/48")
	v6 := func(action change.RouteAction) func(change.Event) bool {
		return func(e change.Event) bool {
			return e.Route.Action == action && e.Route.RIB == "ADJ_RIB_IN_PRE" && e.Route.AfiSafi == "IPV6_UNICAST" &&
				e.Route.Prefix == "2001:db8:77::/48" && e.Route.OriginAS == 4200000002
		}
	}
	testenv.WaitFor(t, 20*time.Second, "the IPv6 route from FRR", func() bool { return h.countEvents(change.EventRoute, v6(change.Announce)) > 0 })
	spkB.Gobgp(t, "global", "rib", "del", "10.77.0.0/24")
	spkB.Gobgp(t, "global", "rib", "-a", "ipv6", "del", "2001:db8:77::/48")
	testenv.WaitFor(t, 20*time.Second, "both routes withdrawn from FRR's pre-policy Adj-RIB-In", func() bool {
		return h.bridge.RouteCount(router, "default", "10.0.1.2", "ADJ_RIB_IN_PRE") == 0
	})
	for _, w := range []func(change.Event) bool{v6(change.Withdraw), func(e change.Event) bool {
		return e.Route.Action == change.Withdraw && e.Route.RIB == "ADJ_RIB_IN_PRE" && e.Route.Prefix == "10.77.0.0/24"
	}} {
		testenv.WaitFor(t, 5*time.Second, "a withdraw event", func() bool { return h.countEvents(change.EventRoute, w) > 0 })
	}

	// gobgpd disables the session: it sends a Cease (Administrative
	// Shutdown) and stays up, so the NOTIFICATION is on the wire before
	// the TCP close. (A stopping gobgpd sends one too, but may exit first:
	// a CI run saw FRR report the session closed without one.)
	spkB.Gobgp(t, "neighbor", "10.0.1.1", "disable")
	testenv.WaitFor(t, 30*time.Second, "neighbor down", func() bool {
		s := h.value(router, nbr("default", "10.0.1.2", "state/session-state"))
		return s == "IDLE" || s == "ACTIVE"
	})
	testenv.WaitFor(t, 5*time.Second, "a peer_down event from FRR", func() bool {
		return h.countEvents(change.EventPeerDown, func(e change.Event) bool { return e.Neighbor == "10.0.1.2" }) > 0
	})
	// FRR's Peer Down carries the peer's Cease.
	if got := h.value(router, "/meshd/network-instances/network-instance[name=default]/neighbors/neighbor[neighbor-address=10.0.1.2]/bmp/state/last-down-reason"); !strings.Contains(got, "NOTIFICATION: Cease") {
		t.Errorf("last-down-reason %q after FRR's Peer Down, want the peer's NOTIFICATION: Cease", got)
	}
}
