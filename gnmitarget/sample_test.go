package gnmitarget

import (
	"fmt"
	"slices"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
)

// A SAMPLE interval of 0, or below the minimum, is served at the minimum:
// a client asking for 0 or 10 ms must not get a sample every tick of its
// own choosing.
func TestStreamSampleIntervalRaisedToMinimum(t *testing.T) {
	const min = 150 * time.Millisecond
	for _, asked := range []time.Duration{0, 10 * time.Millisecond} {
		t.Run(fmt.Sprint(asked), func(t *testing.T) {
			s, addr := startServer(t, WithMinSampleInterval(min))
			ups := nbr("default", "192.0.2.1", "ESTABLISHED", 10)
			for i := range ups {
				ups[i].Time = t0
			}
			s.Update("r1", ups)
			sl := streamList("r1", gpb.SubscriptionMode_SAMPLE, "/network-instances")
			sl.Subscription[0].SampleInterval = uint64(asked)
			r := subscribe(t, dial(t, addr), sl)
			r.untilSync(t, 5*time.Second)
			start := time.Now()
			at, _ := sampleTimes(t, r, 1500*time.Millisecond)
			// 10 samples due at 150..1500 ms; an interval left at 10 ms
			// would give about 150.
			if len(at) < 7 || len(at) > 13 {
				t.Fatalf("%d samples in 1.5s asking %v, want 10±3 at the %v minimum", len(at), asked, min)
			}
			gaps := make([]time.Duration, len(at))
			prev := start
			for i, a := range at {
				gaps[i], prev = a.Sub(prev), a
			}
			slices.Sort(gaps)
			if med := gaps[len(gaps)/2]; med < min*3/4 || med > min*5/4 {
				t.Errorf("median gap %v, want %v±25%% (gaps %v)", med, min, gaps)
			}
		})
	}
}

// A SAMPLE subscription learns of a neighbor or a router going away at
// once, not at the next sample (a sample cannot show that a leaf is gone).
func TestStreamSampleDeletes(t *testing.T) {
	for _, suppress := range []bool{false, true} {
		t.Run(fmt.Sprintf("suppress_redundant=%v", suppress), func(t *testing.T) {
			s, addr := startServer(t, WithMinSampleInterval(50*time.Millisecond))
			s.Update("r1", append(nbr("default", "192.0.2.1", "ESTABLISHED", 10), nbr("default", "192.0.2.2", "ESTABLISHED", 10)...))
			s.Update("r2", nbr("default", "192.0.2.9", "ESTABLISHED", 10))
			// An interval far longer than the test: whatever arrives is
			// not a sample.
			sl := streamList("*", gpb.SubscriptionMode_SAMPLE, "/network-instances")
			sl.Subscription[0].SampleInterval = uint64(time.Hour)
			sl.Subscription[0].SuppressRedundant = suppress
			r := subscribe(t, dial(t, addr), sl)
			if got := r.untilSync(t, 5*time.Second); len(got.vals) != 12 {
				t.Fatalf("initial = %v", got.keys())
			}

			s.Update("r1", []change.Update{{Path: change.NeighborPath("default", "192.0.2.1"), Time: t0.Add(time.Hour)}})
			got := newLeaves()
			for len(got.deletes) < 4 {
				got.add(r.next(t, 2*time.Second).GetUpdate())
			}
			slices.Sort(got.deletes)
			want := []string{
				nkey("r1", "default", "192.0.2.1", "config", "peer-as"),
				nkey("r1", "default", "192.0.2.1", "state", "messages", "received", "UPDATE"),
				nkey("r1", "default", "192.0.2.1", "state", "peer-as"),
				nkey("r1", "default", "192.0.2.1", "state", "session-state"),
			}
			if !slices.Equal(got.deletes, want) || got.n != 0 {
				t.Errorf("neighbor gone: deletes %q and %d updates, want deletes %q only", got.deletes, got.n, want)
			}

			s.DeleteTarget("r2")
			got = newLeaves()
			for len(got.deletes) < 4 {
				got.add(r.next(t, 2*time.Second).GetUpdate())
			}
			if hasPrefix(got.deletes, "r2|") != 4 || got.n != 0 {
				t.Errorf("router gone: deletes %q and %d updates", got.deletes, got.n)
			}
			r.quiet(t, 200*time.Millisecond)
		})
	}
}

