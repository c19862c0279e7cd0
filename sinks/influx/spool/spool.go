// Package spool is a bounded, crash-safe on-disk queue of line-protocol
// records (a write-ahead log in segment files) that a writer reads in
// order and acknowledges once InfluxDB has taken them.
//
// Durability: every Append is one write(2) into the page cache, which
// survives the death of the process (kill -9 included); fsync runs every
// SyncInterval and at segment rotation and Close, so a host crash or power
// loss costs at most SyncInterval of points. Calling fsync per record
// would cap throughput at the disk's flush rate for no gain against the
// failure the spool is mainly for (meshd or InfluxDB going away).
// Replay after a crash starts at the last acknowledged record; the ack
// cursor is itself only as durable as the last fsync, so a replay may
// resend records InfluxDB already has, which is harmless because every
// point carries its own timestamp (InfluxDB overwrites, never duplicates).
package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Policy says what Append does when the spool is full.
type Policy int

// Policies.
const (
	// Block makes Append wait until the writer frees space.
	Block Policy = iota
	// DropOldest deletes the oldest segment, counting its points as lost.
	DropOldest
)

// ErrFull is returned by Append when a record can never fit.
var ErrFull = errors.New("spool: record larger than the spool")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("spool: closed")

// Options configure a spool.
type Options struct {
	Dir          string
	MaxBytes     int64         // bound on all segment files together
	SegmentBytes int64         // rotate after this; default MaxBytes/8, at most 64 MiB
	Policy       Policy        // when full
	SyncInterval time.Duration // fsync period; 0 syncs every Append
	Logger       *slog.Logger
}

// Pos is a record boundary: a segment and a byte offset in it.
type Pos struct {
	Seg uint64
	Off int64
}

// Batch is what Read returns: whole records, concatenated.
type Batch struct {
	Data    []byte
	Points  int
	Records int
	End     Pos // acknowledge with this

	endInSeg int64 // points of End.Seg before End.Off
}

// Stats is a snapshot of the spool's counters.
type Stats struct {
	Points        int64  // appended and not yet acknowledged
	Bytes         int64  // on disk
	Segments      int    // files
	DroppedPoints uint64 // lost to DropOldest
	LostPoints    uint64 // in segment files deleted under the spool (lostLocked)
	CorruptBytes  uint64 // discarded at Open: torn or corrupt tails
	Replayed      int64  // unacknowledged points found at Open
}

type segment struct {
	seq    uint64
	size   int64
	points int64
}

// Spool is the queue. Append and Read/Ack may run concurrently (one
// appender and one reader are the intended use).
type Spool struct {
	o   Options
	log *slog.Logger

	mu         sync.Mutex
	notify     chan struct{} // closed and replaced on every change
	segs       []*segment    // oldest first; the last is written
	wf         *os.File
	total      int64
	pending    int64
	ack        Pos
	ackedInSeg int64 // points of segs[0] before ack
	read       Pos
	readInSeg  int64 // points of read.Seg before read.Off
	rf         *os.File
	rfSeq      uint64
	ackFile    *os.File
	lockFile   *os.File
	dirty      bool
	closed     bool
	hurry      bool // Read lingers no more (Hurry)
	// rotate asks the next Append to start a new segment: a write failed
	// (a full disk), and only whole segments are freed once InfluxDB has
	// taken them, so the data already written must not stay in the one
	// still being written.
	rotate   bool
	dropped  uint64
	lost     uint64
	corrupt  uint64
	replayed int64

	stop chan struct{}
	done chan struct{}
}

const segSuffix = ".seg"

func segName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, segSuffix) }

