//go:build integration

package e2e

import "testing"

// TestPageShort runs the page's benchmark for 10 s, so CI keeps `make
// bench-page` working: the page lists the fleet and takes live updates.
// It checks no timing: figures come from the benchmark.
func TestPageShort(t *testing.T) {
	bins, err := build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := runPage(t, bins, pageShort)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Sessions != pageShort.Targets*pageShort.Neighbors {
		t.Errorf("%d sessions listed", r.Sessions)
	}
	if r.RowUpdates == 0 || r.Frames == 0 {
		t.Errorf("no live updates reached the page: %.0f rows/s in %.1f frames/s", r.RowUpdates, r.Frames)
	}
}
