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

// TestClusterShort runs the kill and pause rows small: no router collected
// by two replicas at once (but while one is paused), every target re-homed,
// no replica over its bounded load, no neighbor without a point for
// longer than the lease and a re-home allow, and nothing applied by a
// paused replica after it resumes.
func TestClusterShort(t *testing.T) {
	bins, err := build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var rows []*ClusterRow
	defer func() { t.Log("\n" + ClusterTable(rows)) }()
	// The cut from etcd and the restart of all are left to make
	// cluster-chaos: CI's 30 minutes are nearly spent, and cluster/'s
	// own tests cover both paths on a real etcd (a member whose client
	// is cut, a cold start of three).
	for _, f := range []ClusterFault{ClusterKill, ClusterPause} {
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
