// Package synth builds frames and whole BGP-over-TCP conversations for the
// probe's tests, fixtures and benchmarks: every link type the decoder
// reads, IPv4 and IPv6, TCP options, split and coalesced segments,
// retransmissions.
package synth

import (
	"encoding/binary"
	"net/netip"

	"github.com/meshd/meshd/probe/packet"
)

// Seg describes one TCP segment to build.
type Seg struct {
	Src, Dst   netip.AddrPort
	Seq, Ack   uint32
	Flags      uint8
	TTL        uint8
	HasTS      bool
	TSval      uint32
	TSecr      uint32
	MD5        bool
	AO         bool
	Payload    []byte
	VLANs      []uint16
	PktType    uint8
	IPv6ExtHdr bool // put a destination-options header before TCP
}

// Frame builds the segment as a frame of the given link type.
func (s Seg) Frame(link packet.LinkType) []byte {
	ip := s.ip()
	var ethType uint16 = packet.EtherIPv4
	if s.Src.Addr().Is6() {
		ethType = packet.EtherIPv6
	}
	switch link {
	case packet.LinkEthernet:
		b := make([]byte, 0, 14+4*len(s.VLANs)+len(ip))
		b = append(b, 0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1)
		for _, v := range s.VLANs {
			b = binary.BigEndian.AppendUint16(b, packet.EtherVLAN)
			b = binary.BigEndian.AppendUint16(b, v)
		}
		b = binary.BigEndian.AppendUint16(b, ethType)
		return append(b, ip...)
	case packet.LinkLinuxSLL:
		b := make([]byte, 16, 16+len(ip))
		binary.BigEndian.PutUint16(b[0:2], uint16(s.PktType))
		binary.BigEndian.PutUint16(b[2:4], 1) // ARPHRD_ETHER
		binary.BigEndian.PutUint16(b[4:6], 6)
		copy(b[6:12], []byte{0x02, 0, 0, 0, 0, 1})
		binary.BigEndian.PutUint16(b[14:16], ethType)
		return append(b, ip...)
	case packet.LinkLinuxSLL2:
		b := make([]byte, 20, 20+len(ip))
		binary.BigEndian.PutUint16(b[0:2], ethType)
		binary.BigEndian.PutUint32(b[4:8], 2)
		binary.BigEndian.PutUint16(b[8:10], 1)
		b[10] = s.PktType
		b[11] = 6
		copy(b[12:18], []byte{0x02, 0, 0, 0, 0, 1})
		return append(b, ip...)
	case packet.LinkRaw:
		return ip
	case packet.LinkIPv4, packet.LinkIPv6:
		return ip
	case packet.LinkNull:
		b := make([]byte, 4, 4+len(ip))
		fam := uint32(2)
		if ethType == packet.EtherIPv6 {
			fam = 30
		}
		binary.LittleEndian.PutUint32(b, fam)
		return append(b, ip...)
	}
	panic("synth: link type not supported")
}

func (s Seg) tcp() []byte {
	var opts []byte
	if s.MD5 {
		opts = append(opts, 1, 1, 19, 18)
		opts = append(opts, make([]byte, 16)...)
	}
	if s.AO {
		opts = append(opts, 29, 16, 7, 7)
		opts = append(opts, make([]byte, 12)...)
	}
	if s.HasTS {
		opts = append(opts, 1, 1, 8, 10)
		opts = binary.BigEndian.AppendUint32(opts, s.TSval)
		opts = binary.BigEndian.AppendUint32(opts, s.TSecr)
	}
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	h := make([]byte, 20, 20+len(opts)+len(s.Payload))
	binary.BigEndian.PutUint16(h[0:2], s.Src.Port())
	binary.BigEndian.PutUint16(h[2:4], s.Dst.Port())
	binary.BigEndian.PutUint32(h[4:8], s.Seq)
	binary.BigEndian.PutUint32(h[8:12], s.Ack)
	h[12] = byte((20+len(opts))/4) << 4
	h[13] = s.Flags
	binary.BigEndian.PutUint16(h[14:16], 64240)
	h = append(h, opts...)
	return append(h, s.Payload...)
}

