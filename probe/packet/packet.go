// Package packet decodes captured frames down to the TCP payload for the
// keepalive probe: link header (Ethernet, 802.1Q/802.1ad, Linux cooked v1
// and v2, raw IP, BSD loopback), IPv4 or IPv6, and TCP with its options.
// Decode never allocates, so it can sit on the capture hot path.
package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// LinkType is a pcap LINKTYPE_ value: what the first header of a frame is.
type LinkType uint32

// Link types the decoder understands (numbers from the pcap registry).
const (
	LinkNull      LinkType = 0   // BSD loopback: 4-byte address family in host order
	LinkEthernet  LinkType = 1   // Ethernet II, optionally with 802.1Q/802.1ad tags
	LinkRaw       LinkType = 101 // raw IPv4 or IPv6, no link header
	LinkLinuxSLL  LinkType = 113 // Linux cooked capture v1 (tcpdump -i any, old)
	LinkIPv4      LinkType = 228 // raw IPv4
	LinkIPv6      LinkType = 229 // raw IPv6
	LinkLinuxSLL2 LinkType = 276 // Linux cooked capture v2 (tcpdump -i any, new)
)

// EtherTypes the decoder follows.
const (
	EtherIPv4   uint16 = 0x0800
	EtherIPv6   uint16 = 0x86dd
	EtherVLAN   uint16 = 0x8100
	EtherQinQ   uint16 = 0x88a8
	EtherQinQv1 uint16 = 0x9100
)

// Linux packet types (sll_pkttype), as cooked captures and AF_PACKET
// report them.
const (
	PktHost      uint8 = 0 // to us
	PktBroadcast uint8 = 1
	PktMulticast uint8 = 2
	PktOtherHost uint8 = 3 // to someone else, seen in promiscuous mode
	PktOutgoing  uint8 = 4 // sent by us
	PktUnknown   uint8 = 0xff
)

// TCP flags.
const (
	FlagFIN uint8 = 0x01
	FlagSYN uint8 = 0x02
	FlagRST uint8 = 0x04
	FlagPSH uint8 = 0x08
	FlagACK uint8 = 0x10
)

// TCP option kinds the probe cares about.
const (
	optEOL = 0
	optNOP = 1
	optTS  = 8  // RFC 7323
	optMD5 = 19 // RFC 2385
	optAO  = 29 // RFC 5925
)

// Errors a caller tells apart: ErrNotTCP and ErrFragment are normal for a
// capture that is not filtered, the others mean a malformed or truncated
// frame.
var (
	ErrTruncated = errors.New("packet: truncated")
	ErrMalformed = errors.New("packet: malformed header")
	ErrNotTCP    = errors.New("packet: not TCP over IP")
	ErrFragment  = errors.New("packet: IP fragment")
	ErrLinkType  = errors.New("packet: unsupported link type")
)

// maxVLANTags bounds how many stacked tags are followed, so a crafted
// frame of nothing but tags costs little.
const maxVLANTags = 4

// maxIPv6ExtHeaders bounds the IPv6 extension-header walk for the same
// reason.
const maxIPv6ExtHeaders = 8

// Packet is one decoded TCP segment. Payload aliases the frame passed to
// Decode and is only valid as long as that buffer is.
type Packet struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            uint8
	Window           uint16
	TTL              uint8  // IPv4 TTL or IPv6 hop limit
	VLAN             uint16 // outermost VLAN ID, 0 when untagged
	PktType          uint8  // Linux packet type from a cooked header, else PktUnknown

	HasTS        bool // TCP timestamps option present
	TSval, TSecr uint32
	HasMD5       bool // TCP MD5 signature option (RFC 2385)
	HasAO        bool // TCP authentication option (RFC 5925)
	AOKeyID      uint8
	AORNextKeyID uint8

	Payload []byte
}

// SrcAddrPort returns the source address and port.
func (p *Packet) SrcAddrPort() netip.AddrPort { return netip.AddrPortFrom(p.Src, p.SrcPort) }

// DstAddrPort returns the destination address and port.
func (p *Packet) DstAddrPort() netip.AddrPort { return netip.AddrPortFrom(p.Dst, p.DstPort) }

// Decode decodes a frame of the given link type into p, overwriting all of
// it.
func Decode(link LinkType, data []byte, p *Packet) error {
	*p = Packet{PktType: PktUnknown}
	switch link {
	case LinkEthernet:
		if len(data) < 14 {
			return ErrTruncated
		}
		return p.decodeEther(binary.BigEndian.Uint16(data[12:14]), data[14:])
	case LinkLinuxSLL:
		// pkttype(2) hatype(2) halen(2) addr(8) protocol(2)
		if len(data) < 16 {
			return ErrTruncated
		}
		p.PktType = uint8(binary.BigEndian.Uint16(data[0:2]))
		return p.decodeEther(binary.BigEndian.Uint16(data[14:16]), data[16:])
	case LinkLinuxSLL2:
		// protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8)
		if len(data) < 20 {
			return ErrTruncated
		}
		p.PktType = data[10]
		return p.decodeEther(binary.BigEndian.Uint16(data[0:2]), data[20:])
	case LinkRaw:
		return p.decodeIP(data)
	case LinkIPv4:
		return p.decodeIPv4(data)
	case LinkIPv6:
		return p.decodeIPv6(data)
	case LinkNull:
		if len(data) < 4 {
			return ErrTruncated
		}
		// The family is in the capturing host's byte order; IPv4 is 2
		// everywhere, IPv6 is 24, 28 or 30 depending on the BSD.
		fam := binary.LittleEndian.Uint32(data[0:4])
		if fam > 0xffff {
			fam = binary.BigEndian.Uint32(data[0:4])
		}
		switch fam {
		case 2:
			return p.decodeIPv4(data[4:])
		case 24, 28, 30:
			return p.decodeIPv6(data[4:])
		}
		return ErrNotTCP
	}
	return ErrLinkType
}

