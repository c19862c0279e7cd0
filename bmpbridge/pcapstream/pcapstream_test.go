package pcapstream

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// pcap builds a little-endian Ethernet pcap of TCP segments (seq, payload)
// from 10.0.0.1:40000 to 10.0.0.2:11019, starting with a SYN at seq 999.
func pcap(segs [][2]any) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, 0xa1b2c3d4)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = binary.LittleEndian.AppendUint32(b, 65535)
	b = binary.LittleEndian.AppendUint32(b, 1)
	pkt := func(seq uint32, flags byte, payload []byte) {
		eth := append(make([]byte, 12), 0x08, 0x00)
		ip := []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
		binary.BigEndian.PutUint16(ip[2:], uint16(20+20+len(payload)))
		tcp := make([]byte, 20)
		binary.BigEndian.PutUint16(tcp[0:], 40000)
		binary.BigEndian.PutUint16(tcp[2:], 11019)
		binary.BigEndian.PutUint32(tcp[4:], seq)
		tcp[12], tcp[13] = 5<<4, flags
		frame := append(append(append(eth, ip...), tcp...), payload...)
		b = append(b, make([]byte, 8)...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(frame)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(frame)))
		b = append(b, frame...)
	}
	pkt(999, 0x02, nil)
	for _, s := range segs {
		pkt(s[0].(uint32), 0x18, s[1].([]byte))
	}
	return b
}

func TestReassembly(t *testing.T) {
	tests := []struct {
		name string
		segs [][2]any
		want string
		gaps int
	}{
		{"in order", [][2]any{{uint32(1000), []byte("abc")}, {uint32(1003), []byte("def")}}, "abcdef", 0},
		{"out of order", [][2]any{{uint32(1003), []byte("def")}, {uint32(1000), []byte("abc")}}, "abcdef", 0},
		{"retransmit and overlap", [][2]any{{uint32(1000), []byte("abc")}, {uint32(1000), []byte("abc")}, {uint32(1002), []byte("cdef")}}, "abcdef", 0},
		{"hole", [][2]any{{uint32(1000), []byte("abc")}, {uint32(1006), []byte("ghi")}}, "abcghi", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			flows, err := Read(bytes.NewReader(pcap(tc.segs)))
			if err != nil {
				t.Fatal(err)
			}
			if len(flows) != 1 || string(flows[0].Data) != tc.want || flows[0].Gaps != tc.gaps {
				t.Fatalf("flows = %+v", flows)
			}
			if got := flows[0].String(); got != "10.0.0.1:40000>10.0.0.2:11019" {
				t.Errorf("flow = %s", got)
			}
		})
	}
	if IsPcap([]byte("BMP!")) {
		t.Error("IsPcap on non-pcap")
	}
}
