package cluster

import (
	"fmt"
	"testing"
)

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func moved(a, b map[string]string) int {
	n := 0
	for t, m := range a {
		if bm, ok := b[t]; ok && bm != m {
			n++
		}
	}
	return n
}

// TestAssignBoundedLoad: every target has one owner among the members,
// and no member owns more than 1.25 times the average.
func TestAssignBoundedLoad(t *testing.T) {
	tests := []struct{ targets, members int }{
		{1000, 3}, {1000, 4}, {10, 3}, {1, 3}, {3, 5}, {997, 7}, {1000, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dx%d", tt.targets, tt.members), func(t *testing.T) {
			ts, ms := names("router-", tt.targets), names("meshd-", tt.members)
			a := Assign(ts, ms, DefaultLoadFactor)
			if len(a) != len(ts) {
				t.Fatalf("%d of %d targets assigned", len(a), len(ts))
			}
			load := map[string]int{}
			for _, m := range a {
				load[m]++
			}
			limit := Capacity(tt.targets, tt.members, DefaultLoadFactor)
			for m, n := range load {
				if n > limit {
					t.Errorf("%s owns %d, over the bound %d", m, n, limit)
				}
			}
			again := Assign(ts, ms, DefaultLoadFactor)
			if moved(a, again) != 0 {
				t.Error("the same sets gave another assignment")
			}
		})
	}
}

// TestAssignChurn: a member joining takes about 1/N of the targets, a
// member leaving moves about its own share, and a target added or
// removed moves few others. The bounds are the hashing's own spread over
// 1,000 targets: a fixed input, so not a sample.
func TestAssignChurn(t *testing.T) {
	ts := names("router-", 1000)
	tests := []struct {
		name     string
		from, to []string
		targets  []string // for the second assignment; nil: the same
		maxShare float64  // of the targets, moved
	}{
		{"a fourth member joins", names("meshd-", 3), names("meshd-", 4), nil, 0.25 * 1.35},
		{"a fifth member joins", names("meshd-", 4), names("meshd-", 5), nil, 0.20 * 1.35},
		{"one of four leaves", names("meshd-", 4), names("meshd-", 3), nil, 0.25 * 1.35},
		{"a target added", names("meshd-", 3), names("meshd-", 3), names("router-", 1001), 0.01},
		{"a target removed", names("meshd-", 3), names("meshd-", 3), names("router-", 999), 0.01},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			second := tt.targets
			if second == nil {
				second = ts
			}
			a, b := Assign(ts, tt.from, DefaultLoadFactor), Assign(second, tt.to, DefaultLoadFactor)
			n := moved(a, b)
			share := float64(n) / float64(len(ts))
			t.Logf("%d of %d targets moved (%.1f%%)", n, len(ts), 100*share)
			if share > tt.maxShare {
				t.Errorf("%.1f%% of the targets moved, want at most %.1f%%", 100*share, 100*tt.maxShare)
			}
		})
	}
}
