package e2e

import (
	"fmt"
	"testing"
)

// BenchmarkRPKI is route origin validation's figures (make bench-rpki):
// a 1M-route table validated as it comes, then the VRPs changed by
// serial deltas and a whole set, on the real `meshd run`. -count repeats
// it; each run starts a fresh meshd, cache and InfluxDB.
func BenchmarkRPKI(b *testing.B) {
	bins, err := build(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for _, sc := range rpkiScenarios {
		b.Run(sc.Name, func(b *testing.B) {
			for range b.N {
				r, err := runRPKI(b, bins, sc)
				if err != nil {
					b.Fatal(err)
				}
				fmt.Print(r)
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(r.LoadCPU.Seconds(), "load-CPU-s")
				b.ReportMetric(float64(r.PeakRSS)/(1<<20), "peak-RSS-MiB")
				if len(r.Passes) > 0 {
					b.ReportMetric(float64(r.Passes[0].Pass.Microseconds())/1e3, "first-delta-pass-ms")
				}
			}
		})
	}
}
