package bmpbridge

import (
	"net/netip"
	"time"

	"github.com/meshd/meshd/bmpbridge/decode"
	"github.com/meshd/meshd/bmpbridge/rib"
	"github.com/meshd/meshd/ribview"
)

// The RIBs as the gNMI target serves them (ribview): the bridge is the
// hub's Source, and publishes each change of a unicast route while a
// subscriber watches.

// ribBatch is how many routes WalkRIB reads under the router's lock at a
// time: a few hundred microseconds of the router's session.
const ribBatch = 512

// WithRIBHub has the bridge serve its RIBs through h (the gNMI target's
// RIB paths).
func WithRIBHub(h *ribview.Hub) Option { return func(b *Bridge) { b.ribs = h } }

// RIBRouters lists the routers the bridge holds RIBs for (ribview.Source).
func (b *Bridge) RIBRouters() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.routers))
	for name := range b.routers {
		out = append(out, name)
	}
	return out
}

// ribTable is one table a walk reads, and the keys it had.
type ribTable struct {
	ps     *peerState
	view   string
	vs     *viewState
	ni, nb string // its place in the model (ribPlace)
	keys   []rib.Key
}

// WalkRIB reads router's unicast routes that sel selects (ribview.Source):
// every selected table's keys at once under the router's lock (about 32
// bytes a route while the walk lasts), then the routes ribBatch at a
// time, each batch under the lock and fn without it. A route gone since
// its key was taken is skipped; one added since is not in the walk (a
// stream's watch has it).
func (b *Bridge) WalkRIB(router string, sel *ribview.Select, fn func([]ribview.Route) error) error {
	b.mu.Lock()
	r := b.routers[router]
	b.mu.Unlock()
	if r == nil {
		return nil
	}
	var tabs []ribTable
	v4, v6, p := true, true, netip.Prefix{}
	if sel != nil {
		v4, v6, p = !sel.NoV4, !sel.NoV6, sel.Prefix
	}
	r.mu.Lock()
	for _, ps := range r.peers {
		for view, vs := range ps.views {
			ni, nb, ok := ribPlace(ps, view)
			if !ok || !sel.WantsTable(ni, nb, view) {
				continue
			}
			tabs = append(tabs, ribTable{ps: ps, view: view, vs: vs, ni: ni, nb: nb, keys: vs.t.AppendKeys(nil, v4, v6, p)})
		}
	}
	r.mu.Unlock()
	batch := make([]ribview.Route, 0, ribBatch)
	attrs := map[uint32]*ribview.Attrs{} // a batch's sets, each converted once
	for _, tab := range tabs {
		for len(tab.keys) > 0 {
			n := min(len(tab.keys), ribBatch)
			batch = batch[:0]
			clear(attrs)
			r.mu.Lock()
			for _, k := range tab.keys[:n] {
				a, id, ok := tab.vs.t.Get(k)
				if !ok || a == nil {
					continue
				}
				ra := attrs[id]
				if ra == nil {
					ra = ribAttrs(tab.ps, tab.view, a, id)
					attrs[id] = ra
				}
				batch = append(batch, ribview.Route{NI: tab.ni, Neighbor: tab.nb, View: tab.view, Prefix: k.Prefix, PathID: k.PathID, Attrs: ra})
			}
			r.mu.Unlock()
			tab.keys = tab.keys[n:]
			if err := fn(batch); err != nil {
				return err
			}
		}
	}
	return nil
}

// ribPlace is where a peer's view sits in the model: the Loc-RIB of its
// instance, or a neighbor's Adj-RIB; ok false for what the model has no
// place for (a pseudo-peer's other views: FRR's post-policy 0.0.0.0).
func ribPlace(ps *peerState, view string) (ni, neighbor string, ok bool) {
	if view == ribview.LocRIB {
		return ps.inst, "", true
	}
	if ps.pseudo {
		return "", "", false
	}
	return ps.ni, ps.addr, true
}

// ribAttrs converts a set for the model; the router's lock is held. The
// AS_PATH is the one route events carry (a sender's own AS prepended by
// FRR's encoding taken off, see quirks.go).
func ribAttrs(ps *peerState, view string, a *decode.Attrs, id uint32) *ribview.Attrs {
	return &ribview.Attrs{Index: uint64(id), Origin: a.Origin, ASPath: stripPrepended(ps, view, a.ASPath), NextHop: a.NextHop,
		MED: a.MED, LocalPref: a.LocalPref, Communities: a.Communities}
}

// publishRoute hands a route change to the RIB's watchers, if any watch;
// the router's lock is held. a is nil for a withdrawal.
func (s *session) publishRoute(ps *peerState, view string, n *decode.NLRI, a *decode.Attrs, ts time.Time) {
	h := s.b.ribs
	if h == nil || !h.Watching() || !rib.IPRoute(n) {
		return
	}
	ni, nb, ok := ribPlace(ps, view)
	if !ok {
		return
	}
	rt := ribview.Route{NI: ni, Neighbor: nb, View: view, Prefix: n.IP, PathID: n.PathID, Time: ts.UnixNano()}
	if a != nil {
		rt.Attrs = ribAttrs(ps, view, a, a.Slot)
	}
	h.Publish(s.r.name, &rt)
}
