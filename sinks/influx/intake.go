package influx

import (
	"sync/atomic"

	"github.com/meshd/meshd/change"
)

// intakeItems bounds the updates and events the sink holds between the
// merge core's queue and its consumer. The core's queue
// (merge.queue-depth, 4096 batches) is 0.2-0.7 s of a fleet's stream at
// 20-50k updates/s, and where meshd, its fleet and InfluxDB share the
// cores the consumer goroutine waits longer than that for a CPU now and
// then: the core then dropped batches for this sink every few seconds
// (200 × 100 at 20k updates/s), and each loss asked for a resync. A
// goroutine that only moves batches keeps up; this gives the consumer
// seconds of slack in tens of MB.
const intakeItems = 1 << 18

// intakeDepth bounds the batches held (a channel's slots).
const intakeDepth = 1 << 16

// intake moves batches from the core's queue into a deeper one of the
// sink's own. When that is full it waits, so the core's queue fills and
// the core drops and counts batches as it did without it: the intake
// adds depth, never a loss of its own.
type intake struct {
	sub  Subscription
	ch   chan change.Batch
	max  int64
	held atomic.Int64 // updates and events in ch
	room chan struct{}
	stop chan struct{}
	done chan struct{}
	// left is a batch taken from the core and not passed on when halt
	// stopped the intake; drainQueued takes it after ch.
	left *change.Batch
}

func newIntake(sub Subscription, depth int, items int64) *intake {
	in := &intake{sub: sub, ch: make(chan change.Batch, depth), max: items,
		room: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go in.run()
	return in
}

func (in *intake) run() {
	defer close(in.done)
	for {
		var b change.Batch
		var ok bool
		select {
		case <-in.stop:
			return
		case b, ok = <-in.sub.C():
		}
		if !ok {
			close(in.ch)
			return
		}
		n := int64(len(b.Updates) + len(b.Events))
		for h := in.held.Load(); h > 0 && h+n > in.max; h = in.held.Load() {
			select {
			case <-in.room:
			case <-in.stop:
				in.left = &b
				return
			}
		}
		in.held.Add(n)
		select {
		case in.ch <- b:
		case <-in.stop:
			in.held.Add(-n)
			in.left = &b
			return
		}
	}
}

// halt stops moving batches, so that the queues can be drained in order
// (a shutdown): ch, then left, then the core's.
func (in *intake) halt() {
	select {
	case <-in.stop:
	default:
		close(in.stop)
	}
	<-in.done
}

// took is told of every batch the consumer takes from C.
func (in *intake) took(b *change.Batch) {
	in.held.Add(-int64(len(b.Updates) + len(b.Events)))
	select {
	case in.room <- struct{}{}:
	default:
	}
}

// C is the sink's queue; it closes after the core's does.
func (in *intake) C() <-chan change.Batch { return in.ch }

// Dropped counts what the core dropped.
func (in *intake) Dropped() uint64 { return in.sub.Dropped() }
