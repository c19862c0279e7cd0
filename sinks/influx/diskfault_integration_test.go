//go:build integration

package influx

import (
	"os"
	"testing"
	"time"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
)

// TestSpoolDirDeleted deletes the spool's directory while meshd runs and
// InfluxDB is down (an operator's rm -rf, a cleaner of /tmp), then sends
// as much again. The sink makes the directory again and goes on; a
// segment it still had open is copied back whole, and only the points of
// segments it had closed are lost, each counted: InfluxDB ends up with
// every point sent less exactly the ones meshd_influx_points_dropped_total
// {reason="spool_lost"} counts. (Before, the sink's reader failed to open
// the deleted segment once a second for good, and nothing more reached
// InfluxDB, while appends went on into the deleted file.)
func TestSpoolDirDeleted(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxBytes int64 // the spool's bound: its segments are an eighth of it
		lossy    bool  // segments closed before the deletion hold points
	}{
		{"one segment, copied back", 64 << 20, false},
		{"closed segments lost, counted", 1 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := testenv.StartInfluxd(t)
			in.CreateDB(t, "meshd")
			in.Stop()
			cfg := testConfig(t, in.URL, "meshd")
			cfg.SpoolDir = t.TempDir() + "/spool"
			cfg.SpoolMaxBytes = tc.maxBytes
			cfg.BatchSize = 500
			reg, sub, stop := startSink(t, cfg, 64)
			const total = 6000 // ~900 kB of line protocol
			base := time.Now().Add(-time.Hour)
			send := func(from, to int) {
				for i := from; i < to; i += 500 {
					sub.ch <- change.Batch{Events: routeEvents("r1", i, 500, base.Add(time.Duration(i)*time.Millisecond))}
					// Past the flush interval: one spool record a batch.
					time.Sleep(150 * time.Millisecond)
				}
			}
			send(0, total/2)
			testenv.WaitFor(t, 30*time.Second, "the first half spooled", func() bool {
				return metric(t, reg, "meshd_influx_points_spooled_total", "") == total/2
			})
			if err := os.RemoveAll(cfg.SpoolDir); err != nil {
				t.Fatal(err)
			}
			send(total/2, total)
			testenv.WaitFor(t, 30*time.Second, "the second half spooled", func() bool {
				return metric(t, reg, "meshd_influx_points_spooled_total", "") == total
			})
			if _, err := os.Stat(cfg.SpoolDir); err != nil {
				t.Fatalf("the spool directory was not made again: %v", err)
			}
			in.Start()
			lost := 0
			testenv.WaitFor(t, 60*time.Second, "every point not counted lost in InfluxDB", func() bool {
				lost = int(metric(t, reg, "meshd_influx_points_dropped_total", "spool_lost"))
				return count(t, in, "meshd", mBMPRoute, "prefix") == total-lost
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			got := count(t, in, "meshd", mBMPRoute, "prefix")
			t.Logf("points in InfluxDB %d of %d, counted lost %d", got, total, lost)
			if got != total-lost {
				t.Errorf("InfluxDB holds %d points; %d sent, %d counted lost", got, total, lost)
			}
			if tc.lossy && (lost == 0 || lost >= total/2) {
				t.Errorf("%d points counted lost; want some of the first half (its closed segments) and none of the second", lost)
			}
			if !tc.lossy && lost != 0 {
				t.Errorf("%d points counted lost; the one segment was open and should have been copied back", lost)
			}
		})
	}
}
