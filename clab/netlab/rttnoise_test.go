package netlab_test

import (
	"fmt"
	"math"
	"slices"
)

// delayBounds is the range the least RTT of a path may take once the lab's
// wire adds a delay to it, taken from samples of the same path without
// the delay (its baseline), all in µs. Nothing in it is a fixed
// tolerance: how far the least may stray is the baseline's own spread.
type delayBounds struct {
	Delay          float64
	N              int     // baseline samples
	Least, P75     float64 // of the baseline
	Spread         float64 // P75 - Least: the baseline's noise, spikes left out
	Lo, Hi         float64 // the least delayed RTT must lie in [Lo, Hi]
	AgreeWithin    float64 // two least delayed samples this close confirm the least
	MinDelayedSize int     // delayed samples to take at least
}

// minBaseline is how many samples a baseline needs: the least of fewer
// is too likely a slow moment of a loaded machine (a CI run's baseline of
// a just re-established session came out 438 µs, the path's under 200).
const minBaseline = 20

// newDelayBounds derives the bounds from the baseline samples.
//
// Lo: the wire holds each frame the delay from the kernel's receive
// time, so no RTT is below the delay (a fact of the wire, not a
// tolerance). Above that, the rest of the path is the baseline's, less
// what the wire took to read the frame in the delayed direction: the
// delay absorbs that (wire.frameAge), and on a loaded machine it is the
// larger part of the baseline's noise. So the least may be up to two
// spreads under delay + the baseline's least (one for that, one for how
// far the least of a few samples strays), and never under the delay.
//
// Hi: if the path behaves as it did in the baseline, the least of five
// delayed samples lies above delay + P75 only when all five fall in the
// baseline's top quarter (1 in 10³). Two spreads more allow for the load
// changing between the baseline and the delay, and for the wire's own
// timer.
//
// The spread is P75 - Least, not the whole range: up to a quarter of
// the samples may be the wire's spikes (3-152 ms in the idle lab, see
// probe's package doc) without widening it, and a least is a statement
// about the lower samples.
func newDelayBounds(delay float64, baseline []float64) (delayBounds, error) {
	if len(baseline) < minBaseline {
		return delayBounds{}, fmt.Errorf("%d baseline samples, want at least %d", len(baseline), minBaseline)
	}
	s := slices.Clone(baseline)
	slices.Sort(s)
	b := delayBounds{Delay: delay, N: len(s), Least: s[0], P75: s[int(math.Ceil(0.75*float64(len(s))))-1], MinDelayedSize: 5}
	b.Spread = b.P75 - b.Least
	b.Lo = delay + max(0, b.Least-2*b.Spread)
	b.Hi = delay + b.P75 + 2*b.Spread
	b.AgreeWithin = b.Spread
	return b, nil
}

// confirmed reports whether delayed samples suffice: at least
// MinDelayedSize, and the two least within AgreeWithin of each other (a
// least seen twice is the path's, not a lucky moment of the wire).
func (b delayBounds) confirmed(delayed []float64) bool {
	if len(delayed) < b.MinDelayedSize {
		return false
	}
	s := slices.Clone(delayed)
	slices.Sort(s)
	return s[1]-s[0] <= b.AgreeWithin
}

// check returns an error when the least of the delayed samples is
// outside [Lo, Hi].
func (b delayBounds) check(delayed []float64) error {
	if len(delayed) == 0 {
		return fmt.Errorf("no delayed samples")
	}
	least := slices.Min(delayed)
	if least < b.Lo || least > b.Hi {
		return fmt.Errorf("least RTT %.1f µs, want %.1f-%.1f µs: %s", least, b.Lo, b.Hi, b)
	}
	return nil
}

func (b delayBounds) String() string {
	return fmt.Sprintf("delay %.0f µs; baseline of %d samples: least %.1f, p75 %.1f, spread %.1f µs; bounds %.1f-%.1f µs",
		b.Delay, b.N, b.Least, b.P75, b.Spread, b.Lo, b.Hi)
}
