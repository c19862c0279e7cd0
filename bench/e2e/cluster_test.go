package e2e

import (
	"fmt"
	"testing"
	"time"
)

// clusterFull is issue 18's size: three replicas sharing 1,000 targets
// with a 10 s lease, the pause and the cut 30 s long, ten kills.
func clusterFull(f ClusterFault) ClusterScenario {
	return ClusterScenario{Fault: f, Replicas: 3, Targets: 1000, Neighbors: 10, PointsPerSec: 2000, LeaseTTL: 5 * time.Second, Hold: 30 * time.Second, Kills: 10}
}

// BenchmarkCluster is the full cluster chaos harness (make cluster-chaos):
// each fault on three replicas and 1,000 targets; a row whose checks
// fail fails.
func BenchmarkCluster(b *testing.B) {
	bins, err := build(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	var rows []*ClusterRow
	for _, f := range []ClusterFault{ClusterKill, ClusterPause, ClusterPartition, ClusterRestart} {
		b.Run(clusterName(f), func(b *testing.B) {
			for range b.N {
				row, err := runCluster(b, bins, clusterFull(f))
				if row != nil {
					rows = append(rows, row)
					fmt.Print(ClusterTable([]*ClusterRow{row}))
				}
				if err != nil {
					b.Fatal(err)
				}
				if row.Failed != "" {
					b.Error(row.Failed)
				}
			}
		})
	}
	if len(rows) > 0 {
		fmt.Print("\n== cluster\n" + ClusterTable(rows))
	}
}

// clusterName is a row's sub-benchmark name (make cluster-chaos CLUSTER=...).
func clusterName(f ClusterFault) string {
	return map[ClusterFault]string{ClusterKill: "kill-9", ClusterPause: "pause", ClusterPartition: "partition", ClusterRestart: "restart"}[f]
}
