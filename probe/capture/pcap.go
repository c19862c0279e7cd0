package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/meshd/meshd/probe/packet"
)

// File magic numbers.
const (
	pcapMagicMicro = 0xa1b2c3d4
	pcapMagicNano  = 0xa1b23c4d
	pcapngSHB      = 0x0a0d0d0a
	pcapngBOM      = 0x1a2b3c4d
)

// pcapng block types.
const (
	ngIDB = 0x00000001 // interface description
	ngSPB = 0x00000003 // simple packet
	ngEPB = 0x00000006 // enhanced packet
)

// maxFrame bounds the buffer a (possibly hostile) file can make us
// allocate; 256 KiB covers GSO/GRO super-frames.
const maxFrame = 256 << 10

// maxBlock bounds a pcapng block, for the same reason.
const maxBlock = maxFrame + 4096

// ErrFormat is wrapped by every error about a malformed capture file.
var ErrFormat = errors.New("capture: bad capture file")

// FileReader reads classic pcap (micro- or nanosecond, either byte order)
// and pcapng files.
type FileReader struct {
	r      *bufio.Reader
	c      io.Closer
	ng     bool
	bo     binary.ByteOrder
	link   packet.LinkType // classic pcap
	nano   bool            // classic pcap
	ifaces []ngIface       // pcapng
	buf    []byte
	hdr    [28]byte
}

type ngIface struct {
	link packet.LinkType
	// tsUnit is the length of one timestamp tick in nanoseconds when the
	// resolution is a power of ten down to 1 ns; tsDiv handles finer
	// resolutions by division.
	tsUnit int64
	tsDiv  int64
}

// OpenFile opens a capture file.
func OpenFile(path string) (*FileReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := NewFileReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.c = f
	return r, nil
}

// NewFileReader reads a capture from r; it detects the format from the
// first bytes.
func NewFileReader(r io.Reader) (*FileReader, error) {
	fr := &FileReader{r: bufio.NewReaderSize(r, 64<<10), buf: make([]byte, 0, 2048)}
	magic, err := fr.r.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("%w: reading magic: %v", ErrFormat, err)
	}
	if binary.LittleEndian.Uint32(magic) == pcapngSHB {
		fr.ng = true
		if err := fr.readSHB(); err != nil {
			return nil, err
		}
		return fr, nil
	}
	var gh [24]byte
	if _, err := io.ReadFull(fr.r, gh[:]); err != nil {
		return nil, fmt.Errorf("%w: pcap header: %v", ErrFormat, err)
	}
	switch {
	case binary.LittleEndian.Uint32(gh[0:4]) == pcapMagicMicro:
		fr.bo = binary.LittleEndian
	case binary.BigEndian.Uint32(gh[0:4]) == pcapMagicMicro:
		fr.bo = binary.BigEndian
	case binary.LittleEndian.Uint32(gh[0:4]) == pcapMagicNano:
		fr.bo, fr.nano = binary.LittleEndian, true
	case binary.BigEndian.Uint32(gh[0:4]) == pcapMagicNano:
		fr.bo, fr.nano = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("%w: unknown magic %x", ErrFormat, gh[0:4])
	}
	// The low 16 bits are the link type; the upper bits carry FCS flags.
	fr.link = packet.LinkType(fr.bo.Uint32(gh[20:24]) & 0xffff)
	return fr, nil
}

// LinkType is the link type of a classic pcap file (pcapng files have one
// per interface and report it per frame).
func (r *FileReader) LinkType() packet.LinkType { return r.link }

// Close closes the underlying file when OpenFile opened it.
func (r *FileReader) Close() error {
	if r.c != nil {
		return r.c.Close()
	}
	return nil
}

