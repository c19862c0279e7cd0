package cluster

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a member's Prometheus series.
type metrics struct {
	members                   prometheus.Gauge
	claimed, released, fenced prometheus.Counter
	owned, leaseLeft          prometheus.GaugeFunc
}

func newMetrics(m *Member) metrics {
	return metrics{
		members: prometheus.NewGauge(prometheus.GaugeOpts{Name: "meshd_cluster_members",
			Help: "Live members of the cluster, as this replica last read them."}),
		claimed: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_cluster_claims_total",
			Help: "Targets this replica took ownership of."}),
		released: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_cluster_releases_total",
			Help: "Targets this replica gave up on a new assignment."}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_cluster_fenced_total",
			Help: "Times this replica gave up every target because its lease's deadline passed without a renewal (paused, or cut from etcd)."}),
		owned: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshd_cluster_owned_targets",
			Help: "Targets this replica owns."}, func() float64 { return float64(len(m.Owned())) }),
		leaseLeft: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshd_cluster_lease_seconds_left",
			Help: "Time until this replica's lease's deadline, as it reckons it (negative: past it)."},
			func() float64 { return time.Until(m.getDeadline()).Seconds() }),
	}
}

// Register adds the member's series to reg.
func (m *Member) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.m.members, m.m.claimed, m.m.released, m.m.fenced, m.m.owned, m.m.leaseLeft} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
