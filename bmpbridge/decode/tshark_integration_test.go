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

// TestLiveMidSessionCapture captures a real BMP session: gobgpd A takes
// ADD-PATH routes from gobgpd B (send-max 4) and exports them by BMP
// (pre- and post-policy Adj-RIB-In and Loc-RIB, with a route of its own),
// with tcpdump on the link. The capture is cut after the Peer Ups, as a
// capture started mid-session would be, and meshd must decode the routes
// as tshark does, with each ADD-PATH guess warned about.
func TestLiveMidSessionCapture(t *testing.T) {
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

	spkA := testenv.StartGobgpd(t, a, fmt.Sprintf(`[global.config]
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
`, hostIP, port))
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
	testenv.WaitFor(t, 30*time.Second, "A's session with B established", func() bool {
		return strings.Contains(spkA.Gobgp(t, "neighbor"), "Establ")
	})
	// The routes go after both Peer Ups (Loc-RIB and B) are on the wire,
	// so that no Route Monitoring shares a frame with one.
	testenv.WaitFor(t, 20*time.Second, "2 Peer Ups in the capture", func() bool {
		return count(full, func(m *Message) int { return btoi(m.PeerUp != nil) }) >= 2
	})
	spkB.Gobgp(t, "global", "rib", "add", "10.99.0.0/24")
	spkB.Gobgp(t, "global", "rib", "add", "10.99.1.0/25")
	spkA.Gobgp(t, "global", "rib", "add", "10.200.2.0/25")
	want := []string{"10.99.0.0/24", "10.99.1.0/25", "10.200.2.0/25"}
	// B's two routes in A's pre-policy, post-policy and Loc-RIB views,
	// A's own in its Loc-RIB.
	testenv.WaitFor(t, 20*time.Second, "7 route announcements in the capture", func() bool {
		return count(full, func(m *Message) int {
			if m.Update == nil {
				return 0
			}
			return len(m.Update.Announce)
		}) >= 7
	})
	stop()

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
	ours, warned := captureRoutes(t, mid)
	theirs := tsharkRoutes(t, mid, port)
	if ours != theirs {
		t.Errorf("meshd decodes\n%s\ntshark\n%s", ours, theirs)
	}
	// Each route is in a view with path IDs (gobgpd v4 sends the
	// post-policy view without them: path-id 0 there is right).
	for _, p := range want {
		withID := false
		for _, l := range strings.Split(ours, "\n") {
			id, ok := strings.CutPrefix(l, "announce "+p+" path-id ")
			withID = withID || ok && id != "0"
		}
		if !withID {
			t.Errorf("%s is not announced with a path ID:\n%s", p, ours)
		}
	}
	if warned == 0 {
		t.Error("no message warns that ADD-PATH was guessed")
	}
	t.Logf("routes of the mid-session capture (%d messages with warnings):\n%s", warned, ours)
}

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
