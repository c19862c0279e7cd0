//go:build integration

package decode

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshd/meshd/bmpbridge/pcapstream"
	"github.com/meshd/meshd/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the .tshark golden files from tshark's decoding of the captures")

var (
	tsharkPrefix = regexp.MustCompile(`^\s+([0-9a-fA-F:.]+/\d+)(?: PathId (\d+))?\s*$`)
	tsharkNLRI   = regexp.MustCompile(`^\s+(Network Layer Reachability Information \(NLRI\)|Withdrawn Routes)\s*$`)
)

// tsharkRoutes lists the routes Wireshark's BMP/BGP dissector finds in a
// capture, in captureRoutes' form.
func tsharkRoutes(t *testing.T, file string, port int) string {
	t.Helper()
	bin, err := exec.LookPath("tshark")
	if err != nil {
		t.Fatalf("tshark is needed to check the captures against Wireshark's BMP dissector (scripts/install-tools.sh installs it): %v", err)
	}
	out, err := exec.Command(bin, "-r", file, "-d", fmt.Sprintf("tcp.port==%d,bmp", port), "-V").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", file, err)
	}
	var lines []string
	kind := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		if m := tsharkNLRI.FindStringSubmatch(l); m != nil {
			kind = "announce"
			if m[1] == "Withdrawn Routes" {
				kind = "withdraw"
			}
			continue
		}
		if m := tsharkPrefix.FindStringSubmatch(l); m != nil && kind != "" {
			id := m[2]
			if id == "" {
				id = "0"
			}
			lines = append(lines, kind+" "+m[1]+" path-id "+id)
		}
		if strings.HasPrefix(l, "Frame ") {
			kind = ""
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

// TestTsharkGolden checks that the .tshark files TestMidSessionCapture
// compares with are what tshark decodes from the captures today, and that
// meshd decodes the same (with -update, it rewrites them).
func TestTsharkGolden(t *testing.T) {
	for _, c := range [][2]string{
		{"gobgpd-locrib-midsession.pcap", "gobgpd-locrib-midsession.tshark"},
		{"gobgpd-locrib.pcap", "gobgpd-locrib.tshark"},
		{"gobgpd-locrib.pcapng", "gobgpd-locrib.tshark"},
	} {
		file, golden := filepath.Join("testdata", c[0]), filepath.Join("testdata", c[1])
		got := tsharkRoutes(t, file, 11019)
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("%s: tshark decodes\n%s\nthe golden file %s says\n%s", c[0], got, c[1], want)
		}
		if ours, _ := captureRoutes(t, file); ours != got {
			t.Errorf("%s: meshd decodes\n%s\ntshark\n%s", c[0], ours, got)
		}
	}
}

// liveSpeaker is the BMP exporter of TestLiveMidSessionCapture.
type liveSpeaker struct {
	name string
	// start runs the exporter in ns, peering with 10.0.9.2 and exporting
	// BMP to host:port; established reports its session with B up, and
	// own (if any) announces a route of its own.
	start func(t *testing.T, ns *testenv.Netns, host string, port int) (established func() bool, own func())
	// peerUps and routes are how many of each the exporter sends for B's
	// two routes (and its own).
	peerUps, routes int
	want            []string
	// pathIDs: the exporter keeps B's path IDs in some view.
	pathIDs bool
}