// Open opens or creates the spool in o.Dir, truncating torn or corrupt
// records left by a crash (counted in Stats().CorruptBytes) and resuming
// after the last acknowledged record.
func Open(o Options) (*Spool, error) {
	if o.Dir == "" {
		return nil, errors.New("spool: no directory")
	}
	if o.MaxBytes <= 0 {
		return nil, errors.New("spool: MaxBytes must be > 0")
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = min(o.MaxBytes/8, 64<<20)
	}
	// At least four segments fit, so acknowledged ones can always be
	// freed while the newest is still being written.
	o.SegmentBytes = min(max(o.SegmentBytes, 512), max(o.MaxBytes/4, 1))
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{o: o, log: o.Logger, notify: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	lf, err := os.OpenFile(filepath.Join(o.Dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lf.Close()
		return nil, fmt.Errorf("spool: %s is in use by another process: %w", o.Dir, err)
	}
	s.lockFile = lf
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, err
	}
	go s.syncLoop()
	return s, nil
}

// recover loads segments and the ack cursor and opens a fresh segment.
func (s *Spool) recover() error {
	ents, err := os.ReadDir(s.o.Dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	var seqs []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, segSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 16, 64)
		if err != nil {
			continue
		}
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })

	af, err := os.OpenFile(filepath.Join(s.o.Dir, "ack"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.ackFile = af
	ack, ackOK := readAck(af)

	for _, seq := range seqs {
		if ackOK && seq < ack.Seg {
			if err := os.Remove(filepath.Join(s.o.Dir, segName(seq))); err != nil {
				return fmt.Errorf("spool: %w", err)
			}
			continue
		}
		seg, bounds, err := s.scan(seq)
		if err != nil {
			return err
		}
		if len(s.segs) == 0 {
			done, onBoundary := bounds[ack.Off]
			if !ackOK || seq != ack.Seg || !onBoundary {
				// No usable cursor: replay from the start of the oldest
				// segment (duplicates are harmless, see package doc).
				ack, done = Pos{Seg: seq}, 0
			}
			s.ackedInSeg = done
			s.pending -= done
		}
		s.segs = append(s.segs, seg)
		s.total += seg.size
		s.pending += seg.points
	}
	s.replayed = s.pending
	next := uint64(1)
	if len(s.segs) > 0 {
		next = s.segs[len(s.segs)-1].seq + 1
	}
	if err := s.newSegment(next); err != nil {
		return err
	}
	if len(s.segs) == 1 {
		ack = Pos{Seg: next}
	}
	s.ack, s.read, s.readInSeg = ack, ack, s.ackedInSeg
	if s.pending > 0 {
		s.log.Info("influx spool: replaying unacknowledged points", slog.String("dir", s.o.Dir), slog.Int64("points", s.pending), slog.Int("segments", len(s.segs)-1))
	}
	return nil
}

// scan validates a segment, truncating it at the first bad record, and
// returns the points before each record boundary.
func (s *Spool) scan(seq uint64) (*segment, map[int64]int64, error) {
	path := filepath.Join(s.o.Dir, segName(seq))
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("spool: %w", err)
	}
	seg := &segment{seq: seq}
	bounds := map[int64]int64{0: 0}
	off := 0
	for off < len(data) {
		_, n, size, err := DecodeRecord(data[off:])
		if err != nil {
			s.corrupt += uint64(len(data) - off)
			s.log.Warn("influx spool: discarding damaged tail of a segment (crash mid-write or disk damage)",
				slog.String("file", path), slog.Int("offset", off), slog.Int("bytes", len(data)-off), slog.String("error", err.Error()))
			if err := os.Truncate(path, int64(off)); err != nil {
				return nil, nil, fmt.Errorf("spool: truncate %s: %w", path, err)
			}
			break
		}
		off += size
		seg.points += int64(n)
		bounds[int64(off)] = seg.points
	}
	seg.size = int64(off)
	return seg, bounds, nil
}

func (s *Spool) newSegment(seq uint64) error {
	f, err := os.OpenFile(filepath.Join(s.o.Dir, segName(seq)), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("spool: new segment: %w", err)
	}
	if s.wf != nil {
		if err := s.wf.Sync(); err != nil {
			s.log.Warn("influx spool: fsync", slog.String("error", err.Error()))
		}
		s.wf.Close()
	}
	s.wf = f
	s.segs = append(s.segs, &segment{seq: seq})
	syncDir(s.o.Dir)
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// ack file: seg u64 | off u64 | crc32c u32.
func readAck(f *os.File) (Pos, bool) {
	var b [20]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return Pos{}, false
	}
	if crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:]) {
		return Pos{}, false
	}
	return Pos{Seg: binary.LittleEndian.Uint64(b[0:]), Off: int64(binary.LittleEndian.Uint64(b[8:]))}, true
}