func (s Seg) ip() []byte {
	tcp := s.tcp()
	ttl := s.TTL
	if ttl == 0 {
		ttl = 64
	}
	if s.Src.Addr().Is4() {
		h := make([]byte, 20, 20+len(tcp))
		h[0] = 0x45
		binary.BigEndian.PutUint16(h[2:4], uint16(20+len(tcp)))
		h[6] = 0x40 // DF
		h[8] = ttl
		h[9] = 6
		src, dst := s.Src.Addr().As4(), s.Dst.Addr().As4()
		copy(h[12:16], src[:])
		copy(h[16:20], dst[:])
		binary.BigEndian.PutUint16(h[10:12], ^sum(h, 0))
		binary.BigEndian.PutUint16(tcp[16:18], tcpChecksum(src[:], dst[:], tcp))
		return append(h, tcp...)
	}
	src, dst := s.Src.Addr().As16(), s.Dst.Addr().As16()
	binary.BigEndian.PutUint16(tcp[16:18], tcpChecksum(src[:], dst[:], tcp))
	var ext []byte
	next := byte(6)
	if s.IPv6ExtHdr {
		ext = []byte{6, 0, 1, 4, 0, 0, 0, 0} // dest opts: PadN
		next = 60
	}
	h := make([]byte, 40, 40+len(ext)+len(tcp))
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:6], uint16(len(ext)+len(tcp)))
	h[6] = next
	h[7] = ttl
	copy(h[8:24], src[:])
	copy(h[24:40], dst[:])
	h = append(h, ext...)
	return append(h, tcp...)
}

