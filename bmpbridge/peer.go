package bmpbridge

import (
	"log/slog"
	"strconv"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/packet/bmp"

	"github.com/meshd/meshd/bmpbridge/decode"
	"github.com/meshd/meshd/bmpbridge/rib"
	"github.com/meshd/meshd/change"
)

func (s *session) peerUp(m *decode.Message) {
	p, u := m.Peer, m.PeerUp
	r := s.r
	ps := r.peer(p)
	ps.ni = p.NetworkInstance
	// A Peer Up for a session already known up is a re-send after a BMP
	// reconnect, not a new establishment, when it has the same time, or
	// when it is the first of this BMP session and has the same TCP ports
	// (gobgpd stamps re-sends with the time of sending; a re-established
	// BGP session has a new ephemeral port).
	resend := ps.up && (ps.upTime.Equal(m.Time) ||
		(ps.upGen != r.gen && ps.localPort == u.LocalPort && ps.remotePort == u.RemotePort))
	ps.up, ps.restarting = true, false
	ps.upTime = m.Time
	ps.upGen = r.gen
	ps.localPort, ps.remotePort = u.LocalPort, u.RemotePort
	ni, addr := ps.ni, ps.addr
	ps.inst = instanceOf(p)
	ps.prepended = ""
	if !ps.pseudo && u.LocalAS != 0 && u.PeerAS != 0 && u.LocalAS != u.PeerAS {
		ps.prepended = strconv.FormatUint(uint64(u.LocalAS), 10) + " " + strconv.FormatUint(uint64(u.PeerAS), 10)
	}
	switch {
	case !ps.pseudo && u.LocalAS != 0 && r.localAS[ps.inst] != u.LocalAS:
		r.localAS[ps.inst] = u.LocalAS
		s.restateOwnRoutes(ps.inst)
	case p.TypeCode == bmp.BMP_PEER_TYPE_LOCAL_RIB && p.AS != 0 && r.localAS[ps.inst] == 0:
		r.localAS[ps.inst] = p.AS // RFC 9069 4.1
		s.restateOwnRoutes(ps.inst)
	}
	// FRR stamps the Peer Up it sends as a session establishes with the
	// peer's previous state change (bgp_bmp.c reads peer->uptime before
	// bgpd resets it): the Peer Down before it, or the router's boot for
	// a first establishment. In the lab a session up for 22 s had its
	// peer_up event at the host's boot, 15 h before, and a re-established
	// one at the time it went down. So a Peer Up stamped no later than
	// the peer's last down takes the receive time; FRR reports a neighbor
	// not established at a BMP session's start down, so its first Peer Up
	// is caught too. The Peer Ups at a BMP session's start carry true
	// times (the sessions are established, their uptime reset) and keep
	// them, as do other routers'.
	ts := eventTime(m.Time, ps.downAt.Add(time.Nanosecond), s.now)
	if !resend {
		ps.upCount++
	}
	if ps.pseudo {
		if !resend {
			s.event(change.Event{Time: ts, NetworkInstance: ni, Neighbor: addr, Kind: change.EventPeerUp, Fields: map[string]any{
				"peer_type": p.Type, "rib": p.RIB, "table_name": u.TableName, "pseudo_peer": true,
			}})
		}
		return
	}
	ps.stateKnown = true
	np := func(e ...string) *gpb.Path { return change.NeighborPath(ni, addr, e...) }
	s.set(np("state", "session-state"), change.String("ESTABLISHED"))
	s.set(np("state", "peer-as"), change.Uint(uint64(u.PeerAS)))
	s.set(np("state", "local-as"), change.Uint(uint64(u.LocalAS)))
	s.set(np("state", "last-established"), change.Uint(uint64(ts.UnixNano())))
	s.set(np("state", "established-transitions"), change.Uint(ps.upCount))
	s.setList(np("state", "supported-capabilities"), u.OCCapabilities)
	s.set(np("timers", "state", "hold-time"), change.Uint(uint64(u.Sent.HoldTime)))
	s.set(np("timers", "state", "negotiated-hold-time"), change.Uint(uint64(u.NegotiatedHoldTime)))

	bp := func(e ...string) *gpb.Path {
		return change.MeshdNeighborPath(ni, addr, append([]string{"bmp", "state"}, e...)...)
	}
	s.set(bp("peer-type"), change.String(p.Type))
	if p.Distinguisher != "" {
		s.set(bp("peer-distinguisher"), change.String(p.Distinguisher))
	}
	if p.BGPID != "" {
		s.set(bp("peer-bgp-id"), change.String(p.BGPID))
	}
	if u.Sent.BGPID != "" {
		s.set(bp("local-bgp-id"), change.String(u.Sent.BGPID))
	}
	if u.LocalAddress != "" {
		s.set(bp("local-address"), change.String(u.LocalAddress))
	}
	s.set(bp("local-port"), change.Uint(uint64(u.LocalPort)))
	s.set(bp("remote-port"), change.Uint(uint64(u.RemotePort)))
	s.set(bp("sent-hold-time"), change.Uint(uint64(u.Sent.HoldTime)))
	s.set(bp("received-hold-time"), change.Uint(uint64(u.Received.HoldTime)))
	s.setList(bp("capabilities"), u.Capabilities)
	s.setList(bp("add-path"), u.AddPathIn)
	s.set(bp("four-octet-as"), change.Bool(u.FourOctetAS))
	s.set(bp("up-count"), change.Uint(ps.upCount))
	s.set(bp("last-up"), change.Uint(uint64(ts.UnixNano())))
	if resend {
		return
	}
	s.history(ps, "UP", ts, nil)
	s.event(change.Event{Time: ts, NetworkInstance: ni, Neighbor: addr, Kind: change.EventPeerUp, Fields: map[string]any{
		"peer_as": int64(u.PeerAS), "local_as": int64(u.LocalAS), "peer_type": p.Type, "rib": p.RIB,
		"capabilities": joinComma(u.Capabilities), "add_path": joinComma(u.AddPathIn), "hold_time": int64(u.NegotiatedHoldTime),
		"local_address": u.LocalAddress, "four_octet_as": u.FourOctetAS,
	}})
	for _, o := range []struct {
		dir string
		o   *decode.Open
	}{{"sent", u.Sent}, {"received", u.Received}} {
		s.event(change.Event{Time: ts, NetworkInstance: ni, Neighbor: addr, Kind: change.EventMessage, Fields: map[string]any{
			"type": "OPEN", "direction": o.dir, "as": int64(o.o.AS), "hold_time": int64(o.o.HoldTime), "bgp_id": o.o.BGPID,
			"capabilities": joinComma(o.o.Capabilities), "families": joinComma(o.o.Families),
		}})
	}
}

