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
// sink's own. When that is full too, batches are dropped and counted as
// the core's are: the next batch passed on carries the count in Lost,
// which makes the consumer resynchronise.
type intake struct {
	sub     Subscription
	ch      chan change.Batch
	max     int64
	held    atomic.Int64 // updates and events in ch
	dropped atomic.Uint64
}

func newIntake(sub Subscription, depth int, items int64) *intake {
	in := &intake{sub: sub, ch: make(chan change.Batch, depth), max: items}
	go in.run()
	return in
}

func (in *intake) run() {
	defer close(in.ch)
	var lost uint64
	for b := range in.sub.C() {
		b.Lost += lost
		n := int64(len(b.Updates) + len(b.Events))
		if in.held.Load()+n <= in.max || len(in.ch) == 0 {
			in.held.Add(n)
			select {
			case in.ch <- b:
				lost = 0
				continue
			default:
				in.held.Add(-n)
			}
		}
		lost = b.Lost + uint64(n)
		in.dropped.Add(uint64(n))
	}
}

// took is told of every batch the consumer takes from C.
func (in *intake) took(b *change.Batch) { in.held.Add(-int64(len(b.Updates) + len(b.Events))) }

// C is the sink's queue; it closes after the core's does.
func (in *intake) C() <-chan change.Batch { return in.ch }

// Dropped counts what the core and the intake dropped.
func (in *intake) Dropped() uint64 { return in.sub.Dropped() + in.dropped.Load() }
