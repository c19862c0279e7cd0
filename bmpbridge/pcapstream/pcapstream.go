// Package pcapstream reads a capture file (classic pcap or pcapng, through
// internal/pcapfile, the reader the probe's --pcap uses too) and
// reassembles the payload of each TCP flow in sequence order, so a captured
// BMP session can be decoded offline. Pure Go, no libpcap.
package pcapstream

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"

	"github.com/meshd/meshd/internal/pcapfile"
)

// Flow is one direction of a TCP connection and its reassembled bytes.
type Flow struct {
	Src, Dst netip.AddrPort
	Data     []byte
	Gaps     int // holes left where segments were never captured
	next     uint32
	started  bool
	pending  map[uint32][]byte
}

func (f *Flow) String() string { return f.Src.String() + ">" + f.Dst.String() }

type flowKey struct{ src, dst netip.AddrPort }

// ErrNotPcap says the input is neither a classic pcap nor a pcapng file.
var ErrNotPcap = errors.New("not a pcap or pcapng file")

// Format names the capture format b starts with: "pcap", "pcapng", or ""
// for neither.
func Format(b []byte) string { return pcapfile.Format(b) }

// IsPcap reports whether b starts like a capture file Read can read
// (classic pcap or pcapng).
func IsPcap(b []byte) bool { return Format(b) != "" }

// Read reads a pcap or pcapng file and returns its TCP flows with payload,
// in the order they first carried data.
func Read(r io.Reader) ([]*Flow, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("capture header: %w", err)
	}
	if !IsPcap(magic) {
		return nil, ErrNotPcap
	}
	pr, err := pcapfile.NewReader(br)
	if err != nil {
		return nil, err
	}
	flows := map[flowKey]*Flow{}
	var order []*Flow
	for {
		pkt, err := pr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			for _, f := range order {
				f.drain(true)
			}
			return order, err
		}
		link, buf := pkt.Link, pkt.Data
		ip, ok := network(link, buf)
		if !ok {
			continue
		}
		src, dst, seq, flags, payload, ok := tcp(ip)
		if !ok {
			continue
		}
		k := flowKey{src, dst}
		f := flows[k]
		if f == nil {
			f = &Flow{Src: src, Dst: dst, pending: map[uint32][]byte{}}
			flows[k] = f
		}
		if flags&0x02 != 0 { // SYN: data (if any, as with TCP Fast Open) starts after it
			if !f.started || len(f.Data) == 0 {
				f.next, f.started = seq+1, true
			}
			seq++
		}
		if len(payload) == 0 {
			continue
		}
		if !f.started {
			f.next, f.started = seq, true
		}
		if len(f.Data) == 0 && len(f.pending) == 0 {
			order = append(order, f)
		}
		f.add(seq, append([]byte(nil), payload...))
	}
	for _, f := range order {
		f.drain(true)
	}
	return order, nil
}

// add places a segment, trimming what was already received (retransmits)
// and keeping early segments until the gap before them fills.
func (f *Flow) add(seq uint32, p []byte) {
	if d := int32(f.next - seq); d > 0 {
		if int(d) >= len(p) {
			return
		}
		p, seq = p[d:], f.next
	}
	if old, ok := f.pending[seq]; !ok || len(old) < len(p) {
		f.pending[seq] = p
	}
	f.drain(false)
}

func (f *Flow) drain(final bool) {
	for {
		if p, ok := f.pending[f.next]; ok {
			delete(f.pending, f.next)
			f.Data = append(f.Data, p...)
			f.next += uint32(len(p))
			// Later segments may now overlap what was appended.
			for s, q := range f.pending {
				if d := int32(f.next - s); d > 0 {
					delete(f.pending, s)
					if int(d) < len(q) {
						f.pending[f.next] = q[d:]
					}
				}
			}
			continue
		}
		if !final || len(f.pending) == 0 {
			return
		}
		// At the end, skip a hole that was never captured.
		seqs := make([]uint32, 0, len(f.pending))
		for s := range f.pending {
			seqs = append(seqs, s)
		}
		sort.Slice(seqs, func(i, j int) bool { return int32(seqs[i]-f.next) < int32(seqs[j]-f.next) })
		f.next = seqs[0]
		f.Gaps++
	}
}

// maxVLANTags bounds the stacked VLAN tags followed in a frame.
const maxVLANTags = 4

// network strips the link layer and returns the IP packet.
func network(link uint32, b []byte) ([]byte, bool) {
	switch link {
	case 1: // Ethernet
		if len(b) < 14 {
			return nil, false
		}
		et, off := binary.BigEndian.Uint16(b[12:]), 14
		// 802.1Q, 802.1ad and the older QinQ TPID, at most maxVLANTags
		// deep (as the probe's decoder, probe/packet, takes them).
		for tags := 0; et == 0x8100 || et == 0x88a8 || et == 0x9100; tags++ {
			if len(b) < off+4 || tags == maxVLANTags {
				return nil, false
			}
			et, off = binary.BigEndian.Uint16(b[off+2:]), off+4
		}
		return b[off:], et == 0x0800 || et == 0x86dd
	case 113: // Linux cooked v1
		if len(b) < 16 {
			return nil, false
		}
		et := binary.BigEndian.Uint16(b[14:])
		return b[16:], et == 0x0800 || et == 0x86dd
	case 276: // Linux cooked v2
		if len(b) < 20 {
			return nil, false
		}
		et := binary.BigEndian.Uint16(b[0:])
		return b[20:], et == 0x0800 || et == 0x86dd
	case 0, 108: // BSD loopback
		if len(b) < 4 {
			return nil, false
		}
		return b[4:], true
	case 101, 12, 14: // raw IP
		return b, true
	}
	return nil, false
}

// tcp parses an IPv4 or IPv6 packet carrying TCP.
func tcp(ip []byte) (src, dst netip.AddrPort, seq uint32, flags uint8, payload []byte, ok bool) {
	if len(ip) < 1 {
		return
	}
	var sa, da netip.Addr
	var t []byte
	switch ip[0] >> 4 {
	case 4:
		if len(ip) < 20 {
			return
		}
		ihl := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if ip[9] != 6 || ihl < 20 || total < ihl || len(ip) < ihl {
			return
		}
		if total > len(ip) {
			total = len(ip)
		}
		if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
			return // fragments are not reassembled
		}
		sa, da = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
		t = ip[ihl:total]
	case 6:
		if len(ip) < 40 {
			return
		}
		plen := int(binary.BigEndian.Uint16(ip[4:]))
		next, off := ip[6], 40
		// Skip extension headers (hop-by-hop, routing, destination).
		for next == 0 || next == 43 || next == 60 {
			if len(ip) < off+8 {
				return
			}
			next, off = ip[off], off+8*(int(ip[off+1])+1)
		}
		if next != 6 || len(ip) < off {
			return
		}
		end := 40 + plen
		if end > len(ip) {
			end = len(ip)
		}
		if off > end {
			return
		}
		sa, da = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
		t = ip[off:end]
	default:
		return
	}
	if len(t) < 20 {
		return
	}
	doff := int(t[12]>>4) * 4
	if doff < 20 || len(t) < doff {
		return
	}
	src = netip.AddrPortFrom(sa, binary.BigEndian.Uint16(t[0:]))
	dst = netip.AddrPortFrom(da, binary.BigEndian.Uint16(t[2:]))
	return src, dst, binary.BigEndian.Uint32(t[4:]), t[13], t[doff:], true
}
