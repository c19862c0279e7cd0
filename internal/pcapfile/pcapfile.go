// Package pcapfile reads capture files, classic pcap (micro- or
// nanosecond, either byte order) and pcapng alike: the one reader behind
// the probe's --pcap (probe/capture) and `meshd bmp decode`
// (bmpbridge/pcapstream). The reading is gopacket's pcapgo (pure Go, no
// libpcap).
//
// A capture file may be hostile. pcapgo v1.1.19 allocates what a pcapng
// packet block claims before it reads it, and reads a pcapng file cut
// short as if it ended cleanly; so a pcapng stream passes through a guard
// that checks each block's framing (its length, and a packet's captured
// length against its block and MaxFrame) before pcapgo sees it, and
// reports a block cut short as one. Classic pcap records are bounded by
// MaxFrame through the reader's snap length.
//
// pcapgo v1.1.19 also holds a link type in gopacket's 8-bit
// layers.LinkType, which turns LINKTYPE_LINUX_SLL2 (276, what `tcpdump -i
// any` writes) into 20; so the link type is read here, from the pcap file
// header and from each pcapng interface block as the guard passes it.
package pcapfile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/google/gopacket"
	"github.com/google/gopacket/pcapgo"
)

// MaxFrame bounds one captured frame: 1 MiB covers GSO/GRO super-frames;
// a larger record is corrupt.
const MaxFrame = 1 << 20

// maxBlock bounds a pcapng block: a frame plus its block's header and
// options.
const maxBlock = MaxFrame + 64<<10

// ErrFormat is wrapped by every error about a malformed capture file.
var ErrFormat = errors.New("bad capture file")

// File magic numbers, as the first four bytes read little-endian.
const (
	magicMicro    = 0xa1b2c3d4
	magicMicroBE  = 0xd4c3b2a1
	magicNano     = 0xa1b23c4d
	magicNanoBE   = 0x4d3cb2a1
	ngSHB         = 0x0a0d0d0a // a palindrome: the same in either byte order
	ngBOM         = 0x1a2b3c4d
	ngIDB         = 1
	ngPB          = 2 // obsolete packet block
	ngSPB         = 3
	ngEPB         = 6
	ngSHBFixedLen = 28
)

// Format names the capture format b starts with: "pcap", "pcapng", or ""
// for neither.
func Format(b []byte) string {
	if len(b) < 4 {
		return ""
	}
	switch binary.LittleEndian.Uint32(b) {
	case magicMicro, magicMicroBE, magicNano, magicNanoBE:
		return "pcap"
	case ngSHB:
		return "pcapng"
	}
	return ""
}

// Packet is one captured frame. Data is only valid until the next call to
// Next.
type Packet struct {
	Data    []byte
	Time    int64  // capture time, Unix nanoseconds; 0 when the file has none (pcapng simple packet block)
	Link    uint32 // LINKTYPE_ of the frame's interface
	Iface   int    // pcapng interface ID; 0 in classic pcap
	OrigLen int    // length on the wire; larger than len(Data) if truncated
}

// Reader reads the packets of one capture file.
type Reader struct {
	err   error // sticky, after pcapgo panicked
	pcap  *pcapgo.Reader
	ng    *pcapgo.NgReader
	guard *ngGuard
	link  uint32 // classic pcap
}

// NewReader reads a capture from r, telling the format from its first
// bytes.
func NewReader(r io.Reader) (rd *Reader, err error) {
	defer func() {
		if v := recover(); v != nil { // see Next
			rd, err = nil, fmt.Errorf("%w: pcapgo: %v", ErrFormat, v)
		}
	}()
	return newReader(r)
}

func newReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("%w: reading magic: %w", ErrFormat, err)
	}
	switch Format(magic) {
	case "pcap":
		var link uint32
		if h, err := br.Peek(24); err == nil {
			bo := binary.ByteOrder(binary.LittleEndian)
			if m := binary.LittleEndian.Uint32(h); m == magicMicroBE || m == magicNanoBE {
				bo = binary.BigEndian
			}
			// The low 16 bits; the upper ones carry FCS flags.
			link = bo.Uint32(h[20:24]) & 0xffff
		}
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: pcap header: %w", ErrFormat, err)
		}
		// Tools (tcpdump, Wireshark) read records longer than the file's
		// snap length; so does meshd, up to MaxFrame.
		pr.SetSnaplen(MaxFrame)
		return &Reader{pcap: pr, link: link}, nil
	case "pcapng":
		g := &ngGuard{r: br}
		nr, err := pcapgo.NewNgReader(g, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return nil, fmt.Errorf("%w: pcapng section header: %w", ErrFormat, err)
		}
		return &Reader{ng: nr, guard: g}, nil
	}
	return nil, fmt.Errorf("%w: unknown magic %x", ErrFormat, magic)
}

// LinkType is a classic pcap file's link type (a pcapng file has one per
// interface, given per packet).
func (r *Reader) LinkType() uint32 {
	return r.link
}

// Next returns the next packet, or io.EOF at the end of the file.
func (r *Reader) Next() (p Packet, err error) {
	if r.err != nil {
		return Packet{}, r.err
	}
	// pcapgo v1.1.19 panics on some hostile input (an interface's time
	// resolution of 10^-65 s divides by zero): a bad file, not a crash.
	// The reader's state is then unknown, so it stays failed.
	defer func() {
		if v := recover(); v != nil {
			r.err = fmt.Errorf("%w: pcapgo: %v", ErrFormat, v)
			p, err = Packet{}, r.err
		}
	}()
	return r.next()
}

