package pcapstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// pcapng block types (the pcapng specification, IETF draft-ietf-opsawg-pcapng).
const (
	ngSectionHeader    = 0x0a0d0d0a
	ngInterface        = 1
	ngObsoletePacket   = 2
	ngSimplePacket     = 3
	ngEnhancedPacket   = 6
	ngByteOrderMagic   = 0x1a2b3c4d
	ngMinBlock         = 12 // type, length, trailing length
	ngSectionHeaderLen = 28 // with an empty option list
)

// pcapngPackets reads a pcapng file after its first block type. Each
// section (a new Section Header Block) sets the byte order and starts a
// new list of interfaces; packets are taken from Enhanced, Simple and
// obsolete Packet Blocks, other blocks are skipped.
func pcapngPackets(magic [4]byte, r io.Reader) (packets, error) {
	var bo binary.ByteOrder
	var links []uint32 // link type by interface ID, in this section
	var snap0 uint32   // interface 0's snap length, for Simple Packet Blocks
	var hdr [8]byte
	body := make([]byte, 0, 65536)
	first := true
	// block reads the next block's type and body (without the trailing
	// length), and handles section and interface blocks itself.
	block := func() (uint32, []byte, error) {
		if first {
			copy(hdr[:4], magic[:])
			if err := readRest(r, hdr[4:]); err != nil {
				return 0, nil, fmt.Errorf("pcapng section header: %w", err)
			}
			first = false
		} else if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return 0, nil, io.EOF
			}
			return 0, nil, fmt.Errorf("pcapng block header: %w", err)
		}
		typ := binary.LittleEndian.Uint32(hdr[:])
		if typ == ngSectionHeader {
			// The byte order is the section's: read it from the magic
			// that follows the length.
			var bom [4]byte
			if err := readRest(r, bom[:]); err != nil {
				return 0, nil, fmt.Errorf("pcapng section header: %w", err)
			}
			switch binary.LittleEndian.Uint32(bom[:]) {
			case ngByteOrderMagic:
				bo = binary.LittleEndian
			case 0x4d3c2b1a:
				bo = binary.BigEndian
			default:
				return 0, nil, fmt.Errorf("pcapng section header: byte-order magic %x", bom)
			}
			n := bo.Uint32(hdr[4:])
			if n < ngSectionHeaderLen || n%4 != 0 || n > maxRecord {
				return 0, nil, fmt.Errorf("pcapng section header of %d bytes", n)
			}
			if _, err := io.CopyN(io.Discard, r, int64(n)-12); err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return 0, nil, fmt.Errorf("pcapng section header: %w", err)
			}
			links, snap0 = links[:0], 0
			return typ, nil, nil
		}
		if bo == nil {
			return 0, nil, errors.New("pcapng: no section header")
		}
		typ = bo.Uint32(hdr[:])
		n := bo.Uint32(hdr[4:])
		if n < ngMinBlock || n%4 != 0 || n > maxRecord {
			return 0, nil, fmt.Errorf("pcapng block type %d of %d bytes", typ, n)
		}
		body = body[:n-8]
		if err := readRest(r, body); err != nil {
			return 0, nil, fmt.Errorf("pcapng block type %d: %w", typ, err)
		}
		if bo.Uint32(body[len(body)-4:]) != n {
			return 0, nil, fmt.Errorf("pcapng block type %d: trailing length %d, want %d", typ, bo.Uint32(body[len(body)-4:]), n)
		}
		body = body[:len(body)-4]
		if typ == ngInterface {
			if len(body) < 8 {
				return 0, nil, errors.New("pcapng interface block too short")
			}
			if len(links) == 0 {
				snap0 = bo.Uint32(body[4:])
			}
			links = append(links, uint32(bo.Uint16(body)))
		}
		return typ, body, nil
	}
	link := func(id uint32) (uint32, error) {
		if int(id) >= len(links) {
			return 0, fmt.Errorf("pcapng packet on interface %d of %d", id, len(links))
		}
		return links[id], nil
	}
	return func() (uint32, []byte, error) {
		for {
			typ, b, err := block()
			if err != nil {
				return 0, nil, err
			}
			switch typ {
			case ngEnhancedPacket, ngObsoletePacket:
				// The two differ only in the interface ID's width (32 bits,
				// or 16 followed by a drops count).
				if len(b) < 20 {
					return 0, nil, errors.New("pcapng packet block too short")
				}
				id := bo.Uint32(b)
				if typ == ngObsoletePacket {
					id = uint32(bo.Uint16(b))
				}
				l, err := link(id)
				if err != nil {
					return 0, nil, err
				}
				n := bo.Uint32(b[12:])
				if int64(n) > int64(len(b)-20) {
					return 0, nil, fmt.Errorf("pcapng packet of %d bytes in a block of %d", n, len(b))
				}
				return l, b[20 : 20+n], nil
			case ngSimplePacket:
				if len(b) < 4 {
					return 0, nil, errors.New("pcapng simple packet block too short")
				}
				l, err := link(0)
				if err != nil {
					return 0, nil, err
				}
				n := bo.Uint32(b)
				if snap0 != 0 && n > snap0 {
					n = snap0
				}
				if int64(n) > int64(len(b)-4) {
					n = uint32(len(b) - 4)
				}
				return l, b[4 : 4+n], nil
			}
		}
	}, nil
}
