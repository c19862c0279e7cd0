package bmpbridge

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/bmpbridge/decode"
)

type metrics struct {
	sessions     prometheus.Gauge
	standby      prometheus.Gauge
	accepted     *prometheus.CounterVec
	relays       *prometheus.CounterVec
	refused      *prometheus.CounterVec
	throttled    *prometheus.CounterVec
	overBudget   *prometheus.CounterVec
	messages     *prometheus.CounterVec
	errors       *prometheus.CounterVec
	routeEvents  *prometheus.CounterVec
	skipped      *prometheus.CounterVec
	terminations *prometheus.CounterVec
	mirrored     prometheus.Counter
	routes       prometheus.Gauge
	invalid      prometheus.Counter
	cleared      *prometheus.CounterVec
	graceful     prometheus.Counter
	// instanceRoutes holds the route counts of pseudo-peers (Loc-RIB
	// instances, 0.0.0.0), which the model has no neighbor for.
	instanceRoutes *prometheus.GaugeVec
	// ignoredDowns counts Peer Downs for peers not up, by reason.
	ignoredDownsVec *prometheus.CounterVec
	ignoredDowns    map[string]prometheus.Counter
	// quirks counts peers per sender quirk meshd corrects or distrusts.
	quirksVec *prometheus.CounterVec
	quirks    map[string]prometheus.Counter

	// Children resolved once, for the hot path.
	outcomes [5]prometheus.Counter // announce, withdraw, duplicate, missing_withdraw, origin_change
	byType   [7]prometheus.Counter // by BMP message type code
}

func newMetrics() *metrics {
	m := &metrics{
		standby: prometheus.NewGauge(prometheus.GaugeOpts{Name: "meshd_bmp_standby_sessions",
			Help: "BMP sessions held as standby: their router already had a session on another path (sent to several replicas, or to this one and relayed by another); read, not applied, and ended when the router's applied session ends (standby.go)."}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "meshd_bmp_sessions", Help: "BMP sessions currently open."}),
		relays: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_bmp_relays_total",
			Help: "BMP sessions of routers another replica owns (cluster mode), by result: relayed to the owner; failed (the owner could not be reached: served here); refused (the owner ended the relay at once: the router's sessions are served here for a minute); handed_over (a session served here ended because its router is now owned elsewhere: the router connects again and is relayed)."}, []string{"result"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_bmp_sessions_total",
			Help: "BMP connections by outcome (accepted: taken at TCP accept; attached: made inside meshd by the peering source; rejected: refused at accept or at their Initiation, by reason in meshd_bmp_refused_total)."}, []string{"result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_bmp_refused_total",
			Help: "BMP connections refused, by reason (not_allowed: source outside bmp.allow; max_routers: a new router over bmp.max-routers, or twice bmp.max-routers connections already waiting for their Initiation; fenced: at accept or during the session, as this replica lost its cluster lease; starting: at accept, before this replica knows which replica owns each router)."}, []string{"reason"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_bmp_throttled_seconds_total",
			Help: "Time a router's BMP sessions were not read because the router was over its rate budget (bmp.max-messages-per-second, bmp.max-bytes-per-second); nothing is dropped."}, []string{"router"}),
		overBudget: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_bmp_routes_over_budget_total",
			Help: "Announces of routes a router's RIBs did not hold, not stored because it held bmp.max-routes-per-router routes."}, []string{"router"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_bmp_messages_total",
			Help: "BMP messages received, by type."}, []string{"type"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_bmp_errors_total",
			Help: "BMP errors by kind (framing, malformed, no_initiation: first message not an Initiation, or none within 30 s; too_many_routers, apply, add_path_absent: routes without the path IDs their Peer Up negotiated, decoded without)."}, []string{"kind"}),
		routeEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_bmp_route_events_total",
			Help: "Route Monitoring outcomes (announce, withdraw, duplicate, missing_withdraw, origin_change)."}, []string{"outcome"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_bmp_skipped_families_total",
			Help: "Route Monitoring NLRI of families meshd does not decode, by AFI/SAFI."}, []string{"afi_safi"}),
		terminations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_bmp_terminations_total",
			Help: "BMP Termination messages by reason code."}, []string{"reason"}),
		mirrored: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_bmp_mirrored_messages_total", Help: "Route Mirroring messages."}),
		routes:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "meshd_bmp_routes", Help: "Routes held in the BMP RIBs."}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_bmp_invalid_changes_total",
			Help: "Changes the merge core refused as not fitting the schema."}),
		cleared: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_bmp_routes_cleared_total",
			Help: "Routes dropped without a withdraw, by reason (peer_down, stale: peer not re-announced after a BMP reconnect; graceful_restart: stale after a peering session's graceful restart, not sent again)."}, []string{"reason"}),
		graceful: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_bmp_graceful_restarts_total",
			Help: "Peering sessions lost without a NOTIFICATION by routers that restart gracefully (RFC 4724): their routes were kept, marked stale."}),
		instanceRoutes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "meshd_bmp_instance_routes",
			Help: "Routes held for a router's own RIB instances (Loc-RIB, peer 0.0.0.0/::), which are not BGP neighbors."}, []string{"router", "network_instance", "rib"}),
		ignoredDownsVec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_bmp_peer_downs_ignored_total",
			Help: "Peer Down messages for peers meshd does not hold up (never_up, already_down), which are no session going down: FRR sends one per failed connection attempt."}, []string{"reason"}),
		quirksVec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_bmp_sender_quirks_total",
			Help: "Peers whose BMP feed showed a sender quirk, by quirk (local_as_prepended: Adj-RIB-In AS paths start with the router's own AS, dropped; pre_policy_without_adj_rib_in: the pre-policy feed is withdraws only, received-pre-policy not written; loc_rib_path_ids: Loc-RIB routes under path IDs, a new best path sent without withdrawing the one it replaces, so the Loc-RIB is kept one route a prefix)."}, []string{"quirk"}),
	}
	m.resolve()
	return m
}

func (m *metrics) resolve() {
	for i, o := range []string{"announce", "withdraw", "duplicate", "missing_withdraw", "origin_change"} {
		m.outcomes[i] = m.routeEvents.WithLabelValues(o)
	}
	m.ignoredDowns = map[string]prometheus.Counter{}
	for _, r := range []string{"never_up", "already_down"} {
		m.ignoredDowns[r] = m.ignoredDownsVec.WithLabelValues(r)
	}
	m.quirks = map[string]prometheus.Counter{}
	for _, q := range []string{"local_as_prepended", "pre_policy_without_adj_rib_in", "loc_rib_path_ids"} {
		m.quirks[q] = m.quirksVec.WithLabelValues(q)
	}
	for i := range m.byType {
		m.byType[i] = m.messages.WithLabelValues(decode.MsgTypeName(uint8(i)))
	}
}

func (m *metrics) register(reg prometheus.Registerer) {
	reg.MustRegister(m.sessions, m.standby, m.accepted, m.relays, m.refused, m.throttled, m.overBudget, m.messages, m.errors, m.routeEvents, m.skipped, m.terminations, m.mirrored, m.routes, m.invalid, m.cleared, m.graceful, m.instanceRoutes, m.ignoredDownsVec, m.quirksVec)
}

// skippedLabel keeps the label set bounded: well-known names, else "other".
func skippedLabel(name string) string {
	if len(name) > 4 && name[:4] == "AFI_" {
		return "other"
	}
	return name
}
