package e2e

import (
	"fmt"
	"testing"
)

// BenchmarkPage is the status page's figures (make bench-page): the real
// `meshd run` and a simulated fleet of 1,000 sessions whose rows change
// 1,000 times a second, shown in a real headless Chromium. -count
// repeats it; each run starts a fresh meshd, fleet and browser.
func BenchmarkPage(b *testing.B) {
	bins, err := build(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for _, sc := range pageScenarios {
		b.Run(sc.Name, func(b *testing.B) {
			for range b.N {
				r, err := runPage(b, bins, sc)
				if err != nil {
					b.Fatal(err)
				}
				fmt.Println(r)
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(float64(r.FirstList.Milliseconds()), "list-ms")
				b.ReportMetric(r.RenderMs, "render-ms/frame")
				b.ReportMetric(r.MainThread, "main-thread-s/s")
				b.ReportMetric(r.BrowserCPU, "chromium-CPU-s/s")
				b.ReportMetric(r.MeshdCPU, "meshd-CPU-s/s")
				b.ReportMetric(r.RowUpdates, "row-updates/s")
			}
		})
	}
}
