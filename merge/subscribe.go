package merge

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshd/meshd/change"
)

// Subscription is one consumer's bounded queue of batches. When the queue
// is full the publisher waits for room, up to the subscription's wait
// (WithWait), and then drops the batch and counts it; the next batch
// delivered carries the count in Lost, and the routers of what was
// dropped in LostRouters (up to maxLostRouters; nil past that), so a
// consumer resynchronises those routers only. Once it has dropped one, it drops
// at once, without waiting, until a batch finds room again: a consumer
// that is stuck (a full spool) costs the sources one wait, not one a
// batch.
//
// The wait is back-pressure for a consumer that is only behind, which
// on a loaded machine is most of the time it is behind: hundreds of
// collector goroutines share the cores with one consumer goroutine, so
// a burst (a fleet's initial sync) filled its queue though it needs
// milliseconds of CPU to catch up. A waiting publisher gives it the CPU,
// and the sources slow down (TCP and gRPC flow control hold the rest at
// the routers) instead of losing history. The soak's kill -9 row lost
// 6,705 updates at the fleet's sync without it.
//
// Every batch offered is numbered (change.Batch.Seq) under the locks of
// its routers, so a consumer that resynchronises can tell, per router,
// which queued batches its snapshot already holds: read Seq, then take
// the router's snapshot; the router's batches numbered up to what Seq
// said are in it (applying them again would take the router back in
// time), the later ones are not. LostSeq says whether any dropped batch
// is newer than a given Seq, i.e. whether a resync already covers a loss.
type Subscription struct {
	name    string
	ch      chan change.Batch
	c       *Core
	seq     atomic.Uint64 // the last number given to a batch
	lostSeq atomic.Uint64 // the greatest number of a dropped batch
	lost    atomic.Uint64 // since the last delivered batch
	dropped atomic.Uint64 // in all
	once    sync.Once
	keys    bool
	wait    time.Duration
	// lagging is set by a drop and cleared when a batch finds room:
	// while set, a full queue drops without waiting.
	lagging atomic.Bool
	// fn, once set by Deliver (under subMu), takes the batches instead
	// of ch.
	fn func(change.Batch)
	// lostRouters are the routers of dropped batches not yet delivered
	// (change.Batch.LostRouters); lostAll, set when they grew past
	// maxLostRouters, stands for every router.
	lostMu      sync.Mutex
	lostRouters map[string]struct{}
	lostAll     bool
}

// maxLostRouters bounds the routers a subscription lists as lost before
// it asks for every router instead.
const maxLostRouters = 1024

// noteLost records the routers of a dropped batch, and those of earlier
// losses it carried (all of them when it carried a loss without a
// list). It runs before the loss is counted, so a batch that carries the
// count finds them.
func (s *Subscription) noteLost(b *change.Batch) {
	s.lostMu.Lock()
	defer s.lostMu.Unlock()
	if b.Lost > 0 && b.LostRouters == nil {
		s.lostAll, s.lostRouters = true, nil
	}
	if s.lostAll {
		return
	}
	if s.lostRouters == nil {
		s.lostRouters = map[string]struct{}{}
	}
	for i := range b.Updates {
		s.lostRouters[b.Updates[i].Router] = struct{}{}
	}
	for i := range b.Events {
		s.lostRouters[b.Events[i].Router] = struct{}{}
	}
	for _, r := range b.LostRouters {
		s.lostRouters[r] = struct{}{}
	}
	if len(s.lostRouters) > maxLostRouters {
		s.lostAll, s.lostRouters = true, nil
	}
}

// takeLost hands over the routers noted lost: nil for every router.
func (s *Subscription) takeLost() []string {
	s.lostMu.Lock()
	defer s.lostMu.Unlock()
	if s.lostAll {
		s.lostAll = false
		return nil
	}
	out := make([]string, 0, len(s.lostRouters))
	for r := range s.lostRouters {
		out = append(out, r)
	}
	clear(s.lostRouters)
	return out
}

// SubscribeOption configures a Subscription.
type SubscribeOption func(*Subscription)

// WithKeys asks for each update's Key to be filled in. Building a key
// string costs an allocation an update (~200 bytes, a fifth of what an
// update through the core allocates), so the core makes keys only while
// a consumer that uses them is subscribed; updates published before it
// came have none (change.PathKey makes one from the path).
func WithKeys() SubscribeOption { return func(s *Subscription) { s.keys = true } }

// WithWait sets how long a publisher waits for room in the consumer's
// full queue before it drops the batch (0, the default, drops at once).
// The wait holds the batch's routers' locks, so the consumer must never
// wait for a router's lock while its queue is full: it reads the store
// with TryReadRouter and consumes its queue while a router is busy.
func WithWait(d time.Duration) SubscribeOption { return func(s *Subscription) { s.wait = d } }