var liveSpeakers = []liveSpeaker{
	{
		name: "gobgpd", peerUps: 2, routes: 7, pathIDs: true,
		// B's two routes in A's pre-policy, post-policy and Loc-RIB
		// views, A's own in its Loc-RIB.
		want: []string{"10.99.0.0/24", "10.99.1.0/25", "10.200.2.0/25"},
		start: func(t *testing.T, ns *testenv.Netns, host string, port int) (func() bool, func()) {
			a := testenv.StartGobgpd(t, ns, fmt.Sprintf(`[global.config]
  as = 4200000001
  router-id = "10.0.9.1"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.0.9.2"
    peer-as = 4200000002
  [neighbors.timers.config]
    connect-retry = 1
  [neighbors.add-paths.config]
    receive = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.add-paths.config]
      receive = true
[[bmp-servers]]
  [bmp-servers.config]
    address = %q
    port = %d
    route-monitoring-policy = "all"
    sys-name = "dca"
`, host, port))
			return func() bool { return strings.Contains(a.Gobgp(t, "neighbor"), "Establ") },
				func() { a.Gobgp(t, "global", "rib", "add", "10.200.2.0/25") }
		},
	},
	{
		name: "frr", peerUps: 1, routes: 4,
		// B's two routes in A's pre- and post-policy views. FRR 8.4's
		// BMP sends them without B's path IDs.
		want: []string{"10.99.0.0/24", "10.99.1.0/25"},
		start: func(t *testing.T, ns *testenv.Netns, host string, port int) (func() bool, func()) {
			a := testenv.StartFRR(t, ns, fmt.Sprintf(`frr defaults traditional
hostname dca
!
router bgp 4200000001
 bgp router-id 10.0.9.1
 no bgp ebgp-requires-policy
 neighbor 10.0.9.2 remote-as 4200000002
 neighbor 10.0.9.2 timers connect 1
 address-family ipv4 unicast
  neighbor 10.0.9.2 soft-reconfiguration inbound
 exit-address-family
 !
 bmp targets meshd
  bmp connect %s port %d min-retry 100 max-retry 1000
  bmp monitor ipv4 unicast pre-policy
  bmp monitor ipv4 unicast post-policy
 exit
!
`, host, port))
			return func() bool {
				return strings.Contains(a.Vtysh(t, "show bgp neighbor 10.0.9.2 json"), `"bgpState":"Established"`)
			}, nil
		},
	},
}

// TestLiveMidSessionCapture captures a real BMP session: a router A
// (gobgpd, FRR) takes ADD-PATH routes from gobgpd B (send-max 4) and
// exports them by BMP (gobgpd: pre- and post-policy Adj-RIB-In and
// Loc-RIB, with a route of its own; FRR: pre- and post-policy), with
// tcpdump on the link. The capture is cut after the Peer Ups, as a
// capture started mid-session would be, and meshd must decode the routes
// as tshark does, with each ADD-PATH guess warned about.
func TestLiveMidSessionCapture(t *testing.T) {
	for _, sp := range liveSpeakers {
		t.Run(sp.name, func(t *testing.T) { liveMidSession(t, sp) })
	}
}

