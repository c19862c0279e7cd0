package influx

import (
	"context"
	"log/slog"
	"strings"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/stage"
)

// Resynchronising. The sink keeps the last value of every state field
// (see mapper) and rebuilds that cache from the merge core at start and
// after the core dropped batches for it. It reads the core one router at
// a time, under that router's lock, with paths rebuilt from the store's
// keys one element at a time through a cache (keyPaths), so neither the
// fleet nor a path per leaf is ever built: the core's Snapshot, which
// does both, took 380 MB of heap and a quarter of the CPU at 200 × 100.
//
// Between routers the sink consumes what its queue holds. A resync or a
// periodic snapshot of a large fleet takes seconds, and the queue holds
// a fraction of a second at fleet rates: done in one piece, the pause
// overflowed the queue, whose lost batches asked for the next resync,
// and so on for as long as the load lasted (every batch lost at 200 ×
// 100 and 20k updates/s).

// peerTypeRest is the rest of the key of meshd's bmp/state/peer-type
// leaf below a neighbor, which marks Loc-RIB instance peers.
const peerTypeRest = "/bmp/state/peer-type"

// keyPaths turns store keys back into paths for the mapper. A path's
// elements are shared, read-only, between the paths made: a key's
// elements repeat (a neighbor's on each of its leaves, "state" on
// nearly all), so each is parsed once per router.
type keyPaths struct {
	elems      map[string]*gpb.PathElem // by the element's part of a key
	lastPrefix string
	prefix     []*gpb.PathElem // lastPrefix's elements
	buf        []*gpb.PathElem
	path       gpb.Path
}

// maxKeyElems bounds the element cache between routers.
const maxKeyElems = 1 << 14

func (kp *keyPaths) reset() {
	if len(kp.elems) > maxKeyElems || kp.elems == nil {
		kp.elems = map[string]*gpb.PathElem{}
	}
	kp.lastPrefix, kp.prefix = "", kp.prefix[:0]
}

// appendElems appends the elements of a key (or of a part of one made
// of whole elements) to dst.
func (kp *keyPaths) appendElems(dst []*gpb.PathElem, key string) ([]*gpb.PathElem, bool) {
	for i := 0; i < len(key); {
		j := elemEnd(key, i)
		part := key[i:j]
		e := kp.elems[part]
		if e == nil {
			p, err := change.KeyPath(part)
			if err != nil || len(p.GetElem()) != 1 {
				return dst, false
			}
			e = p.GetElem()[0]
			kp.elems[part] = e
		}
		dst = append(dst, e)
		i = j
	}
	return dst, true
}

// elemEnd returns where the key element starting at i (at its '/') ends:
// at the next '/' outside a list key's brackets (a key value may hold
// '/' and '['; ']' and '\' in it are escaped with '\').
func elemEnd(key string, i int) int {
	i++
	for i < len(key) {
		switch key[i] {
		case '/':
			return i
		case '[':
			for i++; i < len(key) && key[i] != ']'; i++ {
				if key[i] == '\\' {
					i++
				}
			}
		}
		i++
	}
	return len(key)
}

// pathOf returns the path of the leaf at prefix+rest, good until the
// next call.
func (kp *keyPaths) pathOf(prefix, rest string) (*gpb.Path, bool) {
	if prefix != kp.lastPrefix || len(kp.prefix) == 0 && prefix != "" {
		var ok bool
		kp.lastPrefix = prefix
		if kp.prefix, ok = kp.appendElems(kp.prefix[:0], prefix); !ok {
			kp.lastPrefix = ""
			return nil, false
		}
	}
	var ok bool
	kp.buf = append(kp.buf[:0], kp.prefix...)
	if kp.buf, ok = kp.appendElems(kp.buf, rest); !ok {
		return nil, false
	}
	kp.path.Elem = kp.buf
	return &kp.path, true
}

// resyncRouter replaces one router's part of the cache with what the
// core holds for it, as resync does for the whole fleet from a Snapshot.
// It reports busy, having changed nothing, when a publisher holds the
// router's lock (see stage.Snapshotter.TryReadRouter): the caller
// consumes its queue, which that publisher may be waiting on, and tries
// again.
func (m *mapper) resyncRouter(w stage.Snapshotter, name string, now time.Time) (busy bool) {
	read := func(walk func(stage.LeafFunc)) {
		m.filling = true
		defer func() { m.filling = false }()
		m.dropRouter(name)
		m.kp.reset()
		var one [1]change.Update
		// First the Loc-RIB marks, as resync's markLocRIB does before
		// any leaf is mapped: the walk's order is the store's.
		walk(func(prefix, rest string, v *gpb.TypedValue, t time.Time, src change.Source) {
			if rest != peerTypeRest || v == nil || !strings.HasPrefix(prefix, "/meshd/") {
				return
			}
			if p, ok := m.kp.pathOf(prefix, rest); ok {
				one[0] = change.Update{Router: name, Path: p, Value: v, Time: t, Source: src}
				m.markLocRIB(one[:])
			}
		})
		walk(func(prefix, rest string, v *gpb.TypedValue, t time.Time, src change.Source) {
			p, ok := m.kp.pathOf(prefix, rest)
			if !ok {
				m.stats.unmapped++
				return
			}
			one[0] = change.Update{Router: name, Path: p, Value: v, Time: t, Source: src}
			m.update(&one[0], now)
		})
		one[0] = change.Update{}
		m.kp.path.Elem = nil
		for _, s := range m.touched {
			m.release(s)
		}
		m.touched = m.touched[:0]
	}
	found, busy := w.TryReadRouter(name, read)
	if busy {
		return true
	}
	if !found {
		// Gone from the core: forgotten here too.
		m.dropRouter(name)
	}
	return false
}

