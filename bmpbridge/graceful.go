package bmpbridge

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/meshd/meshd/bmpbridge/decode"
	"github.com/meshd/meshd/bmpbridge/rib"
	"github.com/meshd/meshd/change"
)

// Graceful restart, as a helper (RFC 4724), for the peering source's
// sessions: when a router that can restart gracefully loses its session
// without a NOTIFICATION, the source says so on its in-process stream
// (a Stats Report of decode.StatGracefulRestart, the router's restart
// time). Its routes then stay, marked stale, the neighbor shows ACTIVE,
// and a peer_down event says graceful_restart. When the session is back
// the routes the router sends again are fresh; its End-of-RIB for a
// family withdraws the stale routes of that family it did not send. A
// router that does not come back within its restart time gets the
// source's Peer Down, which clears them all; one that comes back but
// never sends End-of-RIB has them withdrawn staleHold after the mark.
//
// The mark is a set of the stale routes' keys (IPv4 and IPv6 unicast,
// about 40 bytes a route), held only while a restart lasts; labeled and
// other families are kept as they are until the next Peer Down.

// staleHold bounds how long stale routes outlive the mark without an
// End-of-RIB (RFC 4724's selection deferral, as FRR's stalepath-time).
const staleHold = 360 * time.Second

// gracefulRestart marks ps's routes stale (restart time rt seconds).
func (s *session) gracefulRestart(ps *peerState, rt uint64, ts time.Time) {
	if ps.pseudo || !ps.up {
		return
	}
	n := 0
	for _, vs := range ps.views {
		keys := vs.t.AppendKeys(nil, true, true, netip.Prefix{})
		vs.stale = make(map[rib.Key]struct{}, len(keys))
		for _, k := range keys {
			vs.stale[k] = struct{}{}
		}
		vs.staleUntil = ts.Add(staleHold)
		n += len(keys)
	}
	ps.up, ps.restarting = false, true
	ps.downCount++
	s.set(change.NeighborPath(ps.ni, ps.addr, "state", "session-state"), change.String("ACTIVE"))
	s.set(change.MeshdNeighborPath(ps.ni, ps.addr, "bmp", "state", "down-count"), change.Uint(ps.downCount))
	s.set(change.MeshdNeighborPath(ps.ni, ps.addr, "bmp", "state", "last-down"), change.Uint(uint64(ts.UnixNano())))
	s.b.m.graceful.Inc()
	s.event(change.Event{Time: ts, NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventPeerDown, Fields: map[string]any{
		"graceful_restart": true, "restart_time": int64(rt), "routes_stale": int64(n),
	}})
}

// restartExpired ends a graceful restart whose router did not come back
// in its restart time (the source's Peer Down): its routes go. The
// session's peer_down went with the restart: each route goes as a
// withdraw route event, and counted (cleared by graceful_restart).
func (s *session) restartExpired(ps *peerState, ts time.Time) {
	ps.restarting = false
	n := s.clearPeer(ps, "graceful_restart", ts)
	s.log.Info("graceful restart ended: the router did not come back within its restart time",
		slog.String("neighbor", ps.addr), slog.Int("routes_cleared", n))
}

// fresh unmarks an announced route.
func (vs *viewState) fresh(n *decode.NLRI) {
	if vs.stale != nil && rib.IPRoute(n) {
		delete(vs.stale, rib.Key{Prefix: n.IP, PathID: n.PathID})
	}
}

// endOfRIB withdraws the stale routes of the family an End-of-RIB ends.
func (s *session) endOfRIB(ps *peerState, view string, vs *viewState, afiSafi string, ts time.Time) {
	if vs.stale == nil {
		return
	}
	var v4 bool
	switch afiSafi {
	case decode.AfiSafiName(bgp.RF_IPv4_UC):
		v4 = true
	case decode.AfiSafiName(bgp.RF_IPv6_UC):
	default:
		return
	}
	s.withdrawStale(ps, view, vs, func(k rib.Key) bool { return k.Prefix.Addr().Is4() == v4 }, ts)
}

// expireStale withdraws stale routes kept staleHold without an
// End-of-RIB; the router's lock is held.
func (s *session) expireStale() {
	for _, ps := range s.r.peers {
		for view, vs := range ps.views {
			if vs.stale != nil && s.now.After(vs.staleUntil) {
				s.withdrawStale(ps, view, vs, func(rib.Key) bool { return true }, s.now)
			}
		}
	}
}

// withdrawStale withdraws the stale routes pick selects, as withdrawals
// (events, counts, the RIB's watchers), counted as cleared by
// graceful_restart.
func (s *session) withdrawStale(ps *peerState, view string, vs *viewState, pick func(rib.Key) bool, ts time.Time) {
	n := 0
	for k := range vs.stale {
		if !pick(k) {
			continue
		}
		delete(vs.stale, k)
		fam := bgp.RF_IPv6_UC
		if k.Prefix.Addr().Is4() {
			fam = bgp.RF_IPv4_UC
		}
		nl := decode.NLRI{AfiSafi: decode.AfiSafiName(fam), Family: fam, IP: k.Prefix, PathID: k.PathID}
		o, old, st := vs.t.Withdraw(&nl)
		if o != rib.Removed {
			continue
		}
		n++
		s.r.held--
		rt := s.route(ps, change.Withdraw, &nl, view, old)
		s.withState(rt, &nl, st)
		s.event(change.Event{Time: ts, NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventRoute, Route: rt})
		s.publishRoute(ps, view, &nl, nil, ts)
		if s.b.obs != nil {
			s.observe(ps, view, change.Withdraw, &nl, old, st)
		}
	}
	if len(vs.stale) == 0 {
		vs.stale = nil
	}
	if n > 0 {
		vs.wd += uint64(n)
		ps.countsDirty = true
		s.b.m.cleared.WithLabelValues("graceful_restart").Add(float64(n))
	}
}
