package merge

import (
	"testing"
	"time"

	"github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/stage"
)

// A consumer's batches are numbered in publish order, dropped ones
// included; LostSeq is the newest dropped; Deliver hands over the queued
// batches first, then takes every batch synchronously and drops none,
// and refuses when a batch newer than the resync it is given was lost.
func TestSubscriptionSeqAndDeliver(t *testing.T) {
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	sub := c.Subscribe("test", 2)
	at := time.Unix(1_700_000_000, 0)
	apply := func(i int) {
		t.Helper()
		if res := c.Apply([]change.Change{{Router: "r1", Path: change.NeighborPath("default", "192.0.2.1", "state", "peer-as"),
			Value: change.Uint(uint64(64512 + i)), Time: at, Source: change.SourceBMP}}); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	for i := 1; i <= 4; i++ {
		apply(i)
	}
	if got := sub.Seq(); got != 4 {
		t.Errorf("Seq = %d, want 4", got)
	}
	if got := sub.LostSeq(); got != 4 {
		t.Errorf("LostSeq = %d, want 4 (batches 3 and 4 dropped)", got)
	}
	if sub.Deliver(3, func(change.Batch) { t.Error("handed a batch by a refused Deliver") }) {
		t.Fatal("Deliver switched although batch 4, newer than 3, was lost")
	}
	var got []uint64
	if !sub.Deliver(4, func(b change.Batch) { got = append(got, b.Seq) }) {
		t.Fatal("Deliver refused although every loss is covered")
	}
	for i := 5; i <= 10; i++ {
		apply(i)
	}
	want := []uint64{1, 2, 5, 6, 7, 8, 9, 10}
	if len(got) != len(want) {
		t.Fatalf("handed %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("handed %v, want %v", got, want)
		}
	}
	if d := sub.Dropped(); d != 2 {
		t.Errorf("Dropped = %d, want 2", d)
	}
	sub.Close()
	if _, ok := <-sub.C(); ok {
		t.Error("channel open after Close")
	}
}

// A full queue with a wait: a consumer that reads, however slowly, loses
// nothing; one that is stuck costs the sources one wait, after which
// batches drop at once until one finds room, and then the next full
// queue is waited on again. While a publisher waits it holds its
// router's lock, so TryReadRouter reports the router busy instead of
// waiting for it.
func TestSubscriptionWait(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	apply := func(t *testing.T, c *Core, router string, i int) {
		t.Helper()
		if res := c.Apply([]change.Change{{Router: router, Path: change.NeighborPath("default", "192.0.2.1", "state", "peer-as"),
			Value: change.Uint(uint64(64512 + i)), Time: at, Source: change.SourceBMP}}); res.Err != nil {
			t.Error(res.Err)
		}
	}
	waits := func(c *Core, result string) float64 {
		return testutil.ToFloat64(c.m.waits.WithLabelValues("test", result))
	}

	t.Run("slow consumer loses nothing", func(t *testing.T) {
		c, err := New()
		if err != nil {
			t.Fatal(err)
		}
		// The wait is far longer than any read below takes, however
		// loaded the machine: this case is about order and loss.
		sub := c.Subscribe("test", 1, WithWait(time.Minute))
		const n = 50
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range n {
				apply(t, c, "r1", i)
			}
		}()
		var got []uint64
		for len(got) < n {
			b := <-sub.C()
			got = append(got, b.Seq)
			time.Sleep(time.Millisecond) // behind the publisher
		}
		<-done
		for i, s := range got {
			if s != uint64(i+1) {
				t.Fatalf("batch %d has Seq %d: %v", i, s, got)
			}
		}
		if d := sub.Dropped(); d != 0 {
			t.Errorf("Dropped = %d, want 0", d)
		}
		if waits(c, "room") == 0 {
			t.Error("no publisher waited for room: the queue of 1 never filled, the case tests nothing")
		}
	})

	t.Run("stuck consumer costs one wait", func(t *testing.T) {
		c, err := New()
		if err != nil {
			t.Fatal(err)
		}
		sub := c.Subscribe("test", 1, WithWait(20*time.Millisecond))
		apply(t, c, "r1", 0) // fills the queue
		for i := 1; i <= 9; i++ {
			apply(t, c, "r1", i)
		}
		if d := sub.Dropped(); d != 9 {
			t.Errorf("Dropped = %d, want 9", d)
		}
		if w := waits(c, "dropped"); w != 1 {
			t.Errorf("%v waits ran out, want 1: a stuck consumer must cost one wait, not one a batch", w)
		}
		<-sub.C()
		apply(t, c, "r1", 10) // finds room: waiting is back on
		apply(t, c, "r1", 11) // full again: waits, then drops
		if w := waits(c, "dropped"); w != 2 {
			t.Errorf("%v waits ran out, want 2: the wait did not come back once a batch found room", w)
		}
		if b := <-sub.C(); b.Lost != 9 {
			t.Errorf("the batch after the losses says %d lost, want 9", b.Lost)
		}
	})

	t.Run("TryReadRouter while a publisher waits", func(t *testing.T) {
		c, err := New()
		if err != nil {
			t.Fatal(err)
		}
		sub := c.Subscribe("test", 1, WithWait(time.Minute))
		apply(t, c, "r1", 0)
		done := make(chan struct{})
		go func() { defer close(done); apply(t, c, "r1", 1) }()
		// The publisher holds r1's lock for as long as it waits, a
		// minute: TryReadRouter must come back busy, not wait with it.
		deadline := time.Now().Add(30 * time.Second)
		for {
			found, busy := c.TryReadRouter("r1", func(func(stage.LeafFunc)) {})
			if !found {
				t.Fatal("r1 not found")
			}
			if busy {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("TryReadRouter(r1) never reported busy while a publisher waited on the full queue")
			}
			time.Sleep(time.Millisecond)
		}
		if w := waits(c, "room") + waits(c, "dropped"); w != 0 {
			t.Fatalf("the publisher's minute-long wait ended (%v) before the consumer read", w)
		}
		<-sub.C()
		<-done
		leaves := 0
		found, busy := c.TryReadRouter("r1", func(walk func(stage.LeafFunc)) {
			for range 2 {
				walk(func(string, string, *gnmi.TypedValue, time.Time, change.Source) { leaves++ })
			}
		})
		one := 0
		c.WalkRouter("r1", func(string, string, *gnmi.TypedValue, time.Time, change.Source) { one++ })
		if !found || busy || one == 0 || leaves != 2*one {
			t.Errorf("TryReadRouter(r1) = found %v, busy %v, %d leaves in two walks; want true, false, %d", found, busy, leaves, 2*one)
		}
		if found, busy := c.TryReadRouter("nobody", func(func(stage.LeafFunc)) { t.Error("read a router not held") }); found || busy {
			t.Errorf("TryReadRouter(nobody) = found %v, busy %v", found, busy)
		}
	})
}
