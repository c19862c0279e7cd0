package gnmitarget

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	rpcs          *prometheus.CounterVec
	authFailures  *prometheus.CounterVec
	subscriptions *prometheus.GaugeVec
	sent          prometheus.Counter
	shared        prometheus.Counter
	dropped       *prometheus.CounterVec
	resyncs       prometheus.Counter
	leaves        prometheus.Gauge
	targets       prometheus.Gauge
	panics        *prometheus.CounterVec
	limits        *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		rpcs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshd_gnmitarget_rpcs_total",
			Help: "gNMI RPCs handled, by RPC and gRPC status code.",
		}, []string{"rpc", "code"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshd_gnmitarget_auth_failures_total",
			Help: "RPCs refused for missing or wrong credentials.",
		}, []string{"reason"}),
		subscriptions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meshd_gnmitarget_subscriptions",
			Help: "Active Subscribe RPCs by mode.",
		}, []string{"mode"}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshd_gnmitarget_updates_sent_total",
			Help: "Leaf updates and deletes sent to subscribers.",
		}),
		shared: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshd_gnmitarget_updates_shared_total",
			Help: "Leaf updates and deletes sent in a notification encoded once and shared by every subscriber that got it whole.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshd_gnmitarget_updates_dropped_total",
			Help: "Leaf values a slow subscriber never saw: replaced by a newer value (coalesced) or lost to a queue overflow (overflow, followed by a resync).",
		}, []string{"reason"}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshd_gnmitarget_resyncs_total",
			Help: "Subscriber resynchronisations after a queue overflow.",
		}),
		leaves: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshd_gnmitarget_leaves",
			Help: "Leaves held in the store.",
		}),
		targets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshd_gnmitarget_targets",
			Help: "Targets held in the store.",
		}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshd_gnmitarget_panics_total",
			Help: "RPCs that panicked (a bug): answered with INTERNAL and logged with the stack; the server goes on.",
		}, []string{"rpc"}),
		limits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshd_gnmitarget_limit_refusals_total",
			Help: "RPCs refused or ended with ResourceExhausted by a limit (max-subscriptions-per-client, max-subscriptions, max-recv-msg-size, max-send-msg-size).",
		}, []string{"limit"}),
	}
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.rpcs, m.authFailures, m.subscriptions, m.sent, m.shared, m.dropped, m.resyncs, m.leaves, m.targets, m.panics, m.limits} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