// Subscribe adds a consumer with a queue of depth batches.
func (c *Core) Subscribe(name string, depth int, opts ...SubscribeOption) *Subscription {
	if depth < 1 {
		depth = 1
	}
	s := &Subscription{name: name, ch: make(chan change.Batch, depth), c: c}
	for _, o := range opts {
		o(s)
	}
	c.subMu.Lock()
	c.subs = append(c.subs, s)
	c.countKeysLocked()
	c.subMu.Unlock()
	return s
}

// countKeysLocked records, under subMu, whether a consumer wants keys.
func (c *Core) countKeysLocked() {
	want := false
	for _, s := range c.subs {
		want = want || s.keys
	}
	c.keys.Store(want)
}

// C is the channel batches arrive on; it is closed by Close.
func (s *Subscription) C() <-chan change.Batch { return s.ch }

// Name is the consumer's name.
func (s *Subscription) Name() string { return s.name }

// Dropped is the number of updates and events this consumer has missed.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Seq is the number of the last batch offered to this consumer: every
// batch published before the call has a number up to it, every batch
// published after one above it.
func (s *Subscription) Seq() uint64 { return s.seq.Load() }

// LostSeq is the greatest number of a batch this consumer missed, 0 if
// none. It is set before the loss is counted, so a consumer that reads a
// batch with Lost > 0 and then LostSeq sees that loss in it.
func (s *Subscription) LostSeq() uint64 { return s.lostSeq.Load() }

// Deliver switches the consumer to synchronous delivery, if no batch it
// missed is numbered above covered (the Seq its last resynchronisation
// started from); it reports whether it switched. The batches still
// queued are handed to fn first, in order; from then on every batch is
// handed to fn in the publisher's goroutine, under the locks of the
// batch's routers (so one router's batches reach fn in order, different
// routers' possibly at once), and none is dropped. The channel stays
// open, empty, until Close.
//
// fn must not call into the core, and it delays the sources: it is for a
// consumer whose work is a bounded in-memory write, the gNMI server's
// store, whose subscribers have queues of their own. Such a consumer in
// a queue is starved while hundreds of collector goroutines fill it (a
// fleet's initial sync), loses batches and must resynchronise; handed the
// batches this way it costs the sources its write, and never falls
// behind.
func (s *Subscription) Deliver(covered uint64, fn func(change.Batch)) bool {
	s.c.subMu.Lock()
	defer s.c.subMu.Unlock()
	if s.lostSeq.Load() > covered {
		return false
	}
	for {
		select {
		case b, ok := <-s.ch:
			if !ok {
				return false // closed
			}
			fn(b)
			continue
		default:
		}
		break
	}
	s.fn = fn
	return true
}

// Close removes the consumer and closes its channel.
func (s *Subscription) Close() {
	s.once.Do(func() {
		// Publishers send under subMu's read lock: once this holds the
		// write lock, none is sending to s, and none will find it after.
		s.c.subMu.Lock()
		for i, o := range s.c.subs {
			if o == s {
				s.c.subs = append(s.c.subs[:i:i], s.c.subs[i+1:]...)
				break
			}
		}
		s.c.countKeysLocked()
		close(s.ch)
		s.c.subMu.Unlock()
	})
}

// publish runs under the locks of the routers in the batch, which orders
// each router's batches the same for everyone.
func (c *Core) publish(b change.Batch) {
	c.subMu.RLock()
	defer c.subMu.RUnlock()
	n := uint64(len(b.Updates) + len(b.Events))
	for _, s := range c.subs {
		// Swap, not Load then Store: batches of different routers are
		// published at once, and each lost count must reach the consumer
		// exactly once.
		b.Seq = s.seq.Add(1)
		b.Lost = s.lost.Swap(0)
		b.LostRouters = nil
		if b.Lost > 0 {
			b.LostRouters = s.takeLost()
		}
		if s.fn != nil {
			s.fn(b)
			continue
		}
		select {
		case s.ch <- b:
			if s.lagging.Load() {
				s.lagging.Store(false)
			}
			continue
		default:
		}
		if s.wait > 0 && !s.lagging.Load() && c.waitRoom(s, b) {
			continue
		}
		s.lagging.Store(true)
		s.noteLost(&b)
		for {
			m := s.lostSeq.Load()
			if m >= b.Seq || s.lostSeq.CompareAndSwap(m, b.Seq) {
				break
			}
		}
		s.lost.Add(b.Lost + n)
		s.dropped.Add(n)
		c.m.dropped.WithLabelValues(s.name).Add(float64(n))
	}
}

// waitRoom waits up to s.wait for room for b in s's queue and reports
// whether b went in; the time waited is counted either way.
func (c *Core) waitRoom(s *Subscription, b change.Batch) bool {
	start := time.Now()
	t := time.NewTimer(s.wait)
	defer func() {
		t.Stop()
		c.m.waited.WithLabelValues(s.name).Add(time.Since(start).Seconds())
	}()
	select {
	case s.ch <- b:
		c.m.waits.WithLabelValues(s.name, "room").Inc()
		return true
	case <-t.C:
		c.m.waits.WithLabelValues(s.name, "dropped").Inc()
		return false
	}
}