// maxClockSkew is how far in the future a router's timestamp may be
// before meshd takes its own receive time instead.
const maxClockSkew = time.Minute

// eventTime is the time meshd stamps on something a router reports at
// ts: ts itself when it is plausible, else the receive time. A time is
// implausible when it is zero, later than now by more than maxClockSkew,
// or earlier than notBefore, what meshd already knows happened before
// it (the peer's last Peer Up for a Peer Down). FRR stamps a Peer Down
// with the peer's last state change, which for a peer never up is the
// router's boot (monotonic zero).
func eventTime(ts, notBefore, now time.Time) time.Time {
	if ts.IsZero() || ts.Before(notBefore) || ts.After(now.Add(maxClockSkew)) {
		return now
	}
	return ts
}

func (s *session) peerDown(m *decode.Message) {
	p, d := m.Peer, m.PeerDown
	ps := s.r.peer(p)
	ni, addr := ps.ni, ps.addr
	if !ps.up {
		s.peerDownNotUp(m, ps)
		return
	}
	ps.up = false
	ps.downCount++
	ts := eventTime(m.Time, ps.upTime, s.now)
	ps.downAt = ts
	// The peer's routes are gone with the session: counted as
	// withdrawals, one withdraw route event each, and their number on
	// the peer_down event.
	cleared := s.clearPeer(ps, "peer_down", ts)
	if ps.pseudo {
		s.event(change.Event{Time: ts, NetworkInstance: ni, Neighbor: addr, Kind: change.EventPeerDown, Fields: map[string]any{
			"reason_code": int64(d.ReasonCode), "reason": d.Reason, "peer_type": p.Type, "pseudo_peer": true, "routes_cleared": int64(cleared),
		}})
		return
	}
	ps.stateKnown = true
	s.set(change.NeighborPath(ni, addr, "state", "session-state"), change.String(downState(d.ReasonCode)))

	bp := func(e ...string) *gpb.Path {
		return change.MeshdNeighborPath(ni, addr, append([]string{"bmp", "state"}, e...)...)
	}
	s.set(bp("down-count"), change.Uint(ps.downCount))
	s.set(bp("last-down"), change.Uint(uint64(ts.UnixNano())))
	s.set(bp("last-down-reason-code"), change.Uint(uint64(d.ReasonCode)))
	reason := d.Reason
	fields := map[string]any{"reason_code": int64(d.ReasonCode), "reason": d.Reason, "peer_type": p.Type, "routes_cleared": int64(cleared)}
	if n := d.Notification; n != nil {
		reason += ": " + n.CodeName + " / " + n.SubcodeName
		if n.Data != "" && n.Code == bgp.BGP_ERROR_CEASE {
			reason += " (" + n.Data + ")"
		}
		s.set(bp("last-notification-code"), change.Uint(uint64(n.Code)))
		s.set(bp("last-notification-subcode"), change.Uint(uint64(n.Subcode)))
		fields["notification_code"] = int64(n.Code)
		fields["notification_subcode"] = int64(n.Subcode)
		fields["notification"] = n.CodeName
		fields["notification_subcode_name"] = n.SubcodeName
		dir := "received"
		if d.ReasonCode == bmp.BMP_PEER_DOWN_REASON_LOCAL_BGP_NOTIFICATION {
			dir = "sent"
		}
		s.event(change.Event{Time: ts, NetworkInstance: ni, Neighbor: addr, Kind: change.EventMessage, Fields: map[string]any{
			"type": "NOTIFICATION", "direction": dir, "code": int64(n.Code), "subcode": int64(n.Subcode),
			"code_name": n.CodeName, "subcode_name": n.SubcodeName, "data": n.Data,
		}})
	}
	if d.FSMEvent != 0 {
		fields["fsm_event"] = int64(d.FSMEvent)
	}
	s.set(bp("last-down-reason"), change.String(reason))
	s.history(ps, "DOWN", ts, d)
	s.event(change.Event{Time: ts, NetworkInstance: ni, Neighbor: addr, Kind: change.EventPeerDown, Fields: fields})
}

