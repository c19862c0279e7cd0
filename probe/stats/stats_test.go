package stats

import (
	"testing"
	"time"
)

func TestWindowSlides(t *testing.T) {
	w := NewWindow(4, 0)
	for i, v := range []int64{10, 20, 30, 40, 50, 60} {
		w.Add(int64(i), v)
	}
	s := w.Summary(10)
	// Only 30..60 remain.
	if s.N != 4 || s.Min != 30 || s.Max != 60 || s.Mean != 45 || s.Last != 60 {
		t.Fatalf("summary %+v", s)
	}
	if s.P50 != 40 || s.P99 != 60 {
		t.Fatalf("p50 %d p99 %d", s.P50, s.P99)
	}
	if s.Jitter != 10 {
		t.Fatalf("jitter %v", s.Jitter)
	}
}

func TestWindowAges(t *testing.T) {
	sec := int64(time.Second)
	w := NewWindow(100, 10*time.Second)
	w.Add(0, 100)
	w.Add(5*sec, 300)
	if s := w.Summary(12 * sec); s.N != 1 || s.Min != 300 {
		t.Fatalf("after ageing: %+v", s)
	}
	if s := w.Summary(20 * sec); s.N != 0 || s.Last != 300 {
		t.Fatalf("empty window: %+v", s)
	}
}

func TestWindowPercentiles(t *testing.T) {
	tests := []struct {
		vals     []int64
		p50, p99 int64
	}{
		{[]int64{5}, 5, 5},
		{[]int64{1, 2}, 1, 2},
		{[]int64{3, 1, 2}, 2, 3},
	}
	for _, tc := range tests {
		w := NewWindow(100, 0)
		for i, v := range tc.vals {
			w.Add(int64(i), v)
		}
		s := w.Summary(0)
		if s.P50 != tc.p50 || s.P99 != tc.p99 {
			t.Errorf("%v: p50 %d p99 %d, want %d %d", tc.vals, s.P50, s.P99, tc.p50, tc.p99)
		}
	}
	// 1..100: nearest rank gives 50 and 99.
	w := NewWindow(100, 0)
	for i := int64(1); i <= 100; i++ {
		w.Add(i, i)
	}
	if s := w.Summary(100); s.P50 != 50 || s.P99 != 99 {
		t.Fatalf("1..100: p50 %d p99 %d", s.P50, s.P99)
	}
}

func TestWindowReset(t *testing.T) {
	w := NewWindow(10, 0)
	w.Add(1, 1)
	w.Reset()
	if s := w.Summary(2); s.N != 0 {
		t.Fatalf("after reset: %+v", s)
	}
}

func TestHops(t *testing.T) {
	tests := []struct{ ttl, hops uint8 }{
		{64, 0}, {63, 1}, {1, 0}, {2, 62}, {65, 63}, {128, 0}, {120, 8}, {255, 0}, {250, 5}, {129, 126},
	}
	for _, tc := range tests {
		if got := Hops(tc.ttl); got != tc.hops {
			t.Errorf("Hops(%d) = %d, want %d", tc.ttl, got, tc.hops)
		}
	}
}

func TestObserveTTL(t *testing.T) {
	p := NewPeer(10, 0)
	if _, ch := p.ObserveTTL(1, 64); ch {
		t.Fatal("first TTL is a change")
	}
	if _, ch := p.ObserveTTL(2, 64); ch {
		t.Fatal("same TTL is a change")
	}
	c, ch := p.ObserveTTL(3, 63)
	if !ch || c.OldHops != 0 || c.NewHops != 1 || c.OldTTL != 64 || c.NewTTL != 63 {
		t.Fatalf("change %+v %v", c, ch)
	}
	if p.HopChanges != 1 || p.LastHopChange != 3 {
		t.Fatalf("counters %d %d", p.HopChanges, p.LastHopChange)
	}
}

// TestRecent: Recent is the least of the last five samples, so a burst
// of four late ones (an idle test link saw 22.1 18.6 9.1 9.2 ms over a
// 2.1 ms path) never moves it and a step of five does; samples whose ACK
// rode on the peer's data count in the window but not in Recent or
// Baseline.
func TestRecent(t *testing.T) {
	ms := int64(time.Millisecond)
	type smp struct {
		rtt   int64
		piggy bool
	}
	plain := func(rtts ...int64) []smp {
		var out []smp
		for _, r := range rtts {
			out = append(out, smp{rtt: r})
		}
		return out
	}
	tests := []struct {
		name           string
		samples        []smp
		recent, base   int64
		windowMin, max int64
	}{
		{"one-sample", plain(5 * ms), 5 * ms, 5 * ms, 5 * ms, 5 * ms},
		{"burst-of-four", plain(2*ms, 2*ms, 22*ms, 18*ms, 9*ms, 9*ms), 2 * ms, 2 * ms, 2 * ms, 22 * ms},
		{"step", plain(1*ms, 1*ms, 36*ms, 36*ms, 37*ms, 36*ms, 38*ms), 36 * ms, 1 * ms, 1 * ms, 38 * ms},
		{"piggybacked-left-out", []smp{{1 * ms, false}, {17 * ms, true}, {18 * ms, true}, {17 * ms, true}, {17 * ms, true}, {17 * ms, true}, {18 * ms, true}},
			1 * ms, 1 * ms, 1 * ms, 18 * ms},
		{"only-piggybacked", []smp{{17 * ms, true}, {18 * ms, true}}, 0, 0, 17 * ms, 18 * ms},
	}
	for _, tc := range tests {
		p := NewPeer(20, 0)
		var now int64
		for i, sm := range tc.samples {
			now = int64(1_700_000_000+3*i) * 1e9
			p.AddSample(now, sm.rtt, sm.piggy)
		}
		s := p.Window.Summary(now)
		if p.Recent() != tc.recent || p.Baseline.Min(now) != tc.base || s.Min != tc.windowMin || s.Max != tc.max {
			t.Errorf("%s: recent %d baseline %d window %d-%d, want %d %d %d-%d", tc.name, p.Recent(), p.Baseline.Min(now), s.Min, s.Max,
				tc.recent, tc.base, tc.windowMin, tc.max)
		}
	}
}

// TestBaseline: the least RTT of the last hour, whatever the window holds.
func TestBaseline(t *testing.T) {
	t0 := int64(1_700_000_000) * 1e9
	min := int64(time.Minute)
	var p Peer
	p.Window = NewWindow(5, 0)
	p.AddSample(t0, 900_000, false)
	for i := int64(1); i <= 50; i++ {
		p.AddSample(t0+i*min/2, 36_000_000, false) // a step, for 25 minutes
	}
	if b := p.Baseline.Min(t0 + 25*min); b != 900_000 {
		t.Fatalf("baseline after 25 min of a step: %d, want the 0.9 ms before it", b)
	}
	if s := p.Window.Summary(t0 + 25*min); s.Min != 36_000_000 {
		t.Fatalf("window min %d: the window has moved on", s.Min)
	}
	if b := p.Baseline.Min(t0 + 61*min); b != 36_000_000 {
		t.Fatalf("baseline an hour on: %d, want the new level", b)
	}
	if b := (&Baseline{}).Min(t0); b != 0 {
		t.Fatalf("empty baseline %d", b)
	}
}
