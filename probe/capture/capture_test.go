package capture

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/bpf"

	"github.com/meshd/meshd/probe/internal/synth"
	"github.com/meshd/meshd/probe/packet"
)

var (
	a4 = netip.MustParseAddrPort("192.0.2.1:33001")
	b4 = netip.MustParseAddrPort("192.0.2.2:179")
	a6 = netip.MustParseAddrPort("[2001:db8::1]:179")
	b6 = netip.MustParseAddrPort("[2001:db8::2]:40000")
)

func TestFilter(t *testing.T) {
	raw, err := Filter(179, nil)
	if err != nil {
		t.Fatal(err)
	}
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("filter does not disassemble")
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	other4 := netip.MustParseAddrPort("192.0.2.2:22")
	other6 := netip.MustParseAddrPort("[2001:db8::2]:443")
	frag := synth.Seg{Src: a4, Dst: b4}.Frame(packet.LinkRaw)
	frag[7] = 8 // fragment offset
	udp := synth.Seg{Src: a4, Dst: b4}.Frame(packet.LinkRaw)
	udp[9] = 17
	opts := synth.Seg{Src: a4, Dst: b4, HasTS: true, MD5: true}.Frame(packet.LinkRaw)
	opts[0] = 0x46 // IHL 6: ports move by 4 bytes; shift the TCP header
	opts = append(opts[:20], append([]byte{1, 1, 1, 0}, opts[20:]...)...)
	tests := []struct {
		name string
		data []byte
		want bool
	}{
		{"v4-dport", synth.Seg{Src: a4, Dst: b4}.Frame(packet.LinkRaw), true},
		{"v4-sport", synth.Seg{Src: b4, Dst: a4}.Frame(packet.LinkRaw), true},
		{"v4-ip-options", opts, true},
		{"v4-other", synth.Seg{Src: a4, Dst: other4}.Frame(packet.LinkRaw), false},
		{"v4-fragment", frag, false},
		{"v4-udp", udp, false},
		{"v6-sport", synth.Seg{Src: a6, Dst: b6}.Frame(packet.LinkRaw), true},
		{"v6-dport", synth.Seg{Src: b6, Dst: a6}.Frame(packet.LinkRaw), true},
		{"v6-other", synth.Seg{Src: b6, Dst: other6}.Frame(packet.LinkRaw), false},
		{"garbage", []byte{0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false},
	}
	for _, tc := range tests {
		n, err := vm.Run(tc.data)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := n > 0; got != tc.want {
			t.Errorf("%s: accepted %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, err := Filter(179, []int{2, 3, 4}); err != nil {
		t.Fatalf("filter with interfaces: %v", err)
	}
}

func TestPcapRoundTrip(t *testing.T) {
	frames := [][]byte{
		synth.Seg{Src: a4, Dst: b4, Payload: synth.Keepalive()}.Frame(packet.LinkEthernet),
		synth.Seg{Src: b4, Dst: a4}.Frame(packet.LinkEthernet),
	}
	t0 := time.Unix(1_700_000_000, 123_456_789)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, packet.LinkEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		if err := w.WriteFrame(t0.Add(time.Duration(i)*time.Millisecond), f); err != nil {
			t.Fatal(err)
		}
	}
	var ng bytes.Buffer
	nw, err := NewNGWriter(&ng)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		if err := nw.WriteFrame(t0.Add(time.Duration(i)*time.Millisecond), packet.LinkEthernet, f); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range map[string][]byte{"pcap": buf.Bytes(), "pcapng": ng.Bytes()} {
		r, err := NewFileReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i, want := range frames {
			f, err := r.Next()
			if err != nil {
				t.Fatalf("%s frame %d: %v", name, i, err)
			}
			if !bytes.Equal(f.Data, want) || f.Link != packet.LinkEthernet {
				t.Fatalf("%s frame %d differs", name, i)
			}
			if wt := t0.Add(time.Duration(i) * time.Millisecond).UnixNano(); f.Time != wt {
				t.Fatalf("%s frame %d: time %d, want %d", name, i, f.Time, wt)
			}
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("%s: end: %v", name, err)
		}
	}
}

func TestPcapMicrosecondsBigEndian(t *testing.T) {
	// Classic pcap, big-endian, microsecond timestamps, raw IP.
	f := synth.Seg{Src: a4, Dst: b4}.Frame(packet.LinkRaw)
	var b []byte
	be := func(v uint32) { b = append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v)) }
	be(pcapMagicMicro)
	b = append(b, 0, 2, 0, 4)
	be(0)
	be(0)
	be(65535)
	be(uint32(packet.LinkRaw))
	be(100)
	be(250)
	be(uint32(len(f)))
	be(uint32(len(f)))
	b = append(b, f...)
	r, err := NewFileReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	fr, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if fr.Time != 100*1e9+250_000 || fr.Link != packet.LinkRaw {
		t.Fatalf("time %d link %d", fr.Time, fr.Link)
	}
}

func TestFileErrors(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":     nil,
		"magic":     []byte("not a pcap file at all, no"),
		"ng-bom":    {0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 1, 2, 3, 4},
		"truncated": append([]byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0}, make([]byte, 16)...),
	} {
		r, err := NewFileReader(bytes.NewReader(data))
		if err == nil {
			_, err = r.Next()
			if err == io.EOF {
				continue // a header without records is a valid empty file
			}
		}
		if err == nil || (!errors.Is(err, ErrFormat) && err != io.EOF) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzFileReader(f *testing.F) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, packet.LinkEthernet)
	_ = w.WriteFrame(time.Unix(1, 0), synth.Seg{Src: a4, Dst: b4}.Frame(packet.LinkEthernet))
	f.Add(buf.Bytes())
	var ng bytes.Buffer
	nw, _ := NewNGWriter(&ng)
	_ = nw.WriteFrame(time.Unix(1, 0), packet.LinkLinuxSLL2, synth.Seg{Src: a6, Dst: b6}.Frame(packet.LinkLinuxSLL2))
	f.Add(ng.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewFileReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		for i := 0; i < 1000; i++ {
			if _, err := r.Next(); err != nil {
				return
			}
		}
	})
}