func (r *Reader) next() (Packet, error) {
	var data []byte
	var ci gopacket.CaptureInfo
	var err error
	var link uint32
	if r.pcap != nil {
		data, ci, err = r.pcap.ZeroCopyReadPacketData()
		link = r.link
		if err == io.EOF && ci.CaptureLength > 0 {
			err = io.ErrUnexpectedEOF // the record's header was there, its data not
		}
	} else {
		data, ci, err = r.ng.ZeroCopyReadPacketData()
		if err == nil {
			// pcapgo has checked the interface exists; so has the guard
			// seen its block.
			link = r.guard.links[ci.InterfaceIndex]
		}
	}
	if err == io.EOF {
		return Packet{}, io.EOF
	}
	if err != nil {
		if errors.Is(err, ErrFormat) {
			return Packet{}, err
		}
		return Packet{}, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	p := Packet{Data: data, Link: link, Iface: ci.InterfaceIndex, OrigLen: ci.Length}
	if !ci.Timestamp.IsZero() {
		p.Time = ci.Timestamp.UnixNano()
	}
	return p, nil
}

// ngGuard passes a pcapng stream to pcapgo block by block, checking each
// block's head first (see the package doc).
type ngGuard struct {
	r    io.Reader
	bo   binary.ByteOrder
	head [28]byte
	pend []byte // the checked head, still to be passed on
	left int64  // bytes of the current block after its head
	err  error
	// links holds the link type of each interface of the section, by
	// interface ID, from the interface blocks passed on.
	links []uint32
	typ   uint32 // the current block's type and length
	total uint32
	tail  [4]byte // its trailing length, as it passes
}

func (g *ngGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if len(g.pend) == 0 && g.left == 0 {
		if err := g.nextBlock(); err != nil {
			g.err = err
			return 0, err
		}
	}
	if len(g.pend) > 0 {
		n := copy(p, g.pend)
		g.pend = g.pend[n:]
		return n, nil
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n, err := g.r.Read(p)
	// Keep what of the trailing length passed in this read.
	for i := range p[:n] {
		if k := 4 - (g.left - int64(i)); k >= 0 && k < 4 {
			g.tail[k] = p[i]
		}
	}
	g.left -= int64(n)
	if g.left == 0 && g.bo.Uint32(g.tail[:]) != g.total {
		// pcapgo skips the trailing length unread.
		err = fmt.Errorf("%w: pcapng block type %d: trailing length %d, want %d", ErrFormat, g.typ, g.bo.Uint32(g.tail[:]), g.total)
	}
	if err == io.EOF && g.left > 0 {
		err = fmt.Errorf("pcapng block type %d: %w", g.typ, io.ErrUnexpectedEOF)
	}
	if err != nil {
		g.err = err
	}
	return n, err
}

// read fills b; an end of input after the block started is a block cut
// short.
func (g *ngGuard) read(b []byte, started bool) error {
	n, err := io.ReadFull(g.r, b)
	if err == io.EOF && (started || n > 0) || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("pcapng block type %d: %w", g.typ, io.ErrUnexpectedEOF)
	}
	return err
}

// nextBlock reads and checks the head of the next block.
func (g *ngGuard) nextBlock() error {
	h := g.head[:]
	n, err := io.ReadFull(g.r, h[:8])
	if n >= 4 {
		g.typ = binary.LittleEndian.Uint32(h[0:4])
		if g.bo != nil {
			g.typ = g.bo.Uint32(h[0:4])
		}
	}
	if err == io.ErrUnexpectedEOF {
		return fmt.Errorf("pcapng block type %d: %w", g.typ, err)
	}
	if err != nil {
		return err // io.EOF: the file ends between blocks
	}
	typ := binary.LittleEndian.Uint32(h[0:4])
	n = 8
	if typ == ngSHB {
		if err := g.read(h[8:12], true); err != nil {
			return err
		}
		switch {
		case binary.LittleEndian.Uint32(h[8:12]) == ngBOM:
			g.bo = binary.LittleEndian
		case binary.BigEndian.Uint32(h[8:12]) == ngBOM:
			g.bo = binary.BigEndian
		default:
			return fmt.Errorf("%w: section header: bad byte-order magic", ErrFormat)
		}
		n = 12
		g.links = g.links[:0]
	}
	if g.bo == nil {
		return fmt.Errorf("%w: pcapng block before a section header", ErrFormat)
	}
	typ = g.bo.Uint32(h[0:4])
	total := g.bo.Uint32(h[4:8])
	g.typ, g.total = typ, total
	if total < 12 || total%4 != 0 || total > maxBlock || (typ == ngSHB && total < ngSHBFixedLen) {
		return fmt.Errorf("%w: pcapng block type %d of length %d", ErrFormat, typ, total)
	}
	switch typ {
	case ngEPB, ngPB:
		// interface, timestamp (8), captured length, original length
		if total < 32 {
			return fmt.Errorf("%w: pcapng packet block of length %d", ErrFormat, total)
		}
		if err := g.read(h[8:28], true); err != nil {
			return err
		}
		n = 28
		id := g.bo.Uint32(h[8:12])
		if typ == ngPB {
			id = uint32(g.bo.Uint16(h[8:10]))
		}
		if id >= uint32(len(g.links)) {
			return fmt.Errorf("%w: pcapng packet on interface %d of %d", ErrFormat, id, len(g.links))
		}
		if caplen := g.bo.Uint32(h[20:24]); caplen > total-32 || caplen > MaxFrame {
			return fmt.Errorf("%w: pcapng packet of %d bytes in a block of %d", ErrFormat, caplen, total)
		}
	case ngSPB:
		if len(g.links) == 0 {
			return fmt.Errorf("%w: pcapng simple packet block before an interface", ErrFormat)
		}
		if total < 16 {
			return fmt.Errorf("%w: pcapng simple packet block of length %d", ErrFormat, total)
		}
		if err := g.read(h[8:12], true); err != nil {
			return err
		}
		n = 12
		if orig := g.bo.Uint32(h[8:12]); orig > total-16 {
			// pcapgo would read past the block: the packet's length is
			// the block's only when the interface's snap length says so.
			return fmt.Errorf("%w: pcapng simple packet of %d bytes in a block of %d", ErrFormat, orig, total)
		}
	case ngIDB:
		if total < 20 {
			return fmt.Errorf("%w: pcapng interface block of length %d", ErrFormat, total)
		}
		if err := g.read(h[8:16], true); err != nil {
			return err
		}
		n = 16
		g.links = append(g.links, uint32(g.bo.Uint16(h[8:10])))
		// pcapgo sizes its frame buffer by the snap length: hold it to
		// MaxFrame (0, "no limit", too).
		if snap := g.bo.Uint32(h[12:16]); snap == 0 || snap > MaxFrame {
			g.bo.PutUint32(h[12:16], MaxFrame)
		}
	}
	g.pend = h[:n]
	g.left = int64(total) - int64(n)
	return nil
}
