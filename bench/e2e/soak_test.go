package e2e

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// soakRows are the soak's faults in the order they run.
var soakRows = []struct {
	name  string
	fault Fault
}{
	{"influx-down", FaultInfluxDown},
	{"influx-slow", FaultInfluxSlow},
	{"kill-9", FaultKill},
}

// Loads: the full soak's is issue 17's; the short one is what CI's
// 2-core machine carries beside the other tests.
var (
	soakFullLoad  = SoakLoad{Targets: 100, Neighbors: 100, PointsPerSec: 20000}
	soakShortLoad = SoakLoad{Targets: 20, Neighbors: 20, PointsPerSec: 2000}
)

// BenchmarkSoak is the full soak (make soak): each fault for 5 minutes
// (MESHD_SOAK_FAULT overrides) at 20k points/s; a row that loses a point,
// or whose meshd dropped one, fails.
func BenchmarkSoak(b *testing.B) {
	bins, err := build(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	dur := 5 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("MESHD_SOAK_FAULT")); err == nil {
		dur = d
	}
	var rows []*SoakRow
	for _, r := range soakRows {
		b.Run(r.name, func(b *testing.B) {
			for range b.N {
				row, err := runSoak(b, bins, r.fault, soakFullLoad, dur)
				if row != nil {
					rows = append(rows, row)
					fmt.Print(SoakTable([]*SoakRow{row}))
				}
				if err != nil {
					b.Fatal(err)
				}
				checkSoakRow(b, row)
			}
		})
	}
	fmt.Print("\n== soak\n" + SoakTable(rows))
}

// checkSoakRow fails a row that lost a point, counted points from
// nowhere, or whose meshd dropped anything.
func checkSoakRow(tb testing.TB, r *SoakRow) {
	tb.Helper()
	if r.Expected == 0 {
		tb.Errorf("%s: no point expected: the load did not run", r.Fault)
	}
	if r.Lost != 0 {
		tb.Errorf("%s: %d of %d points lost (%d found in InfluxDB)", r.Fault, r.Lost, r.Expected, r.Found)
	}
	if r.Found > r.Expected {
		tb.Errorf("%s: %d points found, %d expected: points the fleet did not send", r.Fault, r.Found, r.Expected)
	}
	if r.MeshdDropped != 0 {
		tb.Errorf("%s: meshd's counters say it dropped %.0f", r.Fault, r.MeshdDropped)
	}
	if r.SpoolPeak > r.SpoolBound {
		tb.Errorf("%s: spool peak %d bytes over its bound %d", r.Fault, r.SpoolPeak, r.SpoolBound)
	}
}
