//go:build integration

package e2e

import (
	"testing"
	"time"
)

// TestSoakShort is the soak CI runs (make soak-short): every row of
// BenchmarkSoak, its fault really injected, smaller and shorter (each
// InfluxDB or process fault 15 s at 2,000 points/s), and the same checks:
// 0 points lost by InfluxDB's count. It checks no timing.
func TestSoakShort(t *testing.T) {
	bins, err := build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var rows []*SoakRow
	defer func() { t.Log("\n" + SoakTable(rows)) }()
	for _, r := range soakRows {
		t.Run(r.name, func(t *testing.T) {
			row, err := r.run(t, bins, false, 15*time.Second)
			if row != nil {
				rows = append(rows, row)
			}
			if err != nil {
				t.Fatal(err)
			}
			checkSoakRow(t, row)
		})
	}
}