// resync rebuilds the cache from the core one router at a time and,
// with write, writes each router's series in full right after reading
// it (stamped then). Between routers it consumes what the queue holds
// (see the top of this file). Routers the cache knows and the core no
// longer holds are forgotten.
func (s *Sink) resync(ctx context.Context, sub stage.Feed, write bool) error {
	if s.o.snap == nil {
		return nil
	}
	start := time.Now()
	only := s.resyncOnly
	s.resyncOnly = nil
	routers, points, err := s.walkCore(ctx, sub, write, only)
	if err != nil {
		return err
	}
	s.m.resyncs.Inc()
	s.log.Info("influx: resynchronised from the merge core", slog.Int("routers", routers),
		slog.Bool("every_router", only == nil), slog.Int("points", points), slog.Duration("took", time.Since(start)))
	return nil
}

// walkCore reads every router (or those in only, when not nil) back
// from the merge core into the cache, with write appending its series in
// full, and consumes the queue between routers. It returns how many
// routers and points.
func (s *Sink) walkCore(ctx context.Context, sub stage.Feed, write bool, only map[string]struct{}) (int, int, error) {
	var names []string
	if only != nil {
		for r := range only {
			names = append(names, r)
		}
	} else {
		names = s.o.snap.Routers()
		for r := range s.mp.routers {
			names = append(names, r)
		}
	}
	done := make(map[string]bool, len(names))
	points := 0
	for _, r := range names {
		if done[r] {
			continue
		}
		done[r] = true
		if err := s.readRouter(ctx, sub, r); err != nil {
			return len(done), points, err
		}
		if write {
			var n int
			s.buf, n = s.mp.snapshotRouter(s.buf, r, time.Now())
			s.bufPoints += n
			points += n
		}
		s.mp.forgetValues(r)
		if err := s.between(ctx, sub); err != nil {
			return len(done), points, err
		}
	}
	return len(done), points, nil
}

// readRouter resyncs one router's cache from the core, consuming the
// queue while a publisher holds the router's lock: that publisher may be
// waiting for room in this very queue (merge.WithWait). Without a queue
// (draining at shutdown) it only lets the publisher's wait run out.
func (s *Sink) readRouter(ctx context.Context, sub stage.Feed, r string) error {
	var t *time.Timer
	for s.mp.resyncRouter(s.o.snap, r, time.Now()) {
		if t == nil {
			t = time.NewTimer(time.Millisecond)
			defer t.Stop()
		} else {
			t.Reset(time.Millisecond)
		}
		var c <-chan change.Batch // nil without a queue: only the timer
		if sub != nil {
			c = sub.C()
		}
		select {
		case b, ok := <-c:
			if !ok {
				sub = nil // closed: let the publisher's wait run out
				continue
			}
			if err := s.consume(ctx, sub, &b); err != nil {
				return err
			}
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// snapshot writes every series in full, one router at a time, consuming
// the queue between routers: read back from the merge core when the sink
// has it (values are not kept then, see mapper.keepValues), else from the
// values kept.
func (s *Sink) snapshot(ctx context.Context, sub stage.Feed) error {
	s.m.snapshots.Inc()
	if !s.mp.keepValues {
		if _, _, err := s.walkCore(ctx, sub, true, nil); err != nil {
			return err
		}
		return s.flush(ctx)
	}
	names := make([]string, 0, len(s.mp.routers))
	for r := range s.mp.routers {
		names = append(names, r)
	}
	for _, r := range names {
		var n int
		s.buf, n = s.mp.snapshotRouter(s.buf, r, time.Now())
		s.bufPoints += n
		if err := s.between(ctx, sub); err != nil {
			return err
		}
	}
	return s.flush(ctx)
}

// between runs between two routers of a resync or a snapshot: it spools
// the buffer once it is large and consumes the batches queued meanwhile.
// A batch that reports lost updates asks for another resync (resyncDue)
// rather than starting one inside this one.
func (s *Sink) between(ctx context.Context, sub stage.Feed) error {
	if len(s.buf) >= s.maxBuf {
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	if sub == nil {
		return ctx.Err()
	}
	for range len(sub.C()) {
		b, ok := <-sub.C()
		if !ok {
			return nil
		}
		if err := s.consume(ctx, sub, &b); err != nil {
			return err
		}
		if len(s.buf) >= s.maxBuf {
			if err := s.flush(ctx); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}