// Next returns the next frame, or io.EOF.
func (r *FileReader) Next() (Frame, error) {
	if r.ng {
		return r.nextNG()
	}
	h := r.hdr[:16]
	if _, err := io.ReadFull(r.r, h); err != nil {
		if err == io.ErrUnexpectedEOF {
			return Frame{}, fmt.Errorf("%w: truncated record header", ErrFormat)
		}
		return Frame{}, err
	}
	sec, frac := int64(r.bo.Uint32(h[0:4])), int64(r.bo.Uint32(h[4:8]))
	incl, orig := r.bo.Uint32(h[8:12]), r.bo.Uint32(h[12:16])
	if incl > maxFrame {
		return Frame{}, fmt.Errorf("%w: record of %d bytes", ErrFormat, incl)
	}
	data, err := r.read(int(incl))
	if err != nil {
		return Frame{}, err
	}
	if !r.nano {
		frac *= 1000
	}
	return Frame{Data: data, Time: sec*1e9 + frac, Link: r.link, PktType: packet.PktUnknown, OrigLen: int(orig)}, nil
}

func (r *FileReader) read(n int) ([]byte, error) {
	if cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	b := r.buf[:n]
	if _, err := io.ReadFull(r.r, b); err != nil {
		return nil, fmt.Errorf("%w: truncated record: %v", ErrFormat, err)
	}
	return b, nil
}

func (r *FileReader) readSHB() error {
	h := r.hdr[:12]
	if _, err := io.ReadFull(r.r, h); err != nil {
		return fmt.Errorf("%w: section header: %v", ErrFormat, err)
	}
	switch {
	case binary.LittleEndian.Uint32(h[8:12]) == pcapngBOM:
		r.bo = binary.LittleEndian
	case binary.BigEndian.Uint32(h[8:12]) == pcapngBOM:
		r.bo = binary.BigEndian
	default:
		return fmt.Errorf("%w: bad byte-order magic", ErrFormat)
	}
	total := r.bo.Uint32(h[4:8])
	if total < 28 || total > maxBlock || total%4 != 0 {
		return fmt.Errorf("%w: section header length %d", ErrFormat, total)
	}
	if _, err := r.read(int(total) - 12); err != nil {
		return err
	}
	// A new section starts a new interface list.
	r.ifaces = r.ifaces[:0]
	return nil
}

