package pcapfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// ngFile builds a little-endian pcapng file from blocks of (type, body).
func ngFile(blocks ...[]any) []byte {
	le := binary.LittleEndian
	var b []byte
	for _, bl := range blocks {
		typ, body := bl[0].(uint32), bl[1].([]byte)
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		n := uint32(12 + len(body))
		b = le.AppendUint32(b, typ)
		b = le.AppendUint32(b, n)
		b = append(b, body...)
		b = le.AppendUint32(b, n)
	}
	return b
}

func shb() []any {
	b := binary.LittleEndian.AppendUint32(nil, ngBOM)
	b = append(b, 1, 0, 0, 0)
	return []any{uint32(ngSHB), append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)}
}

func idb(link uint16, snap uint32) []any {
	le := binary.LittleEndian
	return []any{uint32(ngIDB), le.AppendUint32(le.AppendUint16(le.AppendUint16(nil, link), 0), snap)}
}

func epb(iface, caplen uint32, data []byte) []any {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, iface)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	b = le.AppendUint32(b, caplen)
	b = le.AppendUint32(b, uint32(len(data)))
	return []any{uint32(ngEPB), append(b, data...)}
}

// A hostile or broken pcapng file is a clear ErrFormat, read without
// allocating what it claims; a good one reads, with link types above 255.
func TestNgGuard(t *testing.T) {
	frame := bytes.Repeat([]byte{0xab}, 60)
	good := ngFile(shb(), idb(1, 65535), idb(276, 0), epb(1, 60, frame), epb(0, 60, frame))
	badTrailer := append([]byte(nil), good...)
	badTrailer[len(badTrailer)-4] = 9
	tests := []struct {
		name  string
		file  []byte
		links []uint32 // of the packets read
		err   string
	}{
		{"good", good, []uint32{276, 1}, ""},
		{"claims 4 GiB", ngFile(shb(), idb(1, 65535), epb(0, 0xfffffff0, frame)), nil, "pcapng packet of 4294967280 bytes"},
		{"huge snap length", ngFile(shb(), idb(1, 0xffffffff), epb(0, 60, frame)), []uint32{1}, ""},
		{"no interface", ngFile(shb(), epb(0, 60, frame)), nil, "pcapng packet on interface 0 of 0"},
		{"cut short", good[:len(good)-30], []uint32{276}, "pcapng block type 6: unexpected EOF"},
		{"bad trailer", badTrailer, []uint32{276, 1}, "trailing length 9, want 92"},
		{"time resolution 10^-65 s", ngFile(shb(), []any{uint32(ngIDB), append(idb(1, 65535)[1].([]byte), 9, 0, 1, 0, 65, 0, 0, 0, 0, 0, 0, 0)}, epb(0, 60, frame)), nil, "pcapgo: runtime error"},
		{"block length", ngFile(shb(), []any{uint32(ngIDB), []byte{1}})[:len(ngFile(shb()))+4], nil, "unexpected EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			r, err := NewReader(bytes.NewReader(tc.file))
			var links []uint32
			for err == nil {
				var p Packet
				if p, err = r.Next(); err == nil {
					links = append(links, p.Link)
					if !bytes.Equal(p.Data, frame) {
						t.Errorf("packet data % x", p.Data)
					}
				}
			}
			runtime.ReadMemStats(&after)
			if tc.err == "" && err != io.EOF || tc.err != "" && (!errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("error %v, want ErrFormat with %q", err, tc.err)
			}
			if !slicesEqual(links, tc.links) {
				t.Errorf("links %v, want %v", links, tc.links)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
				t.Errorf("reading a %d-byte file allocated %d bytes", len(tc.file), grew)
			}
		})
	}
}

func slicesEqual(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		b    []byte
		want string
	}{
		{[]byte{0xd4, 0xc3, 0xb2, 0xa1}, "pcap"},
		{[]byte{0xa1, 0xb2, 0xc3, 0xd4}, "pcap"},
		{[]byte{0x4d, 0x3c, 0xb2, 0xa1}, "pcap"},
		{[]byte{0x0a, 0x0d, 0x0d, 0x0a}, "pcapng"},
		{[]byte("BMP!"), ""},
		{[]byte{1}, ""},
	} {
		if got := Format(tc.b); got != tc.want {
			t.Errorf("Format(% x) = %q, want %q", tc.b, got, tc.want)
		}
	}
}
