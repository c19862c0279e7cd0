//go:build integration

package probe

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/probe/capture"
	"github.com/meshd/meshd/probe/packet"
)

// TestPathChange runs an iBGP session between loopback addresses of A and
// B, first over their direct link, then through router R: the hop count
// toward B must go from 0 to 1 with one path-change event.
func TestPathChange(t *testing.T) {
	testenv.RequireRoot(t)
	a, r, b := testenv.NewNetns(t, "ha"), testenv.NewNetns(t, "hr"), testenv.NewNetns(t, "hb")
	testenv.Veth(t, a, b, []string{"10.72.1.1/24"}, []string{"10.72.1.2/24"})
	testenv.Veth(t, a, r, []string{"10.72.2.1/24"}, []string{"10.72.2.2/24"})
	testenv.Veth(t, r, b, []string{"10.72.3.1/24"}, []string{"10.72.3.2/24"})
	a.Run(t, "ip", "addr", "add", "10.255.72.1/32", "dev", "lo")
	b.Run(t, "ip", "addr", "add", "10.255.72.2/32", "dev", "lo")
	a.Run(t, "ip", "route", "add", "10.255.72.2/32", "via", "10.72.1.2")
	b.Run(t, "ip", "route", "add", "10.255.72.1/32", "via", "10.72.1.1")
	r.Run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	r.Run(t, "ip", "route", "add", "10.255.72.1/32", "via", "10.72.2.1")
	r.Run(t, "ip", "route", "add", "10.255.72.2/32", "via", "10.72.3.2")

	startGoBGP(t, a, 65000, "10.255.72.1", []neighbor{{addr: "10.255.72.2", local: "10.255.72.1", as: 65000}})
	startGoBGP(t, b, 65000, "10.255.72.2", []neighbor{{addr: "10.255.72.1", local: "10.255.72.2", as: 65000, passive: true}})
	pr := startProbe(t, Config{Router: "ha", Netns: a.Name})
	peer := netip.MustParseAddr("10.255.72.2")

	ss := pr.waitSamples(t, peer, 1, 30*time.Second)
	ttl0 := ss[0].Peer.TTL
	if h := ss[0].Peer.Hops; h != 0 {
		t.Fatalf("hops over the direct link: %d, want 0 (ttl %d)", h, ss[0].Peer.TTL)
	}
	// Both directions through R, so the session never sees a gap.
	a.Run(t, "ip", "route", "replace", "10.255.72.2/32", "via", "10.72.2.2")
	b.Run(t, "ip", "route", "replace", "10.255.72.1/32", "via", "10.72.3.1")
	// A deadline, not a bound: the event comes with the next keepalive
	// (3 s); a run beside a 20-router lab on 2 cores took over 20 s.
	testenv.WaitFor(t, 60*time.Second, "a path-change event", func() bool {
		pr.mu.Lock()
		defer pr.mu.Unlock()
		return len(pr.events) > 0
	})
	ss = pr.waitSamples(t, peer, 1, 60*time.Second)
	st := ss[0].Peer
	if st.Hops != 1 || st.TTL != ttl0-1 || st.HopChanges != 1 || st.LastHopChange == 0 {
		t.Errorf("after the detour: hops %d ttl %d changes %d last %d, want 1, %d, 1", st.Hops, st.TTL, st.HopChanges, st.LastHopChange, ttl0-1)
	}
	pr.mu.Lock()
	ev := pr.events[0]
	pr.mu.Unlock()
	if ev.Neighbor != "10.255.72.2" || ev.Fields["old_hops"] != int64(0) || ev.Fields["new_hops"] != int64(1) {
		t.Errorf("event %+v, want 10.255.72.2 hops 0 -> 1", ev)
	}
}