func (s *Spool) writeAck() error {
	var b [20]byte
	binary.LittleEndian.PutUint64(b[0:], s.ack.Seg)
	binary.LittleEndian.PutUint64(b[8:], uint64(s.ack.Off))
	binary.LittleEndian.PutUint32(b[16:], crc32.Checksum(b[:16], castagnoli))
	_, err := s.ackFile.WriteAt(b[:], 0)
	return err
}

func (s *Spool) changed() {
	close(s.notify)
	s.notify = make(chan struct{})
}

// Append adds one record of count points. With the Block policy it waits
// for space until ctx is done; with DropOldest it deletes the oldest
// segments to make room. A write error (e.g. a full disk) leaves the
// spool as it was and is returned.
func (s *Spool) Append(ctx context.Context, payload []byte, count int) error {
	size := int64(headerLen + len(payload))
	if size > s.o.MaxBytes || len(payload) > MaxRecord {
		return fmt.Errorf("%w: %d bytes, spool %d", ErrFull, size, s.o.MaxBytes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed {
			return ErrClosed
		}
		if s.total+size <= s.o.MaxBytes {
			break
		}
		if s.o.Policy == DropOldest {
			if err := s.dropOldestLocked(); err != nil {
				return err
			}
			continue
		}
		ch := s.notify
		s.mu.Unlock()
		select {
		case <-ch:
			s.mu.Lock()
		case <-ctx.Done():
			s.mu.Lock()
			return ctx.Err()
		}
	}
	if s.unlinked() {
		if err := s.lostLocked(); err != nil {
			return err
		}
	}
	w := s.segs[len(s.segs)-1]
	if w.size > 0 && (s.rotate || w.size+size > s.o.SegmentBytes) {
		err := s.newSegment(w.seq + 1)
		if errors.Is(err, fs.ErrNotExist) {
			err = s.lostLocked()
		}
		if err != nil {
			return err
		}
		if err := s.freeAckedLocked(); err != nil {
			return err
		}
		w = s.segs[len(s.segs)-1]
	}
	s.rotate = false
	// Header and payload go in two writes rather than one copy of a
	// megabyte-sized payload: a crash between them leaves a torn record,
	// which Open discards like any other, and the reader never sees
	// past w.size, which moves only after both.
	var h [headerLen]byte
	putHeader(h[:], uint32(count), payload)
	_, err := s.wf.Write(h[:])
	if err == nil {
		_, err = s.wf.Write(payload)
	}
	if err != nil {
		// Leave no partial record behind; the next Open would drop it
		// anyway, but later appends must start on a boundary.
		_ = s.wf.Truncate(w.size)
		_, _ = s.wf.Seek(w.size, io.SeekStart)
		s.rotate = true
		return fmt.Errorf("spool: append: %w", err)
	}
	w.size += size
	w.points += int64(count)
	s.total += size
	s.pending += int64(count)
	s.dirty = true
	if s.o.SyncInterval == 0 {
		if err := s.wf.Sync(); err != nil {
			return fmt.Errorf("spool: fsync: %w", err)
		}
		s.dirty = false
	}
	s.changed()
	return nil
}

func (s *Spool) dropOldestLocked() error {
	if len(s.segs) == 1 {
		// Only the write segment is left: start a new one so the old one
		// can go.
		if err := s.newSegment(s.segs[0].seq + 1); err != nil {
			return err
		}
	}
	old := s.segs[0]
	lost := old.points
	if s.ack.Seg == old.seq {
		lost -= s.ackedInSeg
	}
	if err := os.Remove(filepath.Join(s.o.Dir, segName(old.seq))); err != nil {
		return fmt.Errorf("spool: drop oldest: %w", err)
	}
	s.segs = s.segs[1:]
	s.total -= old.size
	s.pending -= lost
	s.dropped += uint64(lost)
	next := Pos{Seg: s.segs[0].seq}
	if s.ack.Seg <= old.seq {
		s.ack, s.ackedInSeg = next, 0
		_ = s.writeAck()
	}
	if s.read.Seg <= old.seq {
		s.read, s.readInSeg = next, 0
	}
	s.changed()
	return nil
}

// Hurry makes Read return what it has at once, without lingering for a
// fuller batch, from now on; a Read lingering now returns too. A sink
// that is shutting down wants what is spooled written, not batched.
func (s *Spool) Hurry() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hurry = true
	s.changed()
}