func (r *FileReader) nextNG() (Frame, error) {
	for {
		h := r.hdr[:8]
		if _, err := io.ReadFull(r.r, h); err != nil {
			if err == io.ErrUnexpectedEOF {
				return Frame{}, fmt.Errorf("%w: truncated block header", ErrFormat)
			}
			return Frame{}, err
		}
		typ := r.bo.Uint32(h[0:4])
		if typ == pcapngSHB {
			// Re-read the SHB with its own byte order: put back what we
			// consumed by handling it inline.
			var rest [4]byte
			if _, err := io.ReadFull(r.r, rest[:]); err != nil {
				return Frame{}, fmt.Errorf("%w: section header: %v", ErrFormat, err)
			}
			switch {
			case binary.LittleEndian.Uint32(rest[:]) == pcapngBOM:
				r.bo = binary.LittleEndian
			case binary.BigEndian.Uint32(rest[:]) == pcapngBOM:
				r.bo = binary.BigEndian
			default:
				return Frame{}, fmt.Errorf("%w: bad byte-order magic", ErrFormat)
			}
			total := r.bo.Uint32(h[4:8])
			if total < 28 || total > maxBlock || total%4 != 0 {
				return Frame{}, fmt.Errorf("%w: section header length %d", ErrFormat, total)
			}
			if _, err := r.read(int(total) - 12); err != nil {
				return Frame{}, err
			}
			r.ifaces = r.ifaces[:0]
			continue
		}
		total := r.bo.Uint32(h[4:8])
		if total < 12 || total > maxBlock || total%4 != 0 {
			return Frame{}, fmt.Errorf("%w: block length %d", ErrFormat, total)
		}
		body, err := r.read(int(total) - 8)
		if err != nil {
			return Frame{}, err
		}
		body = body[:len(body)-4] // trailing length copy
		switch typ {
		case ngIDB:
			if len(body) < 8 {
				return Frame{}, fmt.Errorf("%w: short interface block", ErrFormat)
			}
			ifc := ngIface{link: packet.LinkType(r.bo.Uint16(body[0:2])), tsUnit: 1000}
			r.parseIDBOptions(body[8:], &ifc)
			r.ifaces = append(r.ifaces, ifc)
		case ngEPB:
			if len(body) < 20 {
				return Frame{}, fmt.Errorf("%w: short packet block", ErrFormat)
			}
			id := r.bo.Uint32(body[0:4])
			if int(id) >= len(r.ifaces) {
				return Frame{}, fmt.Errorf("%w: packet for undeclared interface %d", ErrFormat, id)
			}
			ifc := r.ifaces[id]
			ts := int64(r.bo.Uint32(body[4:8]))<<32 | int64(r.bo.Uint32(body[8:12]))
			capLen, orig := r.bo.Uint32(body[12:16]), r.bo.Uint32(body[16:20])
			if int(capLen) > len(body)-20 {
				return Frame{}, fmt.Errorf("%w: packet block overruns", ErrFormat)
			}
			return Frame{Data: body[20 : 20+capLen], Time: ifc.nanos(ts), Link: ifc.link,
				PktType: packet.PktUnknown, Ifindex: int(id), OrigLen: int(orig)}, nil
		case ngSPB:
			// No timestamp: useless for RTT, but counted as a frame.
			if len(r.ifaces) == 0 || len(body) < 4 {
				return Frame{}, fmt.Errorf("%w: simple packet block without interface", ErrFormat)
			}
			orig := int(r.bo.Uint32(body[0:4]))
			data := body[4:]
			if orig < len(data) {
				data = data[:orig]
			}
			return Frame{Data: data, Link: r.ifaces[0].link, PktType: packet.PktUnknown, OrigLen: orig}, nil
		}
		// Other blocks (name resolution, statistics, custom) are skipped.
	}
}

func (r *FileReader) parseIDBOptions(o []byte, ifc *ngIface) {
	for len(o) >= 4 {
		code, n := r.bo.Uint16(o[0:2]), int(r.bo.Uint16(o[2:4]))
		if code == 0 || 4+n > len(o) {
			return
		}
		if code == 9 && n >= 1 { // if_tsresol
			v := o[4]
			var unit, div int64 = 1, 1
			if v&0x80 == 0 {
				// 10^-v seconds per tick.
				exp := int(v & 0x7f)
				unit = 1_000_000_000
				for i := 0; i < exp; i++ {
					if unit > 1 {
						unit /= 10
					} else {
						div *= 10
					}
				}
			} else {
				// 2^-v seconds per tick: convert through division.
				exp := int(v & 0x7f)
				if exp < 63 {
					unit, div = 1_000_000_000, int64(1)<<exp
				}
			}
			ifc.tsUnit, ifc.tsDiv = unit, div
		}
		o = o[4+(n+3)&^3:]
	}
}

func (i ngIface) nanos(ts int64) int64 {
	if i.tsDiv > 1 {
		if i.tsUnit == 1_000_000_000 {
			// Binary fraction: split to avoid overflow.
			sec := ts / i.tsDiv
			rem := ts % i.tsDiv
			return sec*1e9 + rem*1e9/i.tsDiv
		}
		return ts / i.tsDiv
	}
	return ts * i.tsUnit
}

// Writer writes a classic pcap file with nanosecond timestamps.
type Writer struct {
	w   io.Writer
	hdr [16]byte
}

// NewWriter writes the file header and returns a Writer.
func NewWriter(w io.Writer, link packet.LinkType) (*Writer, error) {
	var gh [24]byte
	binary.LittleEndian.PutUint32(gh[0:4], pcapMagicNano)
	binary.LittleEndian.PutUint16(gh[4:6], 2)
	binary.LittleEndian.PutUint16(gh[6:8], 4)
	binary.LittleEndian.PutUint32(gh[16:20], maxFrame)
	binary.LittleEndian.PutUint32(gh[20:24], uint32(link))
	if _, err := w.Write(gh[:]); err != nil {
		return nil, err
	}
	return &Writer{w: w}, nil
}

