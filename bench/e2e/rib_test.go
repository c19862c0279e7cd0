package e2e

import (
	"fmt"
	"testing"
)

// BenchmarkRIB is `make bench-rib`: the RIBs served over gNMI on the real
// meshd (rib.go); the figures are in the README.
func BenchmarkRIB(b *testing.B) {
	bins, err := build(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for _, sc := range ribScenarios {
		b.Run(sc.Name, func(b *testing.B) {
			for range b.N {
				r, err := runRIB(b, bins, sc)
				if err != nil {
					b.Fatal(err)
				}
				fmt.Print(r)
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(r.OnceTime.Seconds(), "once-s")
				b.ReportMetric(r.OnceCPU.Seconds(), "once-CPU-s")
				b.ReportMetric(float64(r.OncePeakRSS)/(1<<20), "once-peak-RSS-MiB")
				b.ReportMetric(r.ExtraPerRoute, "extra-B/route")
			}
		})
	}
}
