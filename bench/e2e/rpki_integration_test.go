//go:build integration

package e2e

import "testing"

// TestRPKIShort runs the RPKI benchmark on a 50,000-route table, so CI
// keeps `make bench-rpki` working: every VRP change reaches the held
// routes' states. It checks no timing: figures come from the benchmark.
func TestRPKIShort(t *testing.T) {
	bins, err := build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := runRPKI(t, bins, rpkiShort)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	// Every VRP of a serial delta changes its own route's state, and
	// maybe those of routes under it; a whole set moved changes every
	// valid route's.
	for _, p := range r.Passes {
		want := float64(p.VRPs)
		if p.VRPs > r.VRPs {
			want = float64(r.Valid)
		}
		if p.Changed < want {
			t.Errorf("%s: %v states changed for %d VRPs changed", p.What, p.Changed, p.VRPs)
		}
		if p.Revalidated < p.Changed {
			t.Errorf("%s: %v routes validated again, %v changed", p.What, p.Revalidated, p.Changed)
		}
	}
}