func liveMidSession(t *testing.T, sp liveSpeaker) {
	testenv.Binary(t, "tcpdump")
	testenv.Binary(t, "editcap")
	testenv.Binary(t, "tshark")
	a, b := testenv.NewNetns(t, "dca"), testenv.NewNetns(t, "dcb")
	testenv.Veth(t, a, b, []string{"10.0.9.1/30"}, []string{"10.0.9.2/30"})
	o := os.Getpid() % 60 * 4
	hostIP := fmt.Sprintf("100.126.%d.1", o)
	_, nsIf := testenv.HostVeth(t, a, hostIP+"/30", fmt.Sprintf("100.126.%d.2/30", o))
	ln, err := net.Listen("tcp", net.JoinHostPort(hostIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(io.Discard, c)
	}()
	full := filepath.Join(t.TempDir(), "full.pcap")
	dump := a.Command("tcpdump", "--immediate-mode", "-i", nsIf, "-U", "-s", "0", "-w", full, "tcp", "port", strconv.Itoa(port))
	var dumpErr strings.Builder
	dump.Stderr = &dumpErr
	if err := dump.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = dump.Process.Signal(syscall.SIGINT)
			_ = dump.Wait()
		}
	}
	defer stop()
	testenv.WaitFor(t, 10*time.Second, "tcpdump listening", func() bool { return strings.Contains(dumpErr.String(), "listening") })

	established, own := sp.start(t, a, hostIP, port)
	spkB := testenv.StartGobgpd(t, b, `[global.config]
  as = 4200000002
  router-id = "10.0.9.2"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.0.9.1"
    peer-as = 4200000001
  [neighbors.timers.config]
    connect-retry = 1
  [neighbors.add-paths.config]
    send-max = 4
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.add-paths.config]
      send-max = 4
`)
	testenv.WaitFor(t, 40*time.Second, "A's session with B established", established)
	// The routes go after both Peer Ups (Loc-RIB and B) are on the wire,
	// so that no Route Monitoring shares a frame with one.
	testenv.WaitFor(t, 20*time.Second, fmt.Sprintf("%d Peer Ups in the capture", sp.peerUps), func() bool {
		return count(full, func(m *Message) int { return btoi(m.PeerUp != nil) }) >= sp.peerUps
	})
	spkB.Gobgp(t, "global", "rib", "add", "10.99.0.0/24")
	spkB.Gobgp(t, "global", "rib", "add", "10.99.1.0/25")
	if own != nil {
		own()
	}
	want := sp.want
	testenv.WaitFor(t, 20*time.Second, fmt.Sprintf("%d route announcements in the capture", sp.routes), func() bool {
		return count(full, func(m *Message) int {
			if m.Update == nil {
				return 0
			}
			return len(m.Update.Announce)
		}) >= sp.routes
	})
	stop()

	count(full, func(m *Message) int {
		if m.PeerUp != nil {
			t.Logf("Peer Up of %s %s: ADD-PATH in %v", m.Peer.RIB, m.Peer.Address, m.PeerUp.AddPathIn)
		}
		return 0
	})
	// Cut before the first frame after the last Peer Up.
	out, err := exec.Command("tshark", "-r", full, "-d", fmt.Sprintf("tcp.port==%d,bmp", port), "-T", "fields", "-e", "frame.number", "-e", "bmp.type").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	lastUp, first := 0, 0
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		num, types, _ := strings.Cut(l, "\t")
		n, _ := strconv.Atoi(num)
		switch {
		case strings.Contains(types, "3"):
			lastUp, first = n, 0
		case types != "" && lastUp > 0 && first == 0:
			first = n
		}
	}
	if lastUp == 0 || first == 0 {
		t.Fatalf("no Peer Up, or nothing after it, in the capture:\n%s", out)
	}
	mid := filepath.Join(t.TempDir(), "mid.pcap")
	if out, err := exec.Command("editcap", "-F", "pcap", "-r", full, mid, fmt.Sprintf("%d-1000000", first)).CombinedOutput(); err != nil {
		t.Fatalf("editcap: %v\n%s", err, out)
	}
	// The whole session too, where the Peer Ups say what ADD-PATH is.
	if ours, theirs := first2(captureRoutes(t, full)), tsharkRoutes(t, full, port); ours != theirs {
		t.Errorf("whole session: meshd decodes\n%s\ntshark\n%s", ours, theirs)
	}
	ours, warned := captureRoutes(t, mid)
	theirs := tsharkRoutes(t, mid, port)
	if ours != theirs {
		t.Errorf("meshd decodes\n%s\ntshark\n%s", ours, theirs)
	}
	// Each route is there, in a view with path IDs if the exporter keeps
	// them (gobgpd v4 sends its post-policy view without: path-id 0
	// there is right).
	for _, p := range want {
		seen, withID := false, false
		for _, l := range strings.Split(ours, "\n") {
			id, ok := strings.CutPrefix(l, "announce "+p+" path-id ")
			seen = seen || ok
			withID = withID || ok && id != "0"
		}
		if !seen || withID != sp.pathIDs {
			t.Errorf("%s: announced %v, with a path ID %v, want %v:\n%s", p, seen, withID, sp.pathIDs, ours)
		}
	}
	if warned == 0 {
		t.Error("no message warns that ADD-PATH was guessed")
	}
	t.Logf("routes of the mid-session capture (%d messages with warnings):\n%s", warned, ours)
}

func first2(s string, _ int) string { return s }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// count sums f over the messages of a capture being written, which may
// end inside a message.
func count(file string, f func(*Message) int) int {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	flows, _ := pcapstream.Read(bytes.NewReader(b))
	n := 0
	for _, fl := range flows {
		if len(fl.Data) == 0 || fl.Data[0] != 3 {
			continue
		}
		d := NewDecoder(nil)
		sc := bufio.NewScanner(bytes.NewReader(fl.Data))
		sc.Split(Split(MaxMessage))
		for sc.Scan() {
			if m, err := d.Decode(sc.Bytes()); err == nil {
				n += f(m)
			}
		}
	}
	return n
}
