package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func open(t *testing.T, dir string, max int64, p Policy) *Spool {
	t.Helper()
	s, err := Open(Options{Dir: dir, MaxBytes: max, SegmentBytes: 1024, Policy: p, SyncInterval: time.Hour})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func rec(i int) []byte { return fmt.Appendf(nil, "m,t=a v=%di %d\n", i, i) }

// drain reads and acknowledges everything, returning the lines in order.
func drain(t *testing.T, s *Spool, ack bool) []string {
	t.Helper()
	var lines []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		b, err := s.Read(ctx, nil, 7, 1<<20, 0)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return lines
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		got := strings.Split(strings.TrimSuffix(string(b.Data), "\n"), "\n")
		if len(got) != b.Points {
			t.Fatalf("batch has %d lines, says %d points", len(got), b.Points)
		}
		lines = append(lines, got...)
		if ack {
			if err := s.Ack(b); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
	}
}

func want(from, to int) []string {
	var w []string
	for i := from; i < to; i++ {
		w = append(w, strings.TrimSuffix(string(rec(i)), "\n"))
	}
	return w
}

func equal(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %d lines %v\nwant %d lines %v", len(got), got, len(want), want)
	}
}

func appendN(t *testing.T, s *Spool, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := s.Append(context.Background(), rec(i), 1); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

func TestOrderAckAndSegmentsFreed(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20, Block)
	defer s.Close()
	appendN(t, s, 0, 200)
	if st := s.Stats(); st.Points != 200 || st.Segments < 3 {
		t.Fatalf("stats after append: %+v", st)
	}
	equal(t, drain(t, s, true), want(0, 200))
	st := s.Stats()
	if st.Points != 0 || st.Segments != 1 {
		t.Fatalf("acked segments not freed: %+v", st)
	}
}

func TestReopenReplaysUnacked(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20, Block)
	appendN(t, s, 0, 100)
	// Acknowledge exactly the first 30 points.
	var acked int
	for acked < 30 {
		b, err := s.Read(context.Background(), nil, 30-acked, 1<<20, 0)
		if err != nil {
			t.Fatal(err)
		}
		acked += b.Points
		if err := s.Ack(b); err != nil {
			t.Fatal(err)
		}
	}
	// Read more without acknowledging: they must come back.
	if _, err := s.Read(context.Background(), nil, 20, 1<<20, 0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir, 1<<20, Block)
	defer s.Close()
	if st := s.Stats(); st.Replayed != 70 {
		t.Fatalf("replayed %d, want 70", st.Replayed)
	}
	appendN(t, s, 100, 110)
	equal(t, drain(t, s, true), want(30, 110))
}

// A crash mid-write leaves a torn record; damage leaves a bad checksum.
// Both are cut off at Open, everything before them survives.
func TestTornAndCorruptTail(t *testing.T) {
	for _, tc := range []struct {
		name  string
		wreck func(data []byte) []byte
	}{
		{"torn header", func(d []byte) []byte { return append(d, 7, 0, 0) }},
		{"torn payload", func(d []byte) []byte { return appendRecord(d, 1, rec(99))[:len(d)+headerLen+5] }},
		{"bit flip", func(d []byte) []byte {
			d = appendRecord(d, 1, rec(99))
			d[len(d)-3] ^= 0x40
			return d
		}},
		{"huge length", func(d []byte) []byte { return append(d, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 1, 0, 0, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, 1<<20, Block)
			appendN(t, s, 0, 5)
			s.Close()
			ents, _ := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
			last := ents[len(ents)-1]
			for _, e := range ents { // the newest non-empty segment
				if fi, _ := os.Stat(e); fi.Size() > 0 {
					last = e
				}
			}
			data, _ := os.ReadFile(last)
			good := len(data)
			if err := os.WriteFile(last, tc.wreck(data), 0o640); err != nil {
				t.Fatal(err)
			}
			s = open(t, dir, 1<<20, Block)
			defer s.Close()
			st := s.Stats()
			if st.CorruptBytes == 0 || st.Points != 5 {
				t.Fatalf("stats %+v: want corrupt bytes counted and 5 points kept", st)
			}
			if fi, _ := os.Stat(last); fi.Size() != int64(good) {
				t.Fatalf("segment not truncated to %d: %d", good, fi.Size())
			}
			appendN(t, s, 5, 8)
			equal(t, drain(t, s, true), want(0, 8))
		})
	}
}

func TestDropOldestCounts(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 4096, DropOldest)
	defer s.Close()
	appendN(t, s, 0, 500)
	st := s.Stats()
	if st.Bytes > 4096 {
		t.Fatalf("spool over its bound: %+v", st)
	}
	got := drain(t, s, true)
	if uint64(len(got))+st.DroppedPoints != 500 {
		t.Fatalf("kept %d + dropped %d != 500", len(got), st.DroppedPoints)
	}
	// What is kept is the newest, in order.
	equal(t, got, want(500-len(got), 500))
}

