//go:build integration

package e2e

import "testing"

// TestE2EShort runs the whole-binary benchmark's short scenario once, so
// CI keeps `make bench-e2e` working: every part runs (fleet, subscribers,
// BMP, InfluxDB), nothing is dropped, and every route reaches InfluxDB.
// It checks no timing: figures come from the benchmark.
func TestE2EShort(t *testing.T) {
	bins, err := build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := run(t, bins, shortScenario)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + r.Report())
	if r.SyncedTargets != shortScenario.Targets {
		t.Errorf("%d of %d gNMI targets synced", r.SyncedTargets, shortScenario.Targets)
	}
	if r.Dropped != 0 || r.InfluxLost != 0 {
		t.Errorf("dropped: merge core %v, InfluxDB sink %v; want none", r.Dropped, r.InfluxLost)
	}
	if r.Updates == 0 || r.UpdatesReceived == 0 {
		t.Errorf("gNMI updates: %d sent, %d received in the window; want both > 0", r.Updates, r.UpdatesReceived)
	}
	if r.SubSamples == 0 {
		t.Error("the gNMI subscribers received nothing in the window")
	}
	if r.InfluxSamples == 0 {
		t.Error("no point stamped in the window reached InfluxDB")
	}
	if r.BMPRoutePoints != int64(r.BMPRoutesSent) {
		t.Errorf("bmp_route points in InfluxDB: %d, want %d (one per route sent)", r.BMPRoutePoints, r.BMPRoutesSent)
	}
	if r.StopErr != "" {
		t.Errorf("meshd did not stop cleanly: %s", r.StopErr)
	}
	if r.PeakRSS == 0 || r.SteadyCPU == 0 || r.BMPCPU == 0 {
		t.Errorf("no figures from /proc: peak RSS %d, steady CPU %v, BMP CPU %v", r.PeakRSS, r.SteadyCPU, r.BMPCPU)
	}
}
