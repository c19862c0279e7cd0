// Package capture delivers frames to the keepalive probe: live from an
// AF_PACKET socket with a kernel BPF filter (optionally inside a named
// network namespace), or from a classic pcap or pcapng file.
package capture

import (
	"errors"

	"github.com/meshd/meshd/probe/packet"
)

// Frame is one captured frame. Data is only valid until the next call to
// Next on the same source.
type Frame struct {
	Data []byte
	Time int64 // capture time, Unix nanoseconds
	Link packet.LinkType
	// EtherType is set, and Link is LinkEtherType, when the frame starts at
	// the network header and the protocol came out of band (AF_PACKET
	// SOCK_DGRAM).
	EtherType uint16
	PktType   uint8 // Linux packet type, packet.PktUnknown from files
	Ifindex   int
	OrigLen   int // length on the wire; larger than len(Data) if truncated
}

// LinkEtherType marks frames that start at the network header, with the
// protocol in Frame.EtherType. It is no pcap link type.
const LinkEtherType packet.LinkType = 0xffff_0000

// Decode decodes the frame into p.
func (f *Frame) Decode(p *packet.Packet) error {
	if f.Link == LinkEtherType {
		return packet.DecodeEther(f.EtherType, f.PktType, f.Data, p)
	}
	return packet.Decode(f.Link, f.Data, p)
}

// Source yields frames. Next returns ErrTimeout when nothing arrived for a
// while (live sources) so the caller can run its timers, and io.EOF at the
// end of a file.
type Source interface {
	Next() (Frame, error)
	Close() error
}

// ErrTimeout is returned by a live source's Next when no frame arrived
// within its poll interval.
var ErrTimeout = errors.New("capture: no frame within poll interval")