// TARGET_DEFINED in a STREAM is served as ON_CHANGE: a change arrives at
// once, not at a sample interval.
func TestStreamTargetDefined(t *testing.T) {
	s, addr := startServer(t, WithMinSampleInterval(time.Hour))
	s.Update("r1", nbr("default", "192.0.2.1", "ESTABLISHED", 10))
	r := subscribe(t, dial(t, addr), streamList("r1", gpb.SubscriptionMode_TARGET_DEFINED, "/network-instances"))
	if got := r.untilSync(t, 5*time.Second); len(got.vals) != 4 {
		t.Fatalf("initial = %v", got.keys())
	}
	r.quiet(t, 200*time.Millisecond)
	p := change.NeighborPath("default", "192.0.2.1", "state", "session-state")
	s.Update("r1", []change.Update{leafUp(p, change.String("IDLE"), t0.Add(time.Hour))})
	n := r.next(t, 2*time.Second).GetUpdate()
	if len(n.GetUpdate()) != 1 || n.GetUpdate()[0].GetVal().GetStringVal() != "IDLE" || n.GetTimestamp() != t0.Add(time.Hour).UnixNano() {
		t.Errorf("change = %v", n)
	}
}

// After a queue overflow the subscriber is resynchronised: the subscribed
// paths of a target that lost leaves are deleted and the current values
// sent again. Whatever the mode, the client must end up holding exactly
// what the store holds, neighbors that never changed included (with
// suppress_redundant no later sample would resend them).
func TestOverflowResyncRestoresUnchangedLeaves(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mode     gpb.SubscriptionMode
		suppress bool
	}{
		{"on_change", gpb.SubscriptionMode_ON_CHANGE, false},
		{"sample", gpb.SubscriptionMode_SAMPLE, false},
		{"sample suppress_redundant", gpb.SubscriptionMode_SAMPLE, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Removing a neighbor of 6 leaves is one write of 6 deletes:
			// more than a queue of 4 holds, so it overflows whatever the
			// reader's pace.
			const queue = 4
			s, addr := startServer(t, WithQueueSize(queue), WithMinSampleInterval(50*time.Millisecond))
			gone := append(nbr("default", "192.0.2.1", "ESTABLISHED", 10),
				leafUp(change.NeighborPath("default", "192.0.2.1", "state", "local-as"), change.Uint(65000), t0),
				leafUp(change.NeighborPath("default", "192.0.2.1", "state", "neighbor-address"), change.String("192.0.2.1"), t0))
			s.Update("r1", append(gone, nbr("default", "192.0.2.2", "ACTIVE", 7)...))
			sl := streamList("r1", tc.mode, "/")
			sl.Subscription[0].SampleInterval = uint64(100 * time.Millisecond)
			sl.Subscription[0].SuppressRedundant = tc.suppress
			r := subscribe(t, dial(t, addr), sl)
			view := r.untilSync(t, 5*time.Second)
			if len(view.vals) != 10 {
				t.Fatalf("initial = %v", view.keys())
			}

			s.Update("r1", []change.Update{{Path: change.NeighborPath("default", "192.0.2.1"), Time: t0.Add(time.Hour)}})
			want := map[string]string{
				nkey("r1", "default", "192.0.2.2", "state", "session-state"):                  "ACTIVE",
				nkey("r1", "default", "192.0.2.2", "state", "peer-as"):                        "65001",
				nkey("r1", "default", "192.0.2.2", "state", "messages", "received", "UPDATE"): "7",
				nkey("r1", "default", "192.0.2.2", "config", "peer-as"):                       "65001",
			}
			// A resync or a sample comes within one sample interval; no
			// timer of the server's is longer. So 100 intervals is a
			// liveness bound a loaded machine (with -race) still meets,
			// and short of forever.
			deadline := time.Now().Add(10 * time.Second)
			for !sameVals(view.vals, want) {
				if time.Now().After(deadline) {
					t.Fatalf("subscriber holds %q, want %q", view.keys(), keysOf(want))
				}
				select {
				case resp, ok := <-r.ch:
					if !ok {
						t.Fatalf("stream ended: %v", <-r.err)
					}
					view.add(resp.GetUpdate())
				case <-time.After(time.Until(deadline)):
				}
			}
			var resyncs int64
			for _, sub := range *s.subs.Load() {
				resyncs += sub.resyncs.Load()
			}
			if resyncs == 0 {
				t.Error("the queue never overflowed: the test did not exercise a resync")
			}
		})
	}
}

func sameVals(got, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func keysOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
