//go:build integration

package e2e

import (
	"testing"
	"time"
)

// clusterShort is the cluster harness CI runs: every fault on three
// replicas sharing 30 targets, with a 2 s lease.
func clusterShort(f ClusterFault) ClusterScenario {
	return ClusterScenario{Fault: f, Replicas: 3, Targets: 30, Neighbors: 2, PointsPerSec: 200, LeaseTTL: 2 * time.Second, Hold: 6 * time.Second, Kills: 1}
}

// TestClusterShort runs the kill row small: no router collected by two
// replicas at once, every target re-homed, no replica over its bounded
// load, and no neighbor without a point for longer than the lease and a
// re-home allow.
func TestClusterShort(t *testing.T) {
	bins, err := build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var rows []*ClusterRow
	defer func() { t.Log("\n" + ClusterTable(rows)) }()
	// The other rows are left to make cluster-chaos: CI's 30 minutes are
	// nearly spent, and other CI tests take each path on real replicas
	// and a real etcd: a pause past the lease and a cut from etcd in
	// clab/netlab's TestLabReplicas (and a pause, with what the resumed
	// replica applied, in cmd/meshd's TestClusterSharesTheFleet); a cold
	// start of three in cluster/'s TestColdStart.
	for _, f := range []ClusterFault{ClusterKill} {
		t.Run(clusterName(f), func(t *testing.T) {
			row, err := runCluster(t, bins, clusterShort(f))
			if row != nil {
				rows = append(rows, row)
			}
			if err != nil {
				t.Fatal(err)
			}
			if row.Failed != "" {
				t.Error(row.Failed)
			}
		})
	}
}