func sum(b []byte, s uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func tcpChecksum(src, dst, tcp []byte) uint16 {
	var ph []byte
	ph = append(ph, src...)
	ph = append(ph, dst...)
	if len(src) == 4 {
		ph = append(ph, 0, 6)
		ph = binary.BigEndian.AppendUint16(ph, uint16(len(tcp)))
	} else {
		ph = binary.BigEndian.AppendUint32(ph, uint32(len(tcp)))
		ph = append(ph, 0, 0, 0, 6)
	}
	return ^sum(tcp, uint32(sum(ph, 0)))
}

// BGP messages.

// Message returns a BGP message of type typ with a body of n bytes.
func Message(typ uint8, n int) []byte {
	b := make([]byte, 19+n)
	for i := 0; i < 16; i++ {
		b[i] = 0xff
	}
	binary.BigEndian.PutUint16(b[16:18], uint16(19+n))
	b[18] = typ
	for i := 19; i < len(b); i++ {
		b[i] = byte(i) // arbitrary, with 0xff bytes now and then
	}
	return b
}

// Keepalive returns a KEEPALIVE.
func Keepalive() []byte { return Message(4, 0) }

// Open returns an OPEN of plausible size.
func Open() []byte { return Message(1, 40) }

// Update returns an UPDATE with an n-byte body.
func Update(n int) []byte { return Message(2, n) }

// Frame is a built frame with its capture time.
type Frame struct {
	Time int64
	Data []byte
}

// Session simulates one BGP session between A and B as seen at a capture
// point next to A: A's segments are captured when sent, B's when they
// arrive. Times are Unix ns; the caller moves time forward.
type Session struct {
	A, B    netip.AddrPort
	Link    packet.LinkType
	TS      bool
	MD5, AO bool
	VLANs   []uint16
	TTL     [2]uint8 // as captured (B's after its hops)
	Frames  []Frame

	seq [2]uint32
	ts  [2]uint32
	// tsSeen is the latest TSval each side received, echoed in TSecr.
	tsSeen [2]uint32
}

// NewSession returns a session in the established state with initial
// sequence numbers chosen so wrap-around is exercised.
func NewSession(a, b netip.AddrPort, link packet.LinkType) *Session {
	return &Session{A: a, B: b, Link: link, TS: true, TTL: [2]uint8{64, 63},
		seq: [2]uint32{0xffff_ff00, 1_000_000}, ts: [2]uint32{100, 5000}}
}

func (s *Session) ends(d int) (netip.AddrPort, netip.AddrPort) {
	if d == 0 {
		return s.A, s.B
	}
	return s.B, s.A
}

// Seq returns the next sequence number side d will send.
func (s *Session) Seq(d int) uint32 { return s.seq[d] }

// Segment emits a segment from side d at time t carrying payload and
// acknowledging everything the other side sent; it returns the sequence
// number after the payload.
func (s *Session) Segment(d int, t int64, payload []byte) uint32 {
	return s.SegmentAt(d, t, s.seq[d], payload, s.seq[1-d])
}

// SegmentAt emits a segment with explicit seq and ack (for
// retransmissions and partial ACKs). It advances d's next sequence number
// if the segment goes beyond it.
func (s *Session) SegmentAt(d int, t int64, seq uint32, payload []byte, ack uint32) uint32 {
	src, dst := s.ends(d)
	// TSval ticks once per millisecond of simulated time, like Linux.
	s.ts[d] = uint32(t/1e6) + uint32(d)*7919
	seg := Seg{Src: src, Dst: dst, Seq: seq, Ack: ack, Flags: packet.FlagACK | packet.FlagPSH,
		TTL: s.TTL[d], HasTS: s.TS, TSval: s.ts[d], TSecr: s.tsSeen[d], MD5: s.MD5, AO: s.AO,
		Payload: payload, VLANs: s.VLANs}
	if len(payload) == 0 {
		seg.Flags = packet.FlagACK
	}
	if d == 0 {
		seg.PktType = packet.PktOutgoing
	}
	s.tsSeen[1-d] = s.ts[d]
	s.Frames = append(s.Frames, Frame{Time: t, Data: seg.Frame(s.Link)})
	end := seq + uint32(len(payload))
	if int32(end-s.seq[d]) > 0 {
		s.seq[d] = end
	}
	return end
}

// TSval returns the TSval of side d's latest segment.
func (s *Session) TSval(d int) uint32 { return s.ts[d] }

// AckEchoing emits a pure ACK from side d at time t whose TSecr is tsecr
// (an echo of an earlier segment than the latest, as RFC 7323 has a
// receiver echo when a retransmission was spurious).
func (s *Session) AckEchoing(d int, t int64, tsecr uint32) {
	s.tsSeen[d] = tsecr
	s.Ack(d, t)
}

// Ack emits a pure ACK from side d at time t.
func (s *Session) Ack(d int, t int64) { s.Segment(d, t, nil) }

// FIN emits a FIN from side d at time t, acknowledging everything.
func (s *Session) FIN(d int, t int64) {
	src, dst := s.ends(d)
	s.ts[d] = uint32(t/1e6) + uint32(d)*7919
	seg := Seg{Src: src, Dst: dst, Seq: s.seq[d], Ack: s.seq[1-d], Flags: packet.FlagACK | packet.FlagFIN,
		TTL: s.TTL[d], HasTS: s.TS, TSval: s.ts[d], TSecr: s.tsSeen[d], MD5: s.MD5, AO: s.AO, VLANs: s.VLANs}
	s.tsSeen[1-d] = s.ts[d]
	s.Frames = append(s.Frames, Frame{Time: t, Data: seg.Frame(s.Link)})
	s.seq[d]++
}

// Handshake emits SYN, SYN-ACK, ACK at t, with A connecting.
func (s *Session) Handshake(t int64, rtt int64) {
	syn := func(d int, flags uint8, at int64) {
		src, dst := s.ends(d)
		seg := Seg{Src: src, Dst: dst, Seq: s.seq[d] - 1, Flags: flags, TTL: s.TTL[d], HasTS: s.TS,
			TSval: s.ts[d], TSecr: s.tsSeen[d], MD5: s.MD5, AO: s.AO, VLANs: s.VLANs}
		if flags&packet.FlagACK != 0 {
			seg.Ack = s.seq[1-d]
		}
		s.tsSeen[1-d] = s.ts[d]
		s.Frames = append(s.Frames, Frame{Time: at, Data: seg.Frame(s.Link)})
	}
	syn(0, packet.FlagSYN, t)
	syn(1, packet.FlagSYN|packet.FlagACK, t+rtt)
	s.Ack(0, t+rtt)
}
