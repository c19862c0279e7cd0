package bmpbridge

import (
	"slices"
	"time"

	"github.com/meshd/meshd/bmpbridge/decode"
	"github.com/meshd/meshd/bmpbridge/rib"
	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/rpki"
)

// originCheckDelay is how long after a view's first route meshd starts
// reporting new more-specifics with another origin, for routers that send
// no End-of-RIB over BMP.
const originCheckDelay = 30 * time.Second

// restateOwnRoutes announces again, as route events, the routes of
// instance inst whose origin is the router's own AS and was not known
// when they came: an empty AS_PATH outside an Adj-RIB-In. FRR sends its
// own networks (post-policy, peer 0.0.0.0) as soon as bgpd starts,
// before any Peer Up has told meshd the router's AS, and sends them
// once; without this they stayed in bmp_route with origin_as 0.
func (s *session) restateOwnRoutes(inst string) {
	for _, ps := range s.r.peers {
		if ps.inst != inst {
			continue
		}
		for view, vs := range ps.views {
			if !ps.pseudo && (view == "ADJ_RIB_IN_PRE" || view == "ADJ_RIB_IN_POST") {
				continue
			}
			if s.b.rov != nil {
				// Validated with no origin when they came.
				ps.countsDirty = true
				vs.t.Within(everything, func(n *decode.NLRI, a *decode.Attrs, st rib.State) rib.State {
					if a == nil || a.OriginAS != 0 || a.ASPath != "" {
						return st
					}
					return rib.State(s.b.rov.Validate(n.IP, s.r.originOf(ps, view, a)))
				})
			}
			vs.t.Each(func(n *decode.NLRI, a *decode.Attrs, st rib.State) {
				if a == nil || a.OriginAS != 0 || a.ASPath != "" {
					return
				}
				rt := s.route(ps, change.Announce, n, view, a)
				s.withState(rt, n, st)
				s.event(change.Event{Time: s.now, NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventRoute, Route: rt})
				if s.b.obs != nil {
					s.observe(ps, view, change.Announce, n, a, st)
				}
			})
		}
	}
}

func (s *session) routes(m *decode.Message) {
	u := m.Update
	for _, sk := range u.Skipped {
		s.b.m.skipped.WithLabelValues(skippedLabel(sk.AfiSafi)).Inc()
	}
	if u.EndOfRIB != "" {
		ps := s.r.peer(m.Peer)
		vs := s.r.view(ps, m.Peer.RIB)
		s.endOfRIB(ps, m.Peer.RIB, vs, u.EndOfRIB, s.now)
		if vs.warmAt.IsZero() || vs.warmAt.After(s.now) {
			vs.warmAt = s.now
		}
		if w := vs.famWarmAt(u.EndOfRIB); w.IsZero() || w.After(s.now) {
			*w = s.now
		}
	}
	if len(u.Announce) == 0 && len(u.Withdraw) == 0 {
		return
	}
	ps := s.r.peer(m.Peer)
	vs := s.r.view(ps, m.Peer.RIB)
	if m.Peer.RIB == "LOC_RIB" {
		s.oneLocRIBPath(ps, u)
	}
	if vs.warmAt.IsZero() {
		vs.warmAt = s.now.Add(originCheckDelay)
	}
	warm, warmFam := false, ""
	ps.countsDirty = true
	if m.AddPathAbsent && len(vs.pathIDs) > 0 {
		vs.matchPathIDs(u.Withdraw)
		vs.matchPathIDs(u.Announce)
	}
	withEvents := *s.b.cfg.RouteEvents
	if withEvents && s.events == nil {
		// Sized once per batch: growing it route by route costs more.
		s.events = make([]change.Event, 0, maxEventBatch)
	}
	ts := m.Time
	if ts.IsZero() {
		ts = s.now
	}
	var nAnn, nWd, nDup, nMiss, nOrig, nOver int
	limit := s.b.cfg.MaxRoutesPerRouter
	pre := m.Peer.RIB == "ADJ_RIB_IN_PRE"
	for i := range u.Withdraw {
		n := &u.Withdraw[i]
		o, old, st := vs.t.Withdraw(n)
		if o == rib.Missing {
			if pre && s.fabricatedWithdraw(ps, n) {
				continue
			}
			nMiss++
			continue
		}
		nWd++
		s.r.held--
		s.publishRoute(ps, m.Peer.RIB, n, nil, ts)
		if s.b.obs != nil {
			s.observe(ps, m.Peer.RIB, change.Withdraw, n, old, st)
		}
		if withEvents {
			rt := s.route(ps, change.Withdraw, n, m.Peer.RIB, old)
			s.withState(rt, n, st)
			s.event(change.Event{Time: ts, NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventRoute, Route: rt})
		}
	}
	for i := range u.Announce {
		n := &u.Announce[i]
		if limit > 0 && s.r.held >= limit && !vs.t.Has(n) {
			nOver++
			continue
		}
		if n.PathID != 0 {
			vs.notePathID(n.PathID)
		}
		vs.fresh(n)
		o, old := vs.t.Announce(n, u.Attrs)
		if o == rib.Duplicate {
			nDup++
			continue
		}
		var st rpki.State
		var validated bool
		if s.b.rov != nil {
			st, validated = s.validate(vs, n, u.Attrs, s.r.originOf(ps, m.Peer.RIB, u.Attrs))
		}
		switch o {
		case rib.Changed:
			if was, now := s.r.originOf(ps, m.Peer.RIB, old), s.r.originOf(ps, m.Peer.RIB, u.Attrs); was != 0 && now != 0 && was != now {
				nOrig++
				s.event(change.Event{Time: ts, NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventOriginChange, Fields: map[string]any{
					"afi_safi": n.AfiSafi, "rib": m.Peer.RIB, "prefix": n.Text(), "old_origin_as": int64(was), "new_origin_as": int64(now),
				}})
			}
		case rib.Added:
			s.r.held++
			if pre && ps.quirks&quirkNoPrePolicy != 0 {
				// The sender now keeps an Adj-RIB-In after all.
				ps.quirks &^= quirkNoPrePolicy
			}
			if n.AfiSafi != warmFam || warmFam == "" {
				w := vs.famWarmAt(n.AfiSafi)
				if w.IsZero() {
					*w = s.now.Add(originCheckDelay)
				}
				warm, warmFam = !s.now.Before(*w), n.AfiSafi
			}
			if warm && s.originCheck(ps, m.Peer.RIB, n, u.Attrs, ts) {
				nOrig++
			}
		}
		nAnn++
		s.publishRoute(ps, m.Peer.RIB, n, u.Attrs, ts)
		if s.b.obs != nil {
			s.observe(ps, m.Peer.RIB, change.Announce, n, u.Attrs, rib.State(st))
		}
		if withEvents {
			rt := s.route(ps, change.Announce, n, m.Peer.RIB, u.Attrs)
			if validated {
				rt.RPKI = st.String()
			}
			s.event(change.Event{Time: ts, NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventRoute, Route: rt})
		}
	}
	vs.ann += uint64(nAnn)
	vs.wd += uint64(nWd)
	vs.dup += uint64(nDup)
	vs.origin += uint64(nOrig)
	vs.missing += uint64(nMiss)
	if nOver > 0 {
		s.overBudget(nOver)
	}
	met := &s.b.m.outcomes
	for i, n := range [...]int{nAnn, nWd, nDup, nMiss, nOrig} {
		if n > 0 {
			met[i].Add(float64(n))
		}
	}
}

