package bmpbridge

import (
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/bmpbridge/decode"
	"github.com/meshd/meshd/bmpbridge/rib"
	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/rpki"
	"github.com/meshd/meshd/rpki/rtr"
	"github.com/meshd/meshd/stage"
)

// Route origin validation (RFC 6811) of the routes the RIBs hold.
//
// Each IP route gets its state when it comes (rib keeps it in two bits
// beside the attribute set), and its route event carries it. When the
// VRPs change, Revalidate queues the changed VRPs' prefixes for every
// router; the router's session takes them between message batches, under
// the router's lock like any message, and validates again only the
// routes inside them (rib.Table.Within): a state that changes is counted
// in the view's rpki-* leaves and sent as an rpki_change event. A router
// without a live session keeps its queue until its next session.
//
// Which state changes become events: every change while the VRPs move by
// serial updates; after a cache's full set (the first sync, a reset, the
// expiry of a cache that went away), only changes into or out of an
// invalid state, as a first sync would otherwise send one event per route
// of every table.

// maxPendingPrefixes bounds a router's queue of prefixes to validate
// again; past it the router's tables are validated again whole.
const maxPendingPrefixes = 1 << 16

// WithRPKI validates routes against t's VRPs.
func WithRPKI(t *rpki.Table) Option { return func(b *Bridge) { b.rov = t } }

type rovMetrics struct {
	revalidated prometheus.Counter
	changes     *prometheus.CounterVec
	seconds     prometheus.Histogram
	pending     prometheus.Counter
	// instance holds the states of pseudo-peers' routes (a Loc-RIB's:
	// the routes the router uses), which the model has no neighbor for.
	instance *prometheus.GaugeVec
}

func newROVMetrics() *rovMetrics {
	return &rovMetrics{
		revalidated: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_bmp_rpki_revalidated_routes_total",
			Help: "Held routes validated again because VRPs covering them came or went."}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_bmp_rpki_state_changes_total",
			Help: "Held routes whose RPKI state changed as the VRPs changed, by new state."}, []string{"state"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "meshd_bmp_rpki_revalidation_seconds",
			Help:    "Time one router's RIBs took to be validated again after a VRP change.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 4, 12)}),
		pending: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_bmp_rpki_full_revalidations_total",
			Help: "Times a router's queue of changed VRP prefixes overflowed (or a cache sent a set too large to list), so its RIBs were validated again whole."}),
		instance: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "meshd_bmp_instance_rpki_routes",
			Help: "Routes of pseudo-peers (Loc-RIB instances, 0.0.0.0) by RPKI state; a neighbor's are in the model (bmp/ribs/rib/state/rpki-*)."}, []string{"router", "network_instance", "rib", "state"}),
	}
}

func (m *rovMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.revalidated, m.changes, m.seconds, m.pending, m.instance}
}

// rovQueue is a router's VRP changes not yet applied to its RIBs.
type rovQueue struct {
	set *rib.PrefixSet
	// all: validate every route (the set overflowed).
	all bool
	// reset: a cache's full set is among the changes.
	reset bool
}

// Revalidate queues the routes under changed VRPs to be validated again
// on every router; reset says the changes came from a cache's full set.
// It is safe to call from any goroutine (rpki.Manager.Follow calls it).
func (b *Bridge) Revalidate(changed []rtr.VRP, reset bool) {
	if b.rov == nil || len(changed) == 0 {
		return
	}
	b.mu.Lock()
	routers := make([]*routerState, 0, len(b.routers))
	for _, r := range b.routers {
		routers = append(routers, r)
	}
	b.mu.Unlock()
	for _, r := range routers {
		r.mu.Lock()
		q := &r.rov
		if q.set == nil {
			q.set = rib.NewPrefixSet()
		}
		if !q.all {
			for _, v := range changed {
				q.set.Add(v.Prefix)
			}
			if q.set.Len() > maxPendingPrefixes {
				q.all, q.set = true, rib.NewPrefixSet()
				b.rovm.pending.Inc()
			}
		}
		q.reset = q.reset || reset
		r.mu.Unlock()
		select {
		case r.rovWake <- struct{}{}:
		default:
		}
	}
}

