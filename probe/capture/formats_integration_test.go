//go:build integration

package capture

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/meshd/meshd/internal/testenv"
)

// Wireshark's reading of every format fixture is the oracle: each frame's
// time, captured length, outer VLAN, addresses and ports as tshark reads
// them are what the probe's reader and decoder give.
func TestFileFormatsMatchTshark(t *testing.T) {
	tshark := testenv.Binary(t, "tshark")
	for _, tc := range formatFixtures {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", "formats", tc.file)
			out, err := exec.Command(tshark, "-r", path, "-T", "fields", "-E", "separator=|",
				"-e", "frame.time_epoch", "-e", "frame.cap_len", "-e", "vlan.id",
				"-e", "ip.src", "-e", "ipv6.src", "-e", "ip.dst", "-e", "ipv6.dst",
				"-e", "tcp.srcport", "-e", "tcp.dstport").Output()
			if err != nil {
				t.Fatalf("tshark: %v", err)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			frames := readFixture(t, tc.file)
			if len(frames) != len(lines) {
				t.Fatalf("%d frames read, tshark reads %d", len(frames), len(lines))
			}
			for i, f := range frames {
				x := strings.Split(lines[i], "|")
				sec, frac, _ := strings.Cut(x[0], ".")
				frac = (frac + "000000000")[:9]
				s, _ := strconv.ParseInt(sec, 10, 64)
				ns, _ := strconv.ParseInt(frac, 10, 64)
				vlan, _, _ := strings.Cut(x[2], ",")
				want := fmt.Sprintf("%d|%s|%s|%s%s|%s%s|%s|%s", s*1e9+ns, x[1], vlan, x[3], x[4], x[5], x[6], x[7], x[8])
				gotVLAN := ""
				if f.pkt.VLAN != 0 {
					gotVLAN = strconv.Itoa(int(f.pkt.VLAN))
				}
				got := fmt.Sprintf("%d|%d|%s|%s|%s|%d|%d", f.time, len(f.data), gotVLAN, f.pkt.Src, f.pkt.Dst, f.pkt.SrcPort, f.pkt.DstPort)
				if got != want {
					t.Errorf("frame %d: meshd reads %s, tshark %s", i+1, got, want)
				}
			}
		})
	}
}
