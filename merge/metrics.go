package merge

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	changes *prometheus.CounterVec
	dropped *prometheus.CounterVec
	waited  *prometheus.CounterVec
	waits   *prometheus.CounterVec
	leaves  prometheus.GaugeFunc
	routers prometheus.GaugeFunc
}

// newMetrics reads the leaf and router counts when scraped, not on every
// Apply.
func newMetrics(leaves, routers *atomic.Int64) *metrics {
	return &metrics{
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshd_merge_changes_total",
			Help: "Changes handed to the merge core, by what became of them.",
		}, []string{"result"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshd_merge_dropped_total",
			Help: "Updates and events a consumer missed because its queue was full.",
		}, []string{"consumer"}),
		waited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshd_merge_queue_wait_seconds_total",
			Help: "Time sources were held back waiting for room in a consumer's full queue (merge.queue-wait).",
		}, []string{"consumer"}),
		waits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshd_merge_queue_waits_total",
			Help: "Batches that found a consumer's queue full and waited for room, by whether room came (room) or the wait ran out and the batch was dropped (dropped).",
		}, []string{"consumer", "result"}),
		leaves: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "meshd_merge_leaves",
			Help: "Leaves held in the merged state.",
		}, func() float64 { return float64(leaves.Load()) }),
		routers: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "meshd_merge_routers",
			Help: "Routers held in the merged state.",
		}, func() float64 { return float64(routers.Load()) }),
	}
}

func (m *metrics) register(reg prometheus.Registerer) {
	reg.MustRegister(m.changes, m.dropped, m.waited, m.waits, m.leaves, m.routers)
}

func (m *metrics) observe(r *Result) {
	add := func(label string, n int) {
		if n > 0 {
			m.changes.WithLabelValues(label).Add(float64(n))
		}
	}
	add("applied", r.Applied)
	add("unchanged", r.Unchanged)
	add("outranked", r.Outranked)
	add("stale", r.Stale)
	add("invalid", r.Invalid)
}
