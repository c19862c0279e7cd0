package bmpbridge

import (
	"strconv"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/bmpbridge/decode"
	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/rpki"
)

func (s *session) stats(m *decode.Message) {
	ps := s.r.peer(m.Peer)
	if ps.pseudo {
		// Instance-level stats (FRR reports them for 0.0.0.0): an event
		// only, as the model has no router-level stats list.
		fields := map[string]any{"peer_type": m.Peer.Type, "rib": m.Peer.RIB, "pseudo_peer": true}
		for _, st := range m.Stats {
			k := st.Name
			if st.AfiSafi != "" {
				k += "." + st.AfiSafi
			}
			fields[k] = int64(st.Value)
		}
		s.event(change.Event{NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventStats, Fields: fields})
		return
	}
	sums := map[uint16]uint64{}
	var order []uint16
	fields := map[string]any{"peer_type": m.Peer.Type, "rib": m.Peer.RIB}
	for _, st := range m.Stats {
		if _, ok := sums[st.Type]; !ok {
			order = append(order, st.Type)
		}
		sums[st.Type] += st.Value
		k := st.Name
		if st.AfiSafi != "" {
			k += "." + st.AfiSafi
		}
		fields[k] = int64(st.Value)
	}
	for _, t := range order {
		ts := strconv.Itoa(int(t))
		cp := func(leaf string) *gpb.Path {
			return keyed(change.MeshdNeighborPath(ps.ni, ps.addr, "bmp", "stats", "counter", "state", leaf), "counter", "type", ts)
		}
		if !ps.statsSeen[t] {
			ps.statsSeen[t] = true
			s.set(cp("type"), change.Uint(uint64(t)))
			s.set(cp("name"), change.String(decode.StatName(t)))
		}
		s.set(cp("value"), change.Uint(sums[t]))
		s.set(cp("last-report"), change.Uint(uint64(s.now.UnixNano())))
		if leaf := sessionMessages[t]; leaf != nil && s.attached {
			s.set(change.NeighborPath(ps.ni, ps.addr, append([]string{"state", "messages"}, leaf...)...), change.Uint(sums[t]))
			if t == decode.StatUpdatesSent {
				// meshd sends the router none.
				s.set(change.NeighborPath(ps.ni, ps.addr, "state", "messages", "received", "UPDATE"), change.Uint(0))
			}
		}
	}
	if rt, ok := sums[decode.StatGracefulRestart]; ok && rt > 0 && s.attached {
		s.gracefulRestart(ps, rt, s.now)
	}
	s.event(change.Event{NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventStats, Fields: fields})
}

// sessionMessages places the peering source's message counts (read from
// in-process streams only) in OpenConfig's neighbor state: the router's
// view of its session with meshd.
var sessionMessages = map[uint16][]string{
	decode.StatUpdatesSent:       {"sent", "UPDATE"},
	decode.StatNotificationsSent: {"sent", "NOTIFICATION"},
	decode.StatNotificationsRcvd: {"received", "NOTIFICATION"},
}

// counterChanges writes the route counters of peers whose RIBs changed.
func (s *session) counterChanges() {
	r := s.r
	if r.messages != r.lastMessages {
		r.lastMessages = r.messages
		s.set(change.MeshdRouterPath("bmp-messages"), change.Uint(r.messages))
	}
	if r.errors != r.lastErrors {
		r.lastErrors = r.errors
		s.set(change.MeshdRouterPath("bmp-errors"), change.Uint(r.errors))
	}
	var total int
	for _, ps := range r.peers {
		for _, vs := range ps.views {
			total += vs.t.Len()
		}
		if !ps.countsDirty {
			continue
		}
		ps.countsDirty = false
		if ps.pseudo {
			for view, vs := range ps.views {
				s.b.m.instanceRoutes.WithLabelValues(r.name, ps.ni, view).Set(float64(vs.t.Len()))
				if s.b.rov != nil {
					for st, n := range vs.t.States() {
						s.b.rovm.instance.WithLabelValues(r.name, ps.ni, view, rpki.State(st).String()).Set(float64(n))
					}
				}
			}
			continue
		}
		afi := map[string]uint64{}
		noPre := s.noPrePolicy(ps)
		for view, vs := range ps.views {
			rp := func(leaf string) *gpb.Path {
				return keyed(change.MeshdNeighborPath(ps.ni, ps.addr, "bmp", "ribs", "rib", "state", leaf), "rib", "view", view)
			}
			if !vs.written {
				vs.written = true
				s.set(rp("view"), change.String(view))
			}
			s.set(rp("prefixes"), change.Uint(uint64(vs.t.Len())))
			s.set(rp("announcements"), change.Uint(vs.ann))
			s.set(rp("withdrawals"), change.Uint(vs.wd))
			s.set(rp("duplicates"), change.Uint(vs.dup))
			s.set(rp("origin-changes"), change.Uint(vs.origin))
			if s.b.rov != nil {
				st := vs.t.States()
				s.set(rp("rpki-valid"), change.Uint(st[rpki.Valid]))
				s.set(rp("rpki-invalid-origin"), change.Uint(st[rpki.InvalidOrigin]))
				s.set(rp("rpki-invalid-length"), change.Uint(st[rpki.InvalidLength]))
				s.set(rp("rpki-not-found"), change.Uint(st[rpki.NotFound]))
			}
			leaf := ""
			switch view {
			case "ADJ_RIB_IN_PRE":
				if !noPre {
					leaf = "received-pre-policy"
				}
			case "ADJ_RIB_IN_POST":
				leaf = "received"
			case "ADJ_RIB_OUT_POST":
				leaf = "sent"
			}
			if leaf == "" {
				continue
			}
			for f, n := range vs.t.Counts() {
				afi[decode.AfiSafiName(f)+"/"+leaf] += n
				ps.afiCounts[decode.AfiSafiName(f)] = true
			}
			for name := range ps.afiCounts {
				if _, ok := afi[name+"/"+leaf]; !ok {
					afi[name+"/"+leaf] = 0
				}
			}
		}
		if noPre && ps.preWritten {
			// What the feed cannot carry is not shown as 0.
			ps.preWritten = false
			for name := range ps.afiCounts {
				if isOCFamily(name) {
					s.del(change.AfiSafiPath(ps.ni, ps.addr, name, "state", "prefixes", "received-pre-policy"))
				}
			}
		}
		for k, n := range afi {
			i := len(k) - 1
			for k[i] != '/' {
				i--
			}
			if !isOCFamily(k[:i]) {
				continue
			}
			if k[i+1:] == "received-pre-policy" {
				ps.preWritten = true
			}
			s.set(change.AfiSafiPath(ps.ni, ps.addr, k[:i], "state", "prefixes", k[i+1:]), change.Uint(min(n, 1<<32-1)))
		}
	}
	s.b.m.routes.Set(float64(s.b.routeTotal.Add(int64(total) - r.lastTotal)))
	r.lastTotal = int64(total)
}

func isOCFamily(name string) bool {
	switch name {
	case "IPV4_UNICAST", "IPV6_UNICAST", "IPV4_LABELED_UNICAST", "IPV6_LABELED_UNICAST", "L3VPN_IPV4_UNICAST", "L3VPN_IPV6_UNICAST", "L2VPN_EVPN":
		return true
	}
	return false
}
