package influx

import (
	"slices"
	"testing"
	"time"
)

// TestUniqueTime: a state series' points keep their times unless one
// would land on, or just under, a time the series already holds, and no
// two points of a sequence end on one time, whatever the source's clock
// did.
func TestUniqueTime(t *testing.T) {
	s, h := int64(time.Second), int64(time.Hour)
	const t0 = int64(1_700_000_000) * int64(time.Second)
	tests := []struct {
		name string
		in   []int64 // offsets from t0
		want []int64
	}{
		{"in order", []int64{0, s, 2 * s}, []int64{0, s, 2 * s}},
		{"a burst on one time", []int64{0, 0, 0, s}, []int64{0, 1, 2, s}},
		{"just out of order", []int64{s, s - 5}, []int64{s, s + 1}},
		{"out of order by more than the window keeps its time", []int64{10 * s, 8 * s}, []int64{10 * s, 8 * s}},
		{"back to a time held just before", []int64{10 * s, 8 * s, 10 * s}, []int64{10 * s, 8 * s, 10*s + 1}},
		// The soak's clock row: a burst after the source's clock stepped
		// back an hour overwrote itself before.
		{"a burst after the clock stepped back", []int64{h, h, 0, 0, 0, s / 10, s / 10}, []int64{h, h + 1, 0, 1, 2, s / 10, s/10 + 1}},
		{"and forward again", []int64{h, 0, 0, h + s, h + s}, []int64{h, 0, 1, h + s, h + s + 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEncoder()
			var got []int64
			for _, off := range tc.in {
				got = append(got, e.uniqueTime([]byte("bgp_neighbor,router=r1"), t0+off)-t0)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("times %v became %v, want %v", tc.in, got, tc.want)
			}
			seen := map[int64]bool{}
			for _, g := range got {
				if seen[g] {
					t.Errorf("two points at %d: %v", g, got)
				}
				seen[g] = true
			}
		})
	}
}