// peerDownNotUp handles a Peer Down for a peer meshd does not hold up:
// never seen up, or already down. It is no session going down. FRR 8.4
// sends one on every backward FSM transition (bgp_bmp.c hooks
// peer_backward_transition), so a neighbor that keeps failing to connect
// sends one per attempt, and one for each neighbor not established when
// a BMP session starts (bmp_send_peerup sends the state of every peer).
// Counting those as downs inflated down-count, the history and the
// peer_down events (issue 14: 58 downs for 2 real ones). They are
// counted in meshd_bmp_peer_downs_ignored_total; a neighbor meshd never
// had a state for gets the state the Peer Down implies, as the router
// does know the neighbor is configured and not established.
func (s *session) peerDownNotUp(m *decode.Message, ps *peerState) {
	if ps.downAt.Before(s.now) {
		// Its stamp may be the router's boot (FRR): the receive time is
		// when meshd knew it down.
		ps.downAt = s.now
	}
	if ps.restarting {
		s.restartExpired(ps, eventTime(m.Time, ps.upTime, s.now))
		return
	}
	reason := "already_down"
	if ps.upCount == 0 {
		reason = "never_up"
	}
	s.b.m.ignoredDowns[reason].Inc()
	// A peer not up holds no routes; should a sender have sent some
	// anyway, they are gone now.
	for _, vs := range ps.views {
		if vs.t.Len() > 0 {
			s.clearPeer(ps, "peer_down", eventTime(m.Time, ps.upTime, s.now))
			break
		}
	}
	if ps.pseudo || ps.stateKnown {
		return
	}
	ps.stateKnown = true
	s.set(change.NeighborPath(ps.ni, ps.addr, "state", "session-state"), change.String(downState(m.PeerDown.ReasonCode)))
	if m.Peer.AS != 0 {
		s.set(change.NeighborPath(ps.ni, ps.addr, "state", "peer-as"), change.Uint(uint64(m.Peer.AS)))
	}
}

