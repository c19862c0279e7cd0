package packet_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/meshd/meshd/probe/internal/synth"
	"github.com/meshd/meshd/probe/packet"
)

var (
	a4 = netip.MustParseAddrPort("192.0.2.1:33001")
	b4 = netip.MustParseAddrPort("192.0.2.2:179")
	a6 = netip.MustParseAddrPort("[2001:db8::1]:33001")
	b6 = netip.MustParseAddrPort("[2001:db8::2]:179")
)

func TestDecode(t *testing.T) {
	ka := synth.Keepalive()
	tests := []struct {
		name string
		link packet.LinkType
		seg  synth.Seg
	}{
		{"ethernet-v4-ts", packet.LinkEthernet, synth.Seg{Src: a4, Dst: b4, Seq: 1, Ack: 2, Flags: packet.FlagACK, TTL: 62, HasTS: true, TSval: 7, TSecr: 9, Payload: ka}},
		{"ethernet-v6", packet.LinkEthernet, synth.Seg{Src: a6, Dst: b6, Seq: 1, Ack: 2, Flags: packet.FlagACK, TTL: 250, Payload: ka}},
		{"vlan-v4", packet.LinkEthernet, synth.Seg{Src: a4, Dst: b4, TTL: 64, VLANs: []uint16{100}, Payload: ka}},
		{"qinq-v6", packet.LinkEthernet, synth.Seg{Src: a6, Dst: b6, TTL: 64, VLANs: []uint16{200, 300}, Payload: ka}},
		{"sll-v4-md5", packet.LinkLinuxSLL, synth.Seg{Src: a4, Dst: b4, TTL: 1, MD5: true, HasTS: true, TSval: 1, PktType: packet.PktOutgoing, Payload: ka}},
		{"sll2-v6-ao", packet.LinkLinuxSLL2, synth.Seg{Src: a6, Dst: b6, TTL: 64, AO: true, PktType: packet.PktHost, Payload: ka}},
		{"raw-v4", packet.LinkRaw, synth.Seg{Src: a4, Dst: b4, TTL: 128}},
		{"raw-v6-exthdr", packet.LinkRaw, synth.Seg{Src: a6, Dst: b6, TTL: 64, IPv6ExtHdr: true, Payload: ka}},
		{"ipv4-link", packet.LinkIPv4, synth.Seg{Src: a4, Dst: b4, TTL: 128, Payload: ka}},
		{"ipv6-link", packet.LinkIPv6, synth.Seg{Src: a6, Dst: b6, TTL: 128, Payload: ka}},
		{"null-v4", packet.LinkNull, synth.Seg{Src: a4, Dst: b4, TTL: 64, Payload: ka}},
		{"null-v6", packet.LinkNull, synth.Seg{Src: a6, Dst: b6, TTL: 64, Payload: ka}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p packet.Packet
			frame := tc.seg.Frame(tc.link)
			if err := packet.Decode(tc.link, frame, &p); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			s := tc.seg
			if p.Src != s.Src.Addr() || p.Dst != s.Dst.Addr() || p.SrcPort != s.Src.Port() || p.DstPort != s.Dst.Port() {
				t.Errorf("endpoints %v:%d -> %v:%d", p.Src, p.SrcPort, p.Dst, p.DstPort)
			}
			if p.Seq != s.Seq || p.Ack != s.Ack || p.Flags != s.Flags || p.TTL != s.TTL {
				t.Errorf("seq %d ack %d flags %x ttl %d, want %d %d %x %d", p.Seq, p.Ack, p.Flags, p.TTL, s.Seq, s.Ack, s.Flags, s.TTL)
			}
			if p.HasTS != s.HasTS || p.TSval != s.TSval || p.TSecr != s.TSecr {
				t.Errorf("ts %v %d %d", p.HasTS, p.TSval, p.TSecr)
			}
			if p.HasMD5 != s.MD5 || p.HasAO != s.AO {
				t.Errorf("md5 %v ao %v", p.HasMD5, p.HasAO)
			}
			if string(p.Payload) != string(s.Payload) {
				t.Errorf("payload %x, want %x", p.Payload, s.Payload)
			}
			if len(s.VLANs) > 0 && p.VLAN != s.VLANs[0] {
				t.Errorf("vlan %d", p.VLAN)
			}
			if tc.link == packet.LinkLinuxSLL || tc.link == packet.LinkLinuxSLL2 {
				if p.PktType != s.PktType {
					t.Errorf("pkttype %d, want %d", p.PktType, s.PktType)
				}
			}
		})
	}
}

