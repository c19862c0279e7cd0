package gnmitarget

import "sync"

type qkey struct{ target, key string }

// qent is a queued change: the event at idx of the chunk src, which every
// queue it was pushed to shares.
type qent struct {
	src *chunk
	idx int
}

func (e qent) ev() *event { return &e.src.evs[e.idx] }

// queue is one subscriber's bounded coalescing queue of leaf events.
type queue struct {
	mu     sync.Mutex
	max    int
	idx    map[qkey]int // position in order
	order  []qent
	resync bool            // overflowed: resynchronise from the store on the next drain
	dirty  map[string]bool // targets that lost leaves while overflowed
	ready  chan struct{}   // signalled (capacity 1) when there is something to drain
	// A queued entry keeps its whole chunk alive, shared or not: a
	// subscriber that stops reading ends up holding one chunk per leaf it
	// has queued, each the size of a whole write. pinned counts the
	// entries per chunk, bytes the chunks' estimated size, and the queue
	// overflows past maxBytes as it does past max leaves (0: no bound).
	pinned   map[*chunk]int32
	bytes    int64
	maxBytes int64
}

func newQueue(max int, maxBytes int64) *queue {
	return &queue{max: max, maxBytes: maxBytes, idx: map[qkey]int{}, pinned: map[*chunk]int32{}, ready: make(chan struct{}, 1)}
}

// unpin lets go of one entry's hold on its chunk; q.mu is held.
func (q *queue) unpin(c *chunk) {
	if n := q.pinned[c] - 1; n > 0 {
		q.pinned[c] = n
		return
	}
	delete(q.pinned, c)
	q.bytes -= c.size
}

// overflow empties the queue into a resynchronisation, remembering the
// targets whose deletes it loses; q.mu is held.
func (q *queue) overflow() (dropped int) {
	for _, e := range q.order {
		if e.ev().val == nil {
			q.markDirty(e.ev().target)
		}
	}
	dropped = len(q.order)
	clear(q.idx)
	clear(q.order)
	q.order = q.order[:0]
	clear(q.pinned)
	q.bytes = 0
	q.resync = true
	return dropped
}

// push queues the events of a chunk that keep passes. It returns how many
// older values were replaced and how many events were dropped by an
// overflow, for the caller to count.
func (q *queue) push(c *chunk, keep func(*event) bool) (coalesced, dropped int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	added := false
	var refs int32 // entries of c queued
	for i := range c.evs {
		ev := &c.evs[i]
		if keep != nil && !keep(ev) {
			continue
		}
		added = true
		if q.resync {
			// The resync walk will send current values; only deletes
			// need remembering, and only by target.
			dropped++
			if ev.val == nil {
				q.markDirty(ev.target)
			}
			continue
		}
		k := qkey{ev.target, ev.key}
		if at, ok := q.idx[k]; ok {
			// The newer value takes the older one's place.
			if old := q.order[at].src; old != c {
				q.unpin(old)
				refs++
			}
			q.order[at] = qent{c, i}
			coalesced++
			continue
		}
		if len(q.order) >= q.max {
			if ev.val == nil {
				q.markDirty(ev.target)
			}
			dropped += q.overflow() + 1
			refs = 0
			continue
		}
		q.idx[k] = len(q.order)
		q.order = append(q.order, qent{c, i})
		refs++
	}
	if refs > 0 {
		if q.pinned[c] == 0 {
			q.bytes += c.size
		}
		q.pinned[c] += refs
		if q.maxBytes > 0 && q.bytes > q.maxBytes {
			dropped += q.overflow()
		}
	}
	if added {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	return coalesced, dropped
}

func (q *queue) markDirty(target string) {
	if q.dirty == nil {
		q.dirty = map[string]bool{}
	}
	q.dirty[target] = true
}

// drain takes everything queued. When the queue overflowed since the last
// drain, resync is true and dirty lists the targets that lost leaves.
func (q *queue) drain(buf []qent) (out []qent, resync bool, dirty []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out = append(buf[:0], q.order...)
	clear(q.order)
	q.order = q.order[:0]
	clear(q.idx)
	clear(q.pinned)
	q.bytes = 0
	resync = q.resync
	q.resync = false
	for t := range q.dirty {
		dirty = append(dirty, t)
	}
	q.dirty = nil
	return out, resync, dirty
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}
