//go:build integration

package e2e

import "testing"

// TestRIBShort runs the RIB benchmark on a 20,000-route table, so CI keeps
// `make bench-rib` working: the ON_CHANGE subscriber gets every route of
// the table as it comes, and the ONCE serves every route. It checks no
// timing: figures come from the benchmark.
func TestRIBShort(t *testing.T) {
	bins, err := build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := runRIB(t, bins, ribShort)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Streamed != r.Routes || r.OnceRoutes != r.Routes {
		t.Errorf("the stream had %d routes and the ONCE served %d, of %d", r.Streamed, r.OnceRoutes, r.Routes)
	}
}
