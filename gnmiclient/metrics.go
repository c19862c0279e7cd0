package gnmiclient

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	state         *prometheus.GaugeVec
	notifications *prometheus.CounterVec
	leaves        *prometheus.CounterVec
	unknown       *prometheus.CounterVec
	invalid       *prometheus.CounterVec
	failures      *prometheus.CounterVec
	targets       prometheus.Gauge
	decodeSeconds prometheus.Counter
	applySeconds  prometheus.Counter
	generic       prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meshd_gnmi_target_state",
			Help: "1 for the state a target's gNMI session is in (connecting, syncing, synced, failed), 0 for the others.",
		}, []string{"target", "state"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshd_gnmi_notifications_total",
			Help: "gNMI notifications received, by target.",
		}, []string{"target"}),
		leaves: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshd_gnmi_leaves_total",
			Help: "Leaf changes (updates and deletes) decoded and handed to the merge core, by target.",
		}, []string{"target"}),
		unknown: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshd_gnmi_unknown_paths_total",
			Help: "Updates whose path fits neither meshd's schemas nor a mapping table, by target and path without keys.",
		}, []string{"target", "path"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshd_gnmi_invalid_values_total",
			Help: "Values of the wrong type or unparsable JSON, dropped, by target.",
		}, []string{"target"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshd_gnmi_session_failures_total",
			Help: "gNMI sessions that ended in error (each followed by a reconnect), by target.",
		}, []string{"target"}),
		targets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshd_gnmi_targets",
			Help: "gNMI targets configured.",
		}),
		decodeSeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshd_gnmi_decode_seconds_total",
			Help: "Time spent translating notifications into changes.",
		}),
		applySeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshd_gnmi_apply_seconds_total",
			Help: "Time spent in the merge core applying gNMI changes.",
		}),
		generic: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshd_gnmi_generic_decodes_total",
			Help: "Subscribe responses left to protobuf's generic decoder: they hold fields meshd's stream decoder does not take (extensions, decimal or leaf-list values, deprecated fields).",
		}),
	}
}

func (m *metrics) register(reg prometheus.Registerer) {
	reg.MustRegister(m.state, m.notifications, m.leaves, m.unknown, m.invalid, m.failures, m.targets, m.decodeSeconds, m.applySeconds, m.generic)
}

func (m *metrics) forget(target string) {
	l := prometheus.Labels{"target": target}
	m.state.DeletePartialMatch(l)
	m.notifications.DeletePartialMatch(l)
	m.leaves.DeletePartialMatch(l)
	m.unknown.DeletePartialMatch(l)
	m.invalid.DeletePartialMatch(l)
	m.failures.DeletePartialMatch(l)
}