// Read returns the next records after the last one read, waiting until
// at least one is there. It keeps collecting until maxPoints points or
// maxBytes bytes are gathered or linger has passed since the first
// record. Records are returned whole, so a batch may exceed the limits by
// one record. buf is reused for Data if large enough.
func (s *Spool) Read(ctx context.Context, buf []byte, maxPoints, maxBytes int, linger time.Duration) (Batch, error) {
	b := Batch{Data: buf[:0]}
	var deadline <-chan time.Time
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if err := s.readLocked(&b, maxPoints, maxBytes); err != nil {
			return b, err
		}
		if b.Points >= maxPoints || len(b.Data) >= maxBytes {
			return b, nil
		}
		if s.closed {
			if b.Records > 0 {
				return b, nil
			}
			return b, ErrClosed
		}
		if b.Records > 0 && (linger <= 0 || s.hurry) {
			return b, nil
		}
		if b.Records > 0 && deadline == nil {
			t := time.NewTimer(linger)
			defer t.Stop()
			deadline = t.C
		}
		ch := s.notify
		s.mu.Unlock()
		select {
		case <-ch:
			s.mu.Lock()
		case <-deadline:
			s.mu.Lock()
			if err := s.readLocked(&b, maxPoints, maxBytes); err != nil {
				return b, err
			}
			return b, nil
		case <-ctx.Done():
			s.mu.Lock()
			if b.Records > 0 {
				return b, nil
			}
			return b, ctx.Err()
		}
	}
}

// readLocked appends whole records from the read position, up to what
// the appender has completed.
func (s *Spool) readLocked(b *Batch, maxPoints, maxBytes int) error {
	for b.Points < maxPoints && len(b.Data) < maxBytes {
		i := s.segIndex(s.read.Seg)
		if i < 0 {
			if len(s.segs) == 0 || s.read.Seg > s.segs[0].seq {
				return nil
			}
			s.read, s.readInSeg = Pos{Seg: s.segs[0].seq}, 0
			continue
		}
		seg := s.segs[i]
		if s.read.Off >= seg.size {
			if i == len(s.segs)-1 {
				return nil
			}
			s.read, s.readInSeg = Pos{Seg: s.segs[i+1].seq}, 0
			continue
		}
		if s.rf == nil || s.rfSeq != seg.seq {
			if s.rf != nil {
				s.rf.Close()
			}
			f, err := os.Open(filepath.Join(s.o.Dir, segName(seg.seq)))
			if errors.Is(err, fs.ErrNotExist) {
				s.rf = nil
				if err := s.lostLocked(); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				s.rf = nil
				return fmt.Errorf("spool: read: %w", err)
			}
			s.rf, s.rfSeq = f, seg.seq
		}
		var h [headerLen]byte
		if _, err := s.rf.ReadAt(h[:], s.read.Off); err != nil {
			return fmt.Errorf("spool: read %s at %d: %w", segName(seg.seq), s.read.Off, err)
		}
		n := int(binary.LittleEndian.Uint32(h[0:]))
		if n > MaxRecord || s.read.Off+int64(headerLen+n) > seg.size {
			return fmt.Errorf("spool: read %s at %d: %w", segName(seg.seq), s.read.Off, ErrCorrupt)
		}
		// The payload is read straight to its place in the batch (no
		// header in between to shift out) and checked against the header.
		start := len(b.Data)
		b.Data = slices.Grow(b.Data, n)[:start+n]
		payload := b.Data[start:]
		if _, err := s.rf.ReadAt(payload, s.read.Off+headerLen); err != nil {
			b.Data = b.Data[:start]
			return fmt.Errorf("spool: read %s at %d: %w", segName(seg.seq), s.read.Off, err)
		}
		count := binary.LittleEndian.Uint32(h[8:])
		if recordCRC(count, payload) != binary.LittleEndian.Uint32(h[4:]) {
			b.Data = b.Data[:start]
			return fmt.Errorf("spool: read %s at %d: %w: checksum mismatch", segName(seg.seq), s.read.Off, ErrCorrupt)
		}
		size := headerLen + n
		b.Points += int(count)
		b.Records++
		s.read.Off += int64(size)
		s.readInSeg += int64(count)
		b.End, b.endInSeg = s.read, s.readInSeg
	}
	return nil
}