// DecodeEther decodes a frame that starts at the network header with the
// EtherType given out of band, as an AF_PACKET SOCK_DGRAM socket delivers
// it (sockaddr_ll protocol); pktType is the sockaddr_ll packet type.
func DecodeEther(etherType uint16, pktType uint8, data []byte, p *Packet) error {
	*p = Packet{PktType: pktType}
	return p.decodeEther(etherType, data)
}

func (p *Packet) decodeEther(etherType uint16, data []byte) error {
	for i := 0; ; i++ {
		switch etherType {
		case EtherIPv4:
			return p.decodeIPv4(data)
		case EtherIPv6:
			return p.decodeIPv6(data)
		case EtherVLAN, EtherQinQ, EtherQinQv1:
			if i >= maxVLANTags {
				return ErrMalformed
			}
			if len(data) < 4 {
				return ErrTruncated
			}
			if p.VLAN == 0 {
				p.VLAN = binary.BigEndian.Uint16(data[0:2]) & 0x0fff
			}
			etherType = binary.BigEndian.Uint16(data[2:4])
			data = data[4:]
		default:
			return ErrNotTCP
		}
	}
}

func (p *Packet) decodeIP(data []byte) error {
	if len(data) < 1 {
		return ErrTruncated
	}
	switch data[0] >> 4 {
	case 4:
		return p.decodeIPv4(data)
	case 6:
		return p.decodeIPv6(data)
	}
	return ErrNotTCP
}

func (p *Packet) decodeIPv4(data []byte) error {
	if len(data) < 20 {
		return ErrTruncated
	}
	if data[0]>>4 != 4 {
		return ErrMalformed
	}
	ihl := int(data[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(data[2:4]))
	if ihl < 20 || total < ihl {
		return ErrMalformed
	}
	// TSO/GSO super-packets captured on the way out can carry a total
	// length of 0; trust the frame then. Otherwise trim link padding.
	if total != 0 {
		if total > len(data) {
			return ErrTruncated
		}
		data = data[:total]
	}
	if len(data) < ihl {
		return ErrTruncated
	}
	if binary.BigEndian.Uint16(data[6:8])&0x3fff != 0 { // MF or offset
		return ErrFragment
	}
	if data[9] != 6 {
		return ErrNotTCP
	}
	p.TTL = data[8]
	p.Src = netip.AddrFrom4([4]byte(data[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(data[16:20]))
	return p.decodeTCP(data[ihl:])
}

func (p *Packet) decodeIPv6(data []byte) error {
	if len(data) < 40 {
		return ErrTruncated
	}
	if data[0]>>4 != 6 {
		return ErrMalformed
	}
	plen := int(binary.BigEndian.Uint16(data[4:6]))
	next := data[6]
	p.TTL = data[7]
	p.Src = netip.AddrFrom16([16]byte(data[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(data[24:40]))
	data = data[40:]
	if plen != 0 { // 0: jumbogram or GSO, trust the frame
		if plen > len(data) {
			return ErrTruncated
		}
		data = data[:plen]
	}
	for i := 0; ; i++ {
		switch next {
		case 6:
			return p.decodeTCP(data)
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if i >= maxIPv6ExtHeaders {
				return ErrMalformed
			}
			if len(data) < 8 {
				return ErrTruncated
			}
			n := (int(data[1]) + 1) * 8
			if n > len(data) {
				return ErrTruncated
			}
			next, data = data[0], data[n:]
		case 51: // AH
			if i >= maxIPv6ExtHeaders {
				return ErrMalformed
			}
			if len(data) < 8 {
				return ErrTruncated
			}
			n := (int(data[1]) + 2) * 4
			if n > len(data) {
				return ErrTruncated
			}
			next, data = data[0], data[n:]
		case 44:
			return ErrFragment
		default:
			return ErrNotTCP
		}
	}
}

func (p *Packet) decodeTCP(data []byte) error {
	if len(data) < 20 {
		return ErrTruncated
	}
	off := int(data[12]>>4) * 4
	if off < 20 {
		return ErrMalformed
	}
	if off > len(data) {
		return ErrTruncated
	}
	p.SrcPort = binary.BigEndian.Uint16(data[0:2])
	p.DstPort = binary.BigEndian.Uint16(data[2:4])
	p.Seq = binary.BigEndian.Uint32(data[4:8])
	p.Ack = binary.BigEndian.Uint32(data[8:12])
	p.Flags = data[13]
	p.Window = binary.BigEndian.Uint16(data[14:16])
	p.Payload = data[off:]
	p.parseOptions(data[20:off])
	return nil
}

// parseOptions reads the options it knows and stops at the first one that
// does not fit: a segment the kernel accepted is still worth measuring even
// when a middlebox mangled an option we do not need.
func (p *Packet) parseOptions(o []byte) {
	for len(o) > 0 {
		kind := o[0]
		if kind == optEOL {
			return
		}
		if kind == optNOP {
			o = o[1:]
			continue
		}
		if len(o) < 2 {
			return
		}
		n := int(o[1])
		if n < 2 || n > len(o) {
			return
		}
		switch kind {
		case optTS:
			if n == 10 {
				p.HasTS = true
				p.TSval = binary.BigEndian.Uint32(o[2:6])
				p.TSecr = binary.BigEndian.Uint32(o[6:10])
			}
		case optMD5:
			if n == 18 {
				p.HasMD5 = true
			}
		case optAO:
			if n >= 4 {
				p.HasAO = true
				p.AOKeyID = o[2]
				p.AORNextKeyID = o[3]
			}
		}
		o = o[n:]
	}
}