// originCheck reports a route just added (n with attributes a, in view
// of ps) whose origin differs from every origin of the longest prefix
// covering it, anywhere in the router's RIB views: a more-specific of
// another origin (a hijack, in the lab's fault), or the same prefix from
// another origin (MOAS). Looking in every view is what makes the router
// that originates the covering prefix itself see it: its own route is in
// its Loc-RIB (or Adj-RIB-Out), the hijacker's in an Adj-RIB-In.
func (s *session) originCheck(ps *peerState, view string, n *decode.NLRI, a *decode.Attrs, ts time.Time) bool {
	o := s.r.originOf(ps, view, a)
	if o == 0 {
		return false
	}
	// The same prefix from another origin elsewhere (MOAS) is news; the
	// same prefix from the same origin is the same route in another view,
	// and the covering prefix decides.
	bits, origins, where, whereView := s.r.coveringOrigins(ps, view, n, true)
	other := slices.IndexFunc(origins, func(c uint32) bool { return c != o })
	if other < 0 {
		bits, origins, where, whereView = s.r.coveringOrigins(ps, view, n, false)
		if bits < 0 || len(origins) == 0 || slices.Contains(origins, o) {
			return false
		}
		other = 0
	}
	fields := map[string]any{
		"afi_safi": n.AfiSafi, "rib": view, "prefix": n.Text(), "old_origin_as": int64(origins[other]), "new_origin_as": int64(o),
		"covering_rib": whereView,
	}
	if bits < n.IP.Bits() {
		p, _ := n.IP.Addr().Prefix(bits)
		fields["more_specific_of"] = p.String()
	}
	if where != ps {
		fields["covering_neighbor"] = where.addr
		if where.pseudo {
			fields["covering_pseudo_peer"] = true
		}
	}
	s.event(change.Event{Time: ts, NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventOriginChange, Fields: fields})
	return true
}

func (s *session) route(ps *peerState, a change.RouteAction, n *decode.NLRI, view string, at *decode.Attrs) *change.Route {
	if len(s.routeSlab) == cap(s.routeSlab) {
		s.routeSlab = make([]change.Route, 0, maxEventBatch)
	}
	s.routeSlab = s.routeSlab[:len(s.routeSlab)+1]
	r := &s.routeSlab[len(s.routeSlab)-1]
	*r = change.Route{Action: a, AfiSafi: n.AfiSafi, RIB: view, Prefix: n.Text(), PathID: n.PathID}
	if at != nil {
		r.OriginAS = s.r.originOf(ps, view, at)
		r.ASPath = s.asPath(ps, view, at)
		r.NextHop = at.NextHop
		r.MED = at.MED
		r.LocalPref = at.LocalPref
		r.Communities = at.Communities
		r.ExtCommunities = at.ExtCommunities
		r.LargeCommunities = at.LargeCommunities
	}
	return r
}