// lostLocked takes in that segment files vanished under the spool (its
// directory deleted while meshd runs, a cleaner of old files): it makes
// the directory again and writes the cursor and lock files again. A
// missing segment the spool still has open (the one being written, the
// one being read) is copied back from its open file, which the kernel
// keeps until it is closed: nothing in it is lost. Any other is dropped,
// its points not yet read counted as lost (LostPoints; those read are on
// their way to InfluxDB). Without this, the reader failed to open the
// missing segment for good, while appends went on into a deleted file.
func (s *Spool) lostLocked() error {
	if err := os.MkdirAll(s.o.Dir, 0o750); err != nil {
		return fmt.Errorf("spool: make %s again: %w", s.o.Dir, err)
	}
	var lost, gone, saved int64
	var keep []*segment
	last := s.segs[len(s.segs)-1]
	for _, g := range s.segs {
		path := filepath.Join(s.o.Dir, segName(g.seq))
		if _, err := os.Stat(path); err == nil {
			keep = append(keep, g)
			continue
		}
		var open *os.File
		switch {
		case g == last:
			open = s.wf
		case s.rf != nil && s.rfSeq == g.seq:
			open = s.rf
		}
		if open != nil {
			f, err := copyBack(open, path, g.size)
			if err == nil {
				if g == last {
					s.wf.Close()
					s.wf = f
				} else {
					f.Close()
				}
				if s.rf != nil && s.rfSeq == g.seq {
					s.rf.Close()
					s.rf = nil
				}
				keep = append(keep, g)
				saved++
				continue
			}
			s.log.Error("influx spool: cannot copy a deleted segment back from its open file", slog.String("file", path), slog.String("error", err.Error()))
		}
		unacked, unread := g.points, g.points
		switch {
		case g.seq < s.ack.Seg:
			unacked = 0
		case g.seq == s.ack.Seg:
			unacked -= s.ackedInSeg
		}
		switch {
		case g.seq < s.read.Seg:
			unread = 0
		case g.seq == s.read.Seg:
			unread -= s.readInSeg
		}
		lost += unread
		s.pending = max(s.pending-unacked, 0)
		s.total -= g.size
		gone++
		if s.rf != nil && s.rfSeq == g.seq {
			s.rf.Close()
			s.rf = nil
		}
	}
	s.segs = keep
	if len(keep) == 0 || keep[len(keep)-1] != last {
		if err := s.newSegment(last.seq + 1); err != nil {
			return err
		}
	}
	first := Pos{Seg: s.segs[0].seq}
	if s.ack.Seg < first.Seg {
		s.ack, s.ackedInSeg = first, 0
	}
	if s.read.Seg < first.Seg {
		s.read, s.readInSeg = first, 0
	}
	s.lost += uint64(lost)
	for name, f := range map[string]**os.File{"ack": &s.ackFile, "LOCK": &s.lockFile} {
		nf, err := os.OpenFile(filepath.Join(s.o.Dir, name), os.O_CREATE|os.O_RDWR, 0o640)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		if name == "LOCK" {
			_ = syscall.Flock(int(nf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		}
		(*f).Close()
		*f = nf
	}
	if err := s.writeAck(); err != nil {
		return fmt.Errorf("spool: ack: %w", err)
	}
	syncDir(s.o.Dir)
	s.log.Error("influx spool: segment files were deleted under the spool; made them again where it could and went on",
		slog.String("dir", s.o.Dir), slog.Int64("segments_copied_back", saved), slog.Int64("segments_lost", gone), slog.Int64("points_lost", lost))
	s.changed()
	return nil
}

// copyBack writes the first size bytes of a deleted file, still open as
// f, to a new file at path (through /proc/self/fd, which reopens the
// deleted file for reading) and returns the new file, open for writing at
// its end.
func copyBack(f *os.File, path string, size int64) (*os.File, error) {
	src, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(dst, io.NewSectionReader(src, 0, size)); err != nil {
		dst.Close()
		_ = os.Remove(path)
		return nil, err
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		_ = os.Remove(path)
		return nil, err
	}
	return dst, nil
}

// unlinked reports whether the write segment's file was deleted (its
// link count is 0), checked before each append so that nothing more
// goes into a file no one can read back by name.
func (s *Spool) unlinked() bool {
	fi, err := s.wf.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Nlink == 0
}

func (s *Spool) segIndex(seq uint64) int {
	for i, g := range s.segs {
		if g.seq == seq {
			return i
		}
	}
	return -1
}

// Ack marks everything up to the end of b (a batch from Read) as
// delivered, frees the segments it finished and wakes a blocked Append.
func (s *Spool) Ack(b Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	end, points := b.End, b.Points
	if len(s.segs) == 0 || end.Seg < s.segs[0].seq || b.Records == 0 {
		return nil // nothing, or dropped by DropOldest meanwhile
	}
	s.ackedInSeg = b.endInSeg
	s.ack = end
	s.pending = max(s.pending-int64(points), 0)
	if err := s.freeAckedLocked(); err != nil {
		return err
	}
	if err := s.writeAck(); err != nil {
		return fmt.Errorf("spool: ack: %w", err)
	}
	s.dirty = true
	s.changed()
	return nil
}

// freeAckedLocked removes the segments before the write segment that
// are acknowledged to their end. Ack calls it, and so does Append after
// starting a segment: a segment acknowledged while it was still being
// written is freed only then, which on a full disk is what makes room.
func (s *Spool) freeAckedLocked() error {
	for len(s.segs) > 1 {
		old := s.segs[0]
		if old.seq > s.ack.Seg || (old.seq == s.ack.Seg && s.ack.Off < old.size) {
			break
		}
		if err := os.Remove(filepath.Join(s.o.Dir, segName(old.seq))); err != nil {
			return fmt.Errorf("spool: remove acknowledged segment: %w", err)
		}
		if s.rf != nil && s.rfSeq == old.seq {
			s.rf.Close()
			s.rf = nil
		}
		s.segs = s.segs[1:]
		s.total -= old.size
		if s.ack.Seg <= old.seq {
			s.ack, s.ackedInSeg = Pos{Seg: s.segs[0].seq}, 0
		}
		if s.read.Seg <= old.seq {
			s.read, s.readInSeg = Pos{Seg: s.segs[0].seq}, 0
		}
	}
	return nil
}

// Stats returns the spool's counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Points: s.pending, Bytes: s.total, Segments: len(s.segs), DroppedPoints: s.dropped, LostPoints: s.lost, CorruptBytes: s.corrupt, Replayed: s.replayed}
}

func (s *Spool) syncLoop() {
	defer close(s.done)
	if s.o.SyncInterval <= 0 {
		<-s.stop
		return
	}
	t := time.NewTicker(s.o.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.Sync(); err != nil && !errors.Is(err, ErrClosed) {
				s.log.Warn("influx spool: fsync", slog.String("error", err.Error()))
			}
		}
	}
}

// Sync flushes the write segment and the ack cursor to disk. The fsync
// runs outside the lock: it can take long with much dirty data, and
// Append, Read and Ack must not stall behind it.
func (s *Spool) Sync() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	s.dirty = false
	wf, af := s.wf, s.ackFile
	s.mu.Unlock()
	err := wf.Sync()
	if errors.Is(err, os.ErrClosed) {
		// Rotated meanwhile; newSegment synced it before closing it.
		err = nil
	}
	if err == nil {
		err = af.Sync()
	}
	if err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
	}
	return err
}

// Close syncs and closes the spool; unacknowledged records stay on disk
// for the next Open.
func (s *Spool) Close() error {
	err := s.Sync()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.changed()
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeFiles()
	return err
}

func (s *Spool) closeFiles() {
	for _, f := range []*os.File{s.wf, s.rf, s.ackFile, s.lockFile} {
		if f != nil {
			f.Close()
		}
	}
}
