package capture

import (
	"bytes"
	"io"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/meshd/meshd/probe/packet"
)

// formatFixtures are one capture (QinQ-tagged IPv6 BGP with TCP-MD5, and
// Linux cooked v2 IPv6 with TCP-AO) in each file format meshd reads; the
// copies were made with Wireshark's editcap (-F pcap, nsecpcap, pcapng)
// from probe/testdata's originals.
var formatFixtures = []struct {
	file   string
	link   packet.LinkType
	frames int
	vlan   uint16 // every frame's outer VLAN ID
	same   string // a copy of this file: same frames and times
	usec   bool   // microsecond timestamps
}{
	{file: "qinq.pcap", link: packet.LinkEthernet, frames: 52, vlan: 100},
	{file: "qinq-usec.pcap", link: packet.LinkEthernet, frames: 52, vlan: 100, same: "qinq.pcap", usec: true},
	{file: "qinq.pcapng", link: packet.LinkEthernet, frames: 52, vlan: 100, same: "qinq.pcap"},
	{file: "sll2.pcapng", link: packet.LinkLinuxSLL2, frames: 52},
	{file: "sll2.pcap", link: packet.LinkLinuxSLL2, frames: 52, same: "sll2.pcapng"},
}

type readFrame struct {
	data []byte
	time int64
	link packet.LinkType
	pkt  packet.Packet
}

func readFixture(t *testing.T, name string) []readFrame {
	t.Helper()
	r, err := OpenFile(filepath.Join("testdata", "formats", name))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []readFrame
	for {
		f, err := r.Next()
		if err != nil {
			if err != io.EOF {
				t.Fatalf("%s frame %d: %v", name, len(out)+1, err)
			}
			return out
		}
		rf := readFrame{data: append([]byte(nil), f.Data...), time: f.Time, link: f.Link}
		if err := f.Decode(&rf.pkt); err != nil {
			t.Fatalf("%s frame %d: decode: %v", name, len(out)+1, err)
		}
		rf.pkt.Payload = nil
		out = append(out, rf)
	}
}

func TestFileFormats(t *testing.T) {
	for _, tc := range formatFixtures {
		t.Run(tc.file, func(t *testing.T) {
			frames := readFixture(t, tc.file)
			if len(frames) != tc.frames {
				t.Fatalf("%d frames, want %d", len(frames), tc.frames)
			}
			for i, f := range frames {
				if f.link != tc.link || f.pkt.VLAN != tc.vlan || f.pkt.DstPort != 179 && f.pkt.SrcPort != 179 {
					t.Errorf("frame %d: link %d vlan %d ports %d>%d, want link %d vlan %d and port 179",
						i+1, f.link, f.pkt.VLAN, f.pkt.SrcPort, f.pkt.DstPort, tc.link, tc.vlan)
				}
				if i > 0 && f.time < frames[i-1].time {
					t.Errorf("frame %d: time %d before the frame before's %d", i+1, f.time, frames[i-1].time)
				}
			}
			if tc.same == "" {
				return
			}
			orig := readFixture(t, tc.same)
			for i, f := range frames {
				want := orig[i]
				if tc.usec {
					want.time -= want.time % 1000
				}
				if !bytes.Equal(f.data, want.data) || f.time != want.time || f.link != want.link || !reflect.DeepEqual(f.pkt, want.pkt) {
					t.Errorf("frame %d differs from %s's: time %d vs %d, %d vs %d bytes", i+1, tc.same, f.time, want.time, len(f.data), len(want.data))
				}
			}
		})
	}
}
