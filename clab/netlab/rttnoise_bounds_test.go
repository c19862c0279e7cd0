package netlab_test

import (
	"strings"
	"testing"
)

// TestDelayBounds holds the lab's delay check to the noise it measures.
func TestDelayBounds(t *testing.T) {
	// A quiet lab's baseline: 20 samples of a 0.15-0.25 ms path.
	quiet := []float64{151, 160, 158, 170, 165, 180, 175, 190, 185, 200, 172, 168, 162, 178, 188, 195, 210, 240, 230, 250}
	// A loaded machine's: the least 438 µs, as in the CI run of issue 17,
	// and a wide spread.
	loaded := []float64{438.3, 452, 470, 488, 510, 530, 560, 590, 620, 650, 700, 740, 800, 850, 900, 980, 1100, 1250, 1400, 5200}
	// The CI run's samples under a 20 ms delay, which the old rule (least
	// ≥ 20 ms + the baseline's least - 0.2 ms) failed.
	ci := []float64{20262.75, 20198.0, 20393.6, 20236.7, 20319.1}
	for _, tc := range []struct {
		name     string
		baseline []float64
		delayed  []float64
		err      string // "" = within bounds
	}{
		{"quiet-delay-added", quiet, []float64{20160, 20170, 20300, 20155, 20190}, ""},
		{"loaded-ci-run", loaded, ci, ""},
		{"loaded-late-wire", loaded, []float64{21500, 21900, 22100, 21600, 21700}, ""},
		{"under-the-delay", loaded, []float64{19990, 20100, 20200, 20300, 20400}, "least RTT 19990.0"},
		{"quiet-too-low", quiet, []float64{20020, 20030, 20300, 20250, 20190}, "least RTT 20020.0"},
		{"delay-missing", quiet, []float64{160, 170, 180, 190, 200}, "least RTT 160.0"},
		{"delay-twice", loaded, []float64{40300, 40400, 40500, 40600, 40700}, "least RTT 40300.0"},
		{"quiet-late", quiet, []float64{20600, 20700, 20650, 20800, 20900}, "least RTT 20600.0"},
		{"baseline-too-short", quiet[:19], ci, "19 baseline samples, want at least 20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := newDelayBounds(20000, tc.baseline)
			if err == nil {
				err = b.check(tc.delayed)
			}
			t.Logf("%s", b)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("%v, want within bounds", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("error %v, want %q", err, tc.err)
			}
		})
	}
}

// TestDelayBoundsConfirmed: a least seen twice within the baseline's
// spread, from at least five samples.
func TestDelayBoundsConfirmed(t *testing.T) {
	b := delayBounds{AgreeWithin: 100, MinDelayedSize: 5}
	for _, tc := range []struct {
		delayed []float64
		want    bool
	}{
		{[]float64{20200, 20250}, false},
		{[]float64{20200, 20250, 20900, 21000, 22000}, true},
		{[]float64{20200, 20350, 20900, 21000, 22000}, false},
		{[]float64{20200, 20350, 20900, 21000, 22000, 20280}, true},
	} {
		if got := b.confirmed(tc.delayed); got != tc.want {
			t.Errorf("confirmed(%v) = %v, want %v", tc.delayed, got, tc.want)
		}
	}
}
