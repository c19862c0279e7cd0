package pcapstream

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pcap builds a little-endian Ethernet pcap of TCP segments (seq, payload)
// from 10.0.0.1:40000 to 10.0.0.2:11019, starting with a SYN at seq 999.
func pcap(segs [][2]any) []byte { return pcapTagged(nil, segs) }

// pcapTagged is pcap with each frame carrying VLAN tags of these TPIDs.
func pcapTagged(tpids []uint16, segs [][2]any) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, 0xa1b2c3d4)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = binary.LittleEndian.AppendUint32(b, 65535)
	b = binary.LittleEndian.AppendUint32(b, 1)
	pkt := func(seq uint32, flags byte, payload []byte) {
		eth := make([]byte, 12)
		for i, tpid := range tpids {
			eth = binary.BigEndian.AppendUint16(eth, tpid)
			eth = binary.BigEndian.AppendUint16(eth, uint16(100+i))
		}
		eth = append(eth, 0x08, 0x00)
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

// ng builds a little-endian pcapng file: a section header, the given
// interfaces' link types, and an Enhanced Packet Block per frame of
// pcap(segs) on interface len(links)-1.
func ng(links []uint16, segs [][2]any) []byte {
	le := binary.LittleEndian
	blk := func(b []byte, typ uint32, body []byte) []byte {
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		n := uint32(12 + len(body))
		b = le.AppendUint32(b, typ)
		b = le.AppendUint32(b, n)
		b = append(b, body...)
		return le.AppendUint32(b, n)
	}
	shb := le.AppendUint32(nil, 0x1a2b3c4d)
	shb = le.AppendUint16(shb, 1)
	shb = le.AppendUint16(shb, 0)
	shb = append(shb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	b := blk(nil, 0x0a0d0d0a, shb)
	for _, l := range links {
		b = blk(b, 1, le.AppendUint32(le.AppendUint16(le.AppendUint16(nil, l), 0), 65535))
	}
	// Take the frames out of the classic pcap the other tests build.
	p := pcap(segs)[24:]
	for len(p) > 0 {
		n := le.Uint32(p[8:])
		frame := p[16 : 16+n]
		p = p[16+n:]
		epb := le.AppendUint32(nil, uint32(len(links)-1))
		epb = append(epb, make([]byte, 8)...)
		epb = le.AppendUint32(epb, n)
		epb = le.AppendUint32(epb, n)
		b = blk(b, 6, append(epb, frame...))
		b = blk(b, 0xbad, []byte("custom blocks are skipped"))
	}
	return b
}

func TestPcapng(t *testing.T) {
	segs := [][2]any{{uint32(1003), []byte("def")}, {uint32(1000), []byte("abc")}}
	tests := []struct {
		name    string
		file    []byte
		want    string
		wantErr string
	}{
		{"one interface", ng([]uint16{1}, segs), "abcdef", ""},
		{"second interface", ng([]uint16{101, 1}, segs), "abcdef", ""},
		{"two sections", append(ng([]uint16{1}, segs[:1]), ng([]uint16{101, 1}, segs[1:])...), "abcdef", ""},
		{"truncated", ng([]uint16{1}, segs)[:180], "", "pcapng block type 6: unexpected EOF"},
		{"bad trailer", func() []byte {
			b := ng([]uint16{1}, segs)
			b[len(b)-1] = 9
			return b
		}(), "abcdef", "pcapng block type 2989: trailing length"},
		{"no interface", ng(nil, segs), "", "pcapng packet on interface 4294967295 of 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if f := Format(tc.file); f != "pcapng" {
				t.Fatalf("Format = %q", f)
			}
			flows, err := Read(bytes.NewReader(tc.file))
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			got := ""
			if len(flows) > 0 {
				got = string(flows[0].Data)
			}
			if got != tc.want {
				t.Errorf("data = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRealPcapng reads one gobgpd BMP session captured at once by tcpdump
// (pcap) and dumpcap (pcapng), and a tshark conversion of a pcap to
// pcapng: the flows must be the same byte for byte.
func TestRealPcapng(t *testing.T) {
	dir := filepath.Join("..", "decode", "testdata")
	for _, c := range [][2]string{
		{"gobgpd-locrib.pcap", "gobgpd-locrib.pcapng"},
		{"gobgpd-locrib-midsession.pcap", "gobgpd-locrib-midsession.pcapng"},
	} {
		var got [2][]*Flow
		for i, name := range c {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if f := Format(b); f != filepath.Ext(name)[1:] {
				t.Errorf("%s: Format = %q", name, f)
			}
			if got[i], err = Read(bytes.NewReader(b)); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if len(got[0]) == 0 || len(got[0]) != len(got[1]) {
			t.Fatalf("%s: %d flows, %s: %d", c[0], len(got[0]), c[1], len(got[1]))
		}
		for i := range got[0] {
			a, b := got[0][i], got[1][i]
			if a.String() != b.String() || !bytes.Equal(a.Data, b.Data) || a.Gaps != b.Gaps {
				t.Errorf("flow %d: %s (%d bytes, %d gaps) vs %s (%d bytes, %d gaps)", i, a, len(a.Data), a.Gaps, b, len(b.Data), b.Gaps)
			}
		}
	}
}

// TestTruncatedPcap: a file cut inside a record is an error, wherever the
// cut falls (after a whole record header it used to read as the end).
func TestTruncatedPcap(t *testing.T) {
	full := pcap([][2]any{{uint32(1000), []byte("abc")}})
	last := 24 + 16 + 54 // the SYN's record
	for _, cut := range []int{last + 8, last + 16, last + 30} {
		flows, err := Read(bytes.NewReader(full[:cut]))
		if err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
			t.Errorf("cut at %d: err = %v (%d flows), want unexpected EOF", cut, err, len(flows))
		}
	}
	if _, err := Read(bytes.NewReader(full)); err != nil {
		t.Fatal(err)
	}
}

// BMP over a tagged link: 802.1Q, QinQ (802.1ad) and the older QinQ TPID
// 0x9100, as the probe's decoder takes them.
func TestVLANTags(t *testing.T) {
	segs := [][2]any{{uint32(1000), []byte("abc")}}
	for _, tc := range []struct {
		name  string
		tpids []uint16
		want  string
	}{
		{"untagged", nil, "abc"},
		{"802.1Q", []uint16{0x8100}, "abc"},
		{"QinQ", []uint16{0x88a8, 0x8100}, "abc"},
		{"QinQ 0x9100", []uint16{0x9100, 0x8100}, "abc"},
		{"five tags", []uint16{0x88a8, 0x8100, 0x8100, 0x8100, 0x8100}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flows, err := Read(bytes.NewReader(pcapTagged(tc.tpids, segs)))
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if len(flows) > 0 {
				got = string(flows[0].Data)
			}
			if got != tc.want {
				t.Errorf("data %q, want %q", got, tc.want)
			}
		})
	}
}