// downState is the session state after a Peer Down with this reason.
func downState(code uint8) string {
	if code == bmp.BMP_PEER_DOWN_REASON_LOCAL_NO_NOTIFICATION || code == bmp.BMP_PEER_DOWN_REASON_REMOTE_NO_NOTIFICATION {
		// Closed without a NOTIFICATION: the speaker goes back to
		// trying to connect.
		return "ACTIVE"
	}
	return "IDLE"
}

// clearPeer drops every route of a peer, counting them as withdrawals of
// their views and in meshd_bmp_routes_cleared_total; it returns how many.
// Each route also goes out as a withdraw route event stamped ts: the
// session that held them is gone (RFC 7854 4.9 ends the peer's
// Adj-RIB-In with it), and a store of route events that keeps the last
// action per route (bmp_route in InfluxDB) would otherwise show them
// announced for good.
func (s *session) clearPeer(ps *peerState, reason string, ts time.Time) int {
	n := 0
	for view, vs := range ps.views {
		k := vs.t.Len()
		vs.wd += uint64(k)
		n += k
		vs.t.Each(func(nl *decode.NLRI, a *decode.Attrs, st rib.State) {
			rt := s.route(ps, change.Withdraw, nl, view, a)
			s.withState(rt, nl, st)
			s.event(change.Event{Time: ts, NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventRoute, Route: rt})
			s.publishRoute(ps, view, nl, nil, ts)
			if s.b.obs != nil {
				s.observe(ps, view, change.Withdraw, nl, a, st)
			}
		})
		vs.t.Clear()
		vs.stale = nil
	}
	s.r.held -= n
	if n > 0 {
		s.b.m.cleared.WithLabelValues(reason).Add(float64(n))
	}
	ps.countsDirty = true
	return n
}

// sweep expires the peers a reconnected router did not re-announce in
// time: their routes are cleared (counted) and one peer_down event per
// peer says so. Non-pseudo peers that were up go to IDLE: the router's
// re-send is the full list of its established sessions.
func (s *session) sweep() {
	r := s.r
	if r.sweepAt.IsZero() || s.now.Before(r.sweepAt) {
		return
	}
	r.sweepAt = time.Time{}
	var peers, routes int
	for k, ps := range r.peers {
		if ps.gen == r.gen {
			continue
		}
		n := s.clearPeer(ps, "stale", s.now)
		if !ps.up && n == 0 {
			// Already down and holding nothing: no news, and no
			// second peer_down for the same down.
			delete(r.peers, k)
			continue
		}
		peers++
		routes += n
		if !ps.pseudo && ps.up {
			s.set(change.NeighborPath(ps.ni, ps.addr, "state", "session-state"), change.String("IDLE"))
		}
		ps.up = false
		s.event(change.Event{NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventPeerDown, Fields: map[string]any{
			"reason": "not re-announced after the BMP session restarted", "stale": true, "pseudo_peer": ps.pseudo, "routes_cleared": int64(n),
		}})
		if n == 0 || ps.pseudo {
			// Nothing left to report for it: forget it, so a peer that
			// comes back starts afresh.
			delete(r.peers, k)
		}
	}
	if peers > 0 {
		s.log.Info("expired peers not re-announced after BMP reconnect", slog.Int("peers", peers), slog.Int("routes", routes))
	}
}

func (s *session) history(ps *peerState, kind string, ts time.Time, d *decode.PeerDown) {
	if ps.pseudo {
		return
	}
	ps.histSeq++
	seq := strconv.FormatUint(ps.histSeq, 10)
	hp := func(leaf string) *gpb.Path {
		return keyed(change.MeshdNeighborPath(ps.ni, ps.addr, "bmp", "history", "event", "state", leaf), "event", "sequence", seq)
	}
	s.set(hp("sequence"), change.Uint(ps.histSeq))
	s.set(hp("time"), change.Uint(uint64(ts.UnixNano())))
	s.set(hp("kind"), change.String(kind))
	if d != nil {
		s.set(hp("reason-code"), change.Uint(uint64(d.ReasonCode)))
		s.set(hp("reason"), change.String(d.Reason))
	}
	if n := uint64(s.b.cfg.History); ps.histSeq > n {
		old := strconv.FormatUint(ps.histSeq-n, 10)
		s.del(keyed(change.MeshdNeighborPath(ps.ni, ps.addr, "bmp", "history", "event"), "event", "sequence", old))
	}
}

func joinComma(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}