// WriteFrame writes one frame captured at t.
func (w *Writer) WriteFrame(t time.Time, data []byte) error {
	ns := t.UnixNano()
	binary.LittleEndian.PutUint32(w.hdr[0:4], uint32(ns/1e9))
	binary.LittleEndian.PutUint32(w.hdr[4:8], uint32(ns%1e9))
	binary.LittleEndian.PutUint32(w.hdr[8:12], uint32(len(data)))
	binary.LittleEndian.PutUint32(w.hdr[12:16], uint32(len(data)))
	if _, err := w.w.Write(w.hdr[:]); err != nil {
		return err
	}
	_, err := w.w.Write(data)
	return err
}

// NGWriter writes a pcapng file with one section and one interface per
// link type added, nanosecond timestamps.
type NGWriter struct {
	w      io.Writer
	ifaces map[packet.LinkType]uint32
}

// NewNGWriter writes the section header.
func NewNGWriter(w io.Writer) (*NGWriter, error) {
	var shb [28]byte
	binary.LittleEndian.PutUint32(shb[0:4], pcapngSHB)
	binary.LittleEndian.PutUint32(shb[4:8], 28)
	binary.LittleEndian.PutUint32(shb[8:12], pcapngBOM)
	binary.LittleEndian.PutUint16(shb[12:14], 1)
	binary.LittleEndian.PutUint64(shb[16:24], ^uint64(0)) // section length unknown
	binary.LittleEndian.PutUint32(shb[24:28], 28)
	if _, err := w.Write(shb[:]); err != nil {
		return nil, err
	}
	return &NGWriter{w: w, ifaces: map[packet.LinkType]uint32{}}, nil
}

// WriteFrame writes one frame of the given link type, declaring an
// interface for the link type the first time it is used.
func (w *NGWriter) WriteFrame(t time.Time, link packet.LinkType, data []byte) error {
	id, ok := w.ifaces[link]
	if !ok {
		id = uint32(len(w.ifaces))
		w.ifaces[link] = id
		// IDB with if_tsresol = 9 (nanoseconds) and opt_endofopt.
		var idb [32]byte
		binary.LittleEndian.PutUint32(idb[0:4], ngIDB)
		binary.LittleEndian.PutUint32(idb[4:8], 32)
		binary.LittleEndian.PutUint16(idb[8:10], uint16(link))
		binary.LittleEndian.PutUint32(idb[12:16], maxFrame)
		binary.LittleEndian.PutUint16(idb[16:18], 9)
		binary.LittleEndian.PutUint16(idb[18:20], 1)
		idb[20] = 9
		binary.LittleEndian.PutUint32(idb[28:32], 32)
		if _, err := w.w.Write(idb[:]); err != nil {
			return err
		}
	}
	pad := (4 - len(data)%4) % 4
	total := 32 + len(data) + pad
	var h [28]byte
	binary.LittleEndian.PutUint32(h[0:4], ngEPB)
	binary.LittleEndian.PutUint32(h[4:8], uint32(total))
	binary.LittleEndian.PutUint32(h[8:12], id)
	ns := uint64(t.UnixNano())
	binary.LittleEndian.PutUint32(h[12:16], uint32(ns>>32))
	binary.LittleEndian.PutUint32(h[16:20], uint32(ns))
	binary.LittleEndian.PutUint32(h[20:24], uint32(len(data)))
	binary.LittleEndian.PutUint32(h[24:28], uint32(len(data)))
	var tail [8]byte
	binary.LittleEndian.PutUint32(tail[pad:pad+4], uint32(total))
	for _, b := range [][]byte{h[:], data, tail[:pad+4]} {
		if _, err := w.w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
