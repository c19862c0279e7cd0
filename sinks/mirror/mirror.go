// Package mirror keeps a sink's in-memory copy of the merged state level
// with the merge core: the gNMI target's store, the status page's rows.
//
// Follow starts from the core's snapshot, router by router, then switches
// the sink's feed to synchronous delivery (merge.Subscription.Deliver):
// every batch is handed to the copy in the publisher's goroutine and none
// is ever dropped. A copy's write is bounded in-memory work; a sink
// goroutine fed by a queue was starved by the collector goroutines during
// a fleet's sync, lost batches and resynchronised for tens of seconds,
// during which the copy served values seconds late.
package mirror

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/stage"
)

// Copy is the state a sink keeps. Write is called from the sources'
// goroutines, several at once for different routers (one router's batches
// in order), so it must be safe for concurrent use.
type Copy interface {
	// Replace makes a router's whole state ups (none: the router is gone).
	Replace(router string, ups []change.Update)
	// Write applies changed leaves and the events published with them.
	Write(ups []change.Update, events []change.Event)
	// Routers lists the routers the copy holds.
	Routers() []string
}

// Metrics counts a mirror's work; nil counters are not counted.
type Metrics struct {
	Resyncs prometheus.Counter // resynchronisations from the snapshot
	Batches prometheus.Counter // batches applied
}

// Follow brings c level with the core and switches feed to synchronous
// delivery into it, resynchronising again while batches were lost before
// the switch. It reports false when the feed closed first. After the
// switch the feed's channel stays empty until it is closed.
func Follow(feed stage.Feed, snap stage.Snapshotter, c Copy, m Metrics, log *slog.Logger) bool {
	a := &applier{feed: feed, snap: snap, c: c, m: m, log: log}
	for {
		a.resync()
		if a.closed {
			return false
		}
		if feed.Deliver(a.cut0, a.deliver) {
			return true
		}
		log.Warn("missed changes; resynchronising from the merged state", slog.Uint64("dropped", feed.Dropped()))
	}
}

func inc(c prometheus.Counter) {
	if c != nil {
		c.Inc()
	}
}

// deliver applies one batch handed over by the core: the ones still
// queued at the switch (through the resync's skipping, one at a time),
// then the live ones, several at once for different routers.
func (a *applier) deliver(b change.Batch) {
	if b.Seq <= a.maxCut {
		// Only batches queued before the switch are numbered this low:
		// a publisher numbers and hands over a batch under the lock
		// Deliver takes. They come one at a time, so a.buf is free.
		a.add(b)
		a.flush()
		return
	}
	inc(a.m.Batches)
	a.c.Write(b.Updates, b.Events)
}

// maxWrite bounds the updates one write gathers while the resync drains
// the queue: a write per thousands of leaves rather than one per batch.
const maxWrite = 8192

// applier brings the copy level with the merge core before the switch to
// synchronous delivery: a resync, router by router, and the batches
// queued meanwhile.
//
// The resync must not undo itself. Batches wait in the queue, so those
// queued before a router's snapshot was taken are older than it, and
// applying them after it would take their leaves back in time (and show
// subscribers old values with old timestamps). So it reads the
// subscription's Seq before each router's snapshot; the router's batches
// numbered up to it are in the snapshot and are skipped when they come.
// Between two routers it applies what has queued meanwhile, so a resync
// of a large fleet does not stop the queue for its whole length. (Before,
// the gNMI target read a queue for good: at 200 routers x 100 neighbors
// the fleet's sync filled it, the whole-fleet resync that followed took
// seconds and lost the batches that came meanwhile, and so on: every
// update reached subscribers seconds late, and the queued batches behind
// each resync took leaves back in time.) Events are no state: a queued
// batch's events are always applied.
type applier struct {
	feed   stage.Feed
	snap   stage.Snapshotter
	c      Copy
	m      Metrics
	log    *slog.Logger
	closed bool
	buf    []change.Update
	events []change.Event
	// cuts are the last resync's Seq per router; cut0 is the Seq read
	// before it listed the routers, for routers it did not see (gone from
	// the core, their queued batches are older than the snapshot).
	cuts   map[string]uint64
	cut0   uint64
	maxCut uint64
}

// add queues b's updates for the next write, less those the resync
// already holds.
func (a *applier) add(b change.Batch) {
	inc(a.m.Batches)
	a.events = append(a.events, b.Events...)
	if b.Seq > a.maxCut {
		a.buf = append(a.buf, b.Updates...)
		return
	}
	for _, u := range b.Updates {
		cut, ok := a.cuts[u.Router]
		if !ok {
			cut = a.cut0
		}
		if b.Seq > cut {
			a.buf = append(a.buf, u)
		}
	}
}

// flush writes the gathered updates and events.
func (a *applier) flush() {
	if len(a.buf) == 0 && len(a.events) == 0 {
		return
	}
	a.c.Write(a.buf, a.events)
	// The values are the core's; do not keep them alive.
	clear(a.buf)
	clear(a.events)
	a.buf, a.events = a.buf[:0], a.events[:0]
}

// drain applies what is queued now, without waiting.
func (a *applier) drain() {
	for !a.closed {
		select {
		case b, ok := <-a.feed.C():
			if !ok {
				a.closed = true
				break
			}
			a.add(b)
			if len(a.buf) >= maxWrite {
				a.flush()
			}
			continue
		default:
		}
		break
	}
	a.flush()
}

// resync makes the copy equal to the merge core's state, router by
// router, and repeats while batches it may not cover were lost meanwhile.
func (a *applier) resync() {
	for pass := 0; ; pass++ {
		inc(a.m.Resyncs)
		cut0 := a.feed.Seq()
		names := a.snap.Routers()
		seen := make(map[string]bool, len(names))
		for _, n := range names {
			seen[n] = true
		}
		// Routers held but no longer in the core are replaced by their
		// (empty) snapshot, which removes them unless they came back
		// meanwhile.
		for _, t := range a.c.Routers() {
			if !seen[t] {
				names = append(names, t)
			}
		}
		cuts := make(map[string]uint64, len(names))
		// The skipping must already use this pass's cuts, so that the
		// batches drained between routers are judged by them.
		a.cuts, a.cut0, a.maxCut = cuts, cut0, cut0
		for _, n := range names {
			cut := a.feed.Seq()
			ups := a.snap.Snapshot(n)
			cuts[n] = cut
			a.maxCut = max(a.maxCut, cut)
			a.c.Replace(n, ups)
			a.drain()
		}
		if a.closed || a.feed.LostSeq() <= cut0 {
			return
		}
		a.log.Warn("missed changes while resynchronising; again",
			slog.Int("pass", pass+1), slog.Uint64("dropped", a.feed.Dropped()))
	}
}
