//go:build integration

package decode

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .tshark golden files from tshark's decoding of the captures")

var (
	tsharkPrefix = regexp.MustCompile(`^\s+([0-9a-fA-F:.]+/\d+)(?: PathId (\d+))?\s*$`)
	tsharkNLRI   = regexp.MustCompile(`^\s+(Network Layer Reachability Information \(NLRI\)|Withdrawn Routes)\s*$`)
)

// tsharkRoutes lists the routes Wireshark's BMP/BGP dissector finds in a
// capture, in captureRoutes' form.
func tsharkRoutes(t *testing.T, file string) string {
	t.Helper()
	bin, err := exec.LookPath("tshark")
	if err != nil {
		t.Fatalf("tshark is needed to check the captures against Wireshark's BMP dissector (scripts/install-tools.sh installs it): %v", err)
	}
	// gobgpd's captures use port 11019; tell tshark it is BMP.
	out, err := exec.Command(bin, "-r", file, "-d", "tcp.port==11019,bmp", "-V").Output()
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
		got := tsharkRoutes(t, file)
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