// TestFRRMD5 runs two FRR bgpd with a TCP MD5 password on an IPv4 and an
// IPv6 session: the probe must decode the signed segments and measure.
func TestFRRMD5(t *testing.T) {
	testenv.RequireRoot(t)
	a, b := testenv.NewNetns(t, "ma"), testenv.NewNetns(t, "mb")
	aDev, bDev := testenv.Veth(t, a, b, []string{"10.73.0.1/24", "fd73::1/64"}, []string{"10.73.0.2/24", "fd73::2/64"})
	quickack(t, a, aDev, "10.73.0.0/24", "fd73::/64")
	quickack(t, b, bDev, "10.73.0.0/24", "fd73::/64")
	dump := filepath.Join(t.TempDir(), "md5.pcap")
	tcpdump(t, a, dump)
	startFRR(t, a, 65001, "10.73.0.1", []neighbor{{addr: "10.73.0.2", local: "10.73.0.1", as: 65002, password: "meshd-secret"}, {addr: "fd73::2", local: "fd73::1", as: 65002, password: "meshd-secret"}})
	startFRR(t, b, 65002, "10.73.0.2", []neighbor{{addr: "10.73.0.1", local: "10.73.0.2", as: 65001, password: "meshd-secret"}, {addr: "fd73::1", local: "fd73::2", as: 65001, password: "meshd-secret"}})
	pr := startProbe(t, Config{Router: "ma", Netns: a.Name})
	for _, p := range []string{"10.73.0.2", "fd73::2"} {
		ss := pr.waitSamples(t, netip.MustParseAddr(p), 2, 40*time.Second)
		t.Logf("%s over MD5: RTTs %v ttl %d hops %d", p, rttsOf(ss), ss[1].Peer.TTL, ss[1].Peer.Hops)
		if ss[1].Peer.Hops != 0 {
			t.Errorf("%s: %d hops on a direct link", p, ss[1].Peer.Hops)
		}
	}
	pr.cancel()
	time.Sleep(300 * time.Millisecond)
	// The segments really were signed.
	fr, err := capture.OpenFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	var signed, all int
	var p packet.Packet
	for i := 0; i < 100000; i++ {
		f, err := fr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.Decode(&p) == nil && len(p.Payload) > 0 {
			all++
			if p.HasMD5 {
				signed++
			}
		}
	}
	if all == 0 || signed != all {
		t.Fatalf("%d of %d BGP segments carry the MD5 option", signed, all)
	}
}

// TestCapabilityErrors runs the capture in a child whose bounding set
// lacks CAP_NET_RAW (then CAP_SYS_ADMIN) and checks the error names it.
func TestCapabilityErrors(t *testing.T) {
	testenv.RequireRoot(t)
	setpriv := testenv.Binary(t, "setpriv")
	ns := testenv.NewNetns(t, "cap")
	for _, tc := range []struct{ drop, netns, want string }{
		{"-net_raw", "", "lacks CAP_NET_RAW"},
		{"-sys_admin", ns.Name, "lacks CAP_SYS_ADMIN"},
	} {
		cmd := exec.Command(setpriv, "--inh-caps=-all", "--bounding-set="+tc.drop, "--", os.Args[0], "-test.run=^TestCapabilityHelper$", "-test.v")
		cmd.Env = append(os.Environ(), "MESHD_PROBE_CAP_HELPER=1", "MESHD_PROBE_CAP_NETNS="+tc.netns)
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("without %s: output does not say %q:\n%s", tc.drop, tc.want, out)
		} else {
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, "capture error:") {
					t.Logf("without %s: %s", tc.drop, strings.TrimSpace(l))
				}
			}
		}
	}
}

// TestCapabilityHelper is the child of TestCapabilityErrors; on its own
// it has nothing to do.
func TestCapabilityHelper(t *testing.T) {
	if os.Getenv("MESHD_PROBE_CAP_HELPER") != "1" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := Run(ctx, Config{Netns: os.Getenv("MESHD_PROBE_CAP_NETNS"), LocalAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}})
	t.Logf("capture error: %v", err)
}
