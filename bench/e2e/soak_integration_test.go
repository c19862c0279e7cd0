//go:build integration

package e2e

import (
	"testing"
	"time"
)

// TestSoakShort is the soak CI runs (make soak-short): every fault of
// BenchmarkSoak, really injected, for 20 s at 2,000 points/s, and the
// same check: 0 points lost by InfluxDB's count. It checks no timing.
func TestSoakShort(t *testing.T) {
	bins, err := build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var rows []*SoakRow
	defer func() { t.Log("\n" + SoakTable(rows)) }()
	for _, r := range soakRows {
		row, err := runSoak(t, bins, r.fault, soakShortLoad, 20*time.Second)
		if row != nil {
			rows = append(rows, row)
		}
		if err != nil {
			t.Fatalf("%s: %v", r.fault, err)
		}
		checkSoakRow(t, row)
	}
}
