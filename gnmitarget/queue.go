package gnmitarget

import "sync"

type qkey struct{ target, key string }

type qent struct {
	ev event
	// src and idx locate ev in the chunk it came from, so that a whole run
	// of a chunk can be sent in its shared encoding.
	src *chunk
	idx int
}

// queue is one subscriber's bounded coalescing queue of leaf events.
type queue struct {
	mu     sync.Mutex
	max    int
	idx    map[qkey]*qent
	order  []*qent
	resync bool            // overflowed: resynchronise from the store on the next drain
	dirty  map[string]bool // targets that lost leaves while overflowed
	ready  chan struct{}   // signalled (capacity 1) when there is something to drain
}

func newQueue(max int) *queue {
	return &queue{max: max, idx: map[qkey]*qent{}, ready: make(chan struct{}, 1)}
}

// push queues the events of a chunk that keep passes. It returns how many
// older values were replaced and how many events were dropped by an
// overflow, for the caller to count.
func (q *queue) push(c *chunk, keep func(*event) bool) (coalesced, dropped int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	added := false
	for i := range c.evs {
		ev := &c.evs[i]
		target := ev.target
		if keep != nil && !keep(ev) {
			continue
		}
		added = true
		if q.resync {
			// The resync walk will send current values; only deletes
			// need remembering, and only by target.
			dropped++
			if ev.val == nil {
				q.markDirty(target)
			}
			continue
		}
		k := qkey{target, ev.key}
		if e := q.idx[k]; e != nil {
			e.ev, e.src, e.idx = *ev, c, i
			coalesced++
			continue
		}
		if len(q.order) >= q.max {
			dropped += len(q.order) + 1
			for _, e := range q.order {
				if e.ev.val == nil {
					q.markDirty(e.ev.target)
				}
			}
			if ev.val == nil {
				q.markDirty(target)
			}
			clear(q.idx)
			q.order = q.order[:0]
			q.resync = true
			continue
		}
		e := &qent{ev: *ev, src: c, idx: i}
		q.idx[k] = e
		q.order = append(q.order, e)
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
func (q *queue) drain(buf []*qent) (out []*qent, resync bool, dirty []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out = append(buf[:0], q.order...)
	clear(q.order)
	q.order = q.order[:0]
	clear(q.idx)
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