// everything covers every IPv4 and IPv6 route.
var everything = rib.NewPrefixSet(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"))

// revalidate applies the router's queued VRP changes; r.mu is held.
func (s *session) revalidate() {
	r := s.r
	q := r.rov
	if q.set == nil || (!q.all && q.set.Len() == 0) {
		return
	}
	r.rov = rovQueue{}
	set := q.set
	if q.all {
		set = everything
	}
	start := time.Now()
	visited := 0
	counts := map[rpki.State]int{}
	for _, ps := range r.peers {
		for view, vs := range ps.views {
			changed := false
			visited += vs.t.Within(set, func(n *decode.NLRI, a *decode.Attrs, st rib.State) rib.State {
				origin := r.originOf(ps, view, a)
				now := rpki.NotFound
				if !unknownOrigin(a, origin) {
					now = s.b.rov.Validate(n.IP, origin)
				}
				was := rpki.State(st)
				if now == was {
					return st
				}
				changed = true
				counts[now]++
				if s.b.obs != nil {
					s.observe(ps, view, change.Announce, n, a, rib.State(now))
				}
				if !q.reset || now.Invalid() || was.Invalid() {
					s.event(change.Event{NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventRPKIChange, Fields: map[string]any{
						"afi_safi": n.AfiSafi, "rib": view, "prefix": n.IP.String(), "path_id": int64(n.PathID),
						"origin_as": int64(origin), "old_state": was.String(), "new_state": now.String(),
						"pseudo_peer": ps.pseudo,
					}})
					if len(s.events) >= maxEventBatch {
						s.flushLocked(false)
					}
				}
				return rib.State(now)
			})
			if changed {
				ps.countsDirty = true
			}
		}
	}
	s.b.rovm.revalidated.Add(float64(visited))
	for st, n := range counts {
		s.b.rovm.changes.WithLabelValues(st.String()).Add(float64(n))
	}
	s.b.rovm.seconds.Observe(time.Since(start).Seconds())
	s.b.rovPasses.Add(1)
}

// unknownOrigin tells a route whose origin is the router's own AS before
// meshd knows it (an empty AS_PATH before any Peer Up: FRR sends its own
// networks first). It is neither validated (not-found) nor judged until
// restateOwnRoutes gives it its origin; an AS_SET's 0 is an origin RFC
// 6811 judges.
func unknownOrigin(a *decode.Attrs, origin uint32) bool {
	return origin == 0 && a != nil && a.ASPath == ""
}

// validate gives a route just announced (or changed) its state; ok is
// false when meshd validates nothing or the route is not an IP route.
func (s *session) validate(vs *viewState, n *decode.NLRI, a *decode.Attrs, origin uint32) (st rpki.State, ok bool) {
	if s.b.rov == nil || !rib.IPRoute(n) {
		return 0, false
	}
	if !unknownOrigin(a, origin) {
		st = s.b.rov.Validate(n.IP, origin)
	}
	if _, ok = vs.t.SetState(n, rib.State(st)); !ok {
		return 0, false
	}
	return st, true
}

// withState puts a held route's state on its route event.
func (s *session) withState(rt *change.Route, n *decode.NLRI, st rib.State) {
	if s.b.rov != nil && rib.IPRoute(n) {
		rt.RPKI = rpki.State(st).String()
	}
}

// WithObserver has o judge the routes (the monitor: section's alerts).
func WithObserver(o stage.RouteObserver) Option { return func(b *Bridge) { b.obs = o } }

// observe hands a route that came, changed or went to the route observer
// when it watches it; a is the route's attribute set (the old one for a
// withdrawal), st its state.
func (s *session) observe(ps *peerState, view string, action change.RouteAction, n *decode.NLRI, a *decode.Attrs, st rib.State) {
	if !rib.IPRoute(n) {
		return
	}
	origin := s.r.originOf(ps, view, a)
	if unknownOrigin(a, origin) || !s.b.obs.Watches(n.IP, origin) {
		return
	}
	rt := s.route(ps, action, n, view, a)
	s.withState(rt, n, st)
	s.b.obs.Observe(s.r.name, ps.ni, ps.addr, rt)
}
