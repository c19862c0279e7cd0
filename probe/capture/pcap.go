package capture

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/meshd/meshd/internal/pcapfile"
	"github.com/meshd/meshd/probe/packet"
)

// maxFrame bounds a live frame's buffer; 256 KiB covers GSO/GRO
// super-frames.
const maxFrame = 256 << 10

// File magic numbers and pcapng block types, for the writers.
const (
	pcapMagicMicro = 0xa1b2c3d4
	pcapMagicNano  = 0xa1b23c4d
	pcapngSHB      = 0x0a0d0d0a
	pcapngBOM      = 0x1a2b3c4d
	ngIDB          = 0x00000001
	ngEPB          = 0x00000006
)

// ErrFormat is wrapped by every error about a malformed capture file.
var ErrFormat = pcapfile.ErrFormat

// FileReader reads classic pcap and pcapng files (internal/pcapfile, the
// reader `meshd bmp decode` uses too).
type FileReader struct {
	r *pcapfile.Reader
	c io.Closer
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
	pr, err := pcapfile.NewReader(r)
	if err != nil {
		return nil, err
	}
	return &FileReader{r: pr}, nil
}

// LinkType is the link type of a classic pcap file (pcapng files have one
// per interface and report it per frame).
func (r *FileReader) LinkType() packet.LinkType { return packet.LinkType(r.r.LinkType()) }

// Close closes the underlying file when OpenFile opened it.
func (r *FileReader) Close() error {
	if r.c != nil {
		return r.c.Close()
	}
	return nil
}

// Next returns the next frame, or io.EOF.
func (r *FileReader) Next() (Frame, error) {
	p, err := r.r.Next()
	if err != nil {
		return Frame{}, err
	}
	return Frame{Data: p.Data, Time: p.Time, Link: packet.LinkType(p.Link), PktType: packet.PktUnknown,
		Ifindex: p.Iface, OrigLen: p.OrigLen}, nil
}

// The writers make the captures of tests and benchmarks. They are meshd's
// own because pcapgo v1.1.19's take gopacket's 8-bit link type, and the
// probe reads LINKTYPE_LINUX_SLL2 (276).

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