func TestBlockWaitsForAck(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 4096, Block)
	defer s.Close()
	i := 0
	for ; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := s.Append(ctx, rec(i), 1)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error)
	go func() { done <- s.Append(context.Background(), rec(i), 1) }()
	select {
	case err := <-done:
		t.Fatalf("append did not block on a full spool: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	got := drain(t, s, true) // frees space, unblocking the append
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got = append(got, drain(t, s, true)...)
	equal(t, got, want(0, i+1))
	if s.Stats().DroppedPoints != 0 {
		t.Fatal("block policy dropped points")
	}
}

func TestSecondOpenRefused(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20, Block)
	defer s.Close()
	if _, err := Open(Options{Dir: dir, MaxBytes: 1 << 20}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open of a spool in use: %v", err)
	}
}

func TestRecordTooLarge(t *testing.T) {
	s := open(t, t.TempDir(), 4096, Block)
	defer s.Close()
	if err := s.Append(context.Background(), make([]byte, 5000), 1); !errors.Is(err, ErrFull) {
		t.Fatalf("got %v, want ErrFull", err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, 1, rec(1)))
	f.Add(appendRecord(appendRecord(nil, 2, []byte("a b=1i 1\nc d=2i 2\n")), 1, rec(3)))
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		off := 0
		for off < len(data) {
			p, _, size, err := DecodeRecord(data[off:])
			if err != nil {
				if !errors.Is(err, ErrTorn) && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("unexpected error kind %v", err)
				}
				return
			}
			if size != headerLen+len(p) || size > len(data)-off {
				t.Fatalf("size %d for payload %d at %d of %d", size, len(p), off, len(data))
			}
			off += size
		}
	})
}

func BenchmarkAppendReadAck(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir(), MaxBytes: 1 << 30, SyncInterval: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// A record as the sink writes it: 100 route points.
	var payload []byte
	for i := 0; i < 100; i++ {
		payload = fmt.Appendf(payload, "bmp_route,action=announce,afi_safi=IPV4_UNICAST,neighbor=192.0.2.1,network_instance=default,rib=ADJ_RIB_IN_PRE,router=r1 prefix=\"10.%d.%d.0/24\",origin_as=65001i,as_path=\"65001 65002\",next_hop=\"192.0.2.1\" %d\n", i/256, i%256, 1700000000000000000+i)
	}
	b.SetBytes(int64(len(payload)))
	ctx := context.Background()
	var buf []byte
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Append(ctx, payload, 100); err != nil {
			b.Fatal(err)
		}
		bt, err := s.Read(ctx, buf, 5000, 1<<20, 0)
		if err != nil {
			b.Fatal(err)
		}
		buf = bt.Data
		if err := s.Ack(bt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "points/s")
}

// TestRotationFreesAckedSegment: a segment acknowledged to its end while
// it was still the one being written is removed as soon as the next
// segment starts (on a full disk, that is where the room comes from).
func TestRotationFreesAckedSegment(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20, Block)
	defer s.Close()
	appendN(t, s, 0, 10) // well inside one 1 KiB segment
	equal(t, drain(t, s, true), want(0, 10))
	segs := func() int {
		m, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
		return len(m)
	}
	if n := segs(); n != 1 {
		t.Fatalf("%d segment files after the ack, want the one being written", n)
	}
	s.mu.Lock()
	s.rotate = true // as after a write the disk refused
	s.mu.Unlock()
	appendN(t, s, 10, 11)
	if n := segs(); n != 1 {
		t.Fatalf("%d segment files after rotating, want 1: the acknowledged one must go", n)
	}
	equal(t, drain(t, s, true), want(10, 11))
}

// A Read lingering for a fuller batch returns what it has once the spool
// is told to hurry, and later Reads do not linger.
func TestHurry(t *testing.T) {
	s := open(t, t.TempDir(), 1<<20, Block)
	defer s.Close()
	ctx := context.Background()
	if err := s.Append(ctx, []byte("a 1\n"), 1); err != nil {
		t.Fatal(err)
	}
	got := make(chan Batch, 1)
	go func() {
		b, _ := s.Read(ctx, nil, 1000, 1<<20, time.Hour)
		got <- b
	}()
	select {
	case b := <-got:
		t.Fatalf("Read returned %d points before its linger", b.Points)
	case <-time.After(100 * time.Millisecond):
	}
	s.Hurry()
	select {
	case b := <-got:
		if b.Points != 1 {
			t.Errorf("Read after Hurry: %d points, want 1", b.Points)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still lingering 5s after Hurry")
	}
	if err := s.Append(ctx, []byte("b 1\n"), 1); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Read(ctx, nil, 1000, 1<<20, time.Hour); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a Read after Hurry lingered")
	}
}
