package merge

import (
	"testing"
	"time"

	"github.com/meshd/meshd/change"
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
