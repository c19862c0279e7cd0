//go:build integration

package bmpbridge_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/bmpbridge"
	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
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
	// Every peer_down is stamped after the lab began, not with FRR's
	// boot time.
	for _, e := range h.allEvents() {
		if e.Kind == change.EventPeerDown && time.Since(e.Time) > 5*time.Minute {
			t.Errorf("peer_down stamped %v", e.Time)
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