func TestDecodeEthernetPadding(t *testing.T) {
	// A pure ACK is padded to 60 bytes on Ethernet; the padding is no payload.
	f := synth.Seg{Src: a4, Dst: b4, Flags: packet.FlagACK}.Frame(packet.LinkEthernet)
	f = append(f, make([]byte, 60-len(f))...)
	var p packet.Packet
	if err := packet.Decode(packet.LinkEthernet, f, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Payload) != 0 {
		t.Fatalf("payload of %d bytes from padding", len(p.Payload))
	}
}

func TestDecodeErrors(t *testing.T) {
	good := synth.Seg{Src: a4, Dst: b4, Payload: synth.Keepalive()}.Frame(packet.LinkEthernet)
	frag := append([]byte(nil), good...)
	frag[14+6] = 0x20 // MF
	udp := append([]byte(nil), good...)
	udp[14+9] = 17
	arp := append([]byte(nil), good...)
	arp[12], arp[13] = 0x08, 0x06
	badOff := append([]byte(nil), good...)
	badOff[14+20+12] = 0x40 // data offset 16 bytes
	tests := []struct {
		name string
		link packet.LinkType
		data []byte
		want error
	}{
		{"empty", packet.LinkEthernet, nil, packet.ErrTruncated},
		{"short-ip", packet.LinkEthernet, good[:30], packet.ErrTruncated},
		{"short-tcp", packet.LinkEthernet, good[:14+20+10], packet.ErrTruncated},
		{"fragment", packet.LinkEthernet, frag, packet.ErrFragment},
		{"udp", packet.LinkEthernet, udp, packet.ErrNotTCP},
		{"arp", packet.LinkEthernet, arp, packet.ErrNotTCP},
		{"tcp-offset", packet.LinkEthernet, badOff, packet.ErrMalformed},
		{"linktype", packet.LinkType(147), good, packet.ErrLinkType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p packet.Packet
			if err := packet.Decode(tc.link, tc.data, &p); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDecodeNoAlloc(t *testing.T) {
	f := synth.Seg{Src: a6, Dst: b6, HasTS: true, MD5: true, VLANs: []uint16{5}, Payload: synth.Keepalive()}.Frame(packet.LinkEthernet)
	var p packet.Packet
	if n := testing.AllocsPerRun(100, func() { _ = packet.Decode(packet.LinkEthernet, f, &p) }); n != 0 {
		t.Fatalf("Decode allocates %v times", n)
	}
}

func FuzzDecode(f *testing.F) {
	for _, link := range []packet.LinkType{packet.LinkEthernet, packet.LinkLinuxSLL, packet.LinkLinuxSLL2, packet.LinkRaw, packet.LinkNull} {
		f.Add(uint32(link), synth.Seg{Src: a4, Dst: b4, HasTS: true, MD5: true, Payload: synth.Keepalive()}.Frame(link))
		f.Add(uint32(link), synth.Seg{Src: a6, Dst: b6, AO: true, IPv6ExtHdr: true, VLANs: []uint16{1, 2}, Payload: synth.Update(30)}.Frame(link))
	}
	f.Fuzz(func(t *testing.T, link uint32, data []byte) {
		var p packet.Packet
		if err := packet.Decode(packet.LinkType(link), data, &p); err != nil {
			return
		}
		// The payload must lie inside the frame.
		if len(p.Payload) > len(data) {
			t.Fatalf("payload of %d bytes from a %d-byte frame", len(p.Payload), len(data))
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	f := synth.Seg{Src: a4, Dst: b4, HasTS: true, Payload: synth.Keepalive()}.Frame(packet.LinkEthernet)
	var p packet.Packet
	b.ReportAllocs()
	for b.Loop() {
		_ = packet.Decode(packet.LinkEthernet, f, &p)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}
