package bmpbridge

import (
	"sync"
	"time"

	"github.com/meshd/meshd/bmpbridge/decode"
	"github.com/meshd/meshd/bmpbridge/rib"
	"github.com/osrg/gobgp/v4/pkg/packet/bmp"
)

// How routes leave the RIBs (what the leaves and events say):
//
//   - A Withdraw: one route event, counted in the view's withdrawals.
//   - Peer Down: every route of the peer is dropped at once, counted as
//     withdrawals of its views and in meshd_bmp_routes_cleared_total
//     {reason="peer_down"}; each goes out as a withdraw route event, and
//     the peer_down event carries routes_cleared.
//   - BMP reconnect: the router re-sends every peer it has; a peer not
//     re-announced (Peer Up, routes or stats) within stale-timeout is
//     expired the same way ({reason="stale"}), with one peer_down event
//     (stale=true) and session-state IDLE.
//
// Pseudo-peers (Loc-RIB instance peers, RFC 9069 peer type 3, and peers
// with address 0.0.0.0 or ::, for which FRR 8.4 sends stats) are not BGP
// neighbors: nothing is written under either neighbor list for them.
// Their RIBs are kept (RouteCount, the gauge meshd_bmp_instance_routes
// {router, network_instance, rib}) and their events are sent with the
// field pseudo_peer=true. A router-level place in the model would hold
// their counters; see the package's report for the proposed change.

// routerState is what meshd holds for one router across its BMP sessions:
// the RIBs stay so that a full re-send after a reconnect is recognised.
type routerState struct {
	mu       sync.Mutex
	name     string
	in       *rib.Interner
	peers    map[decode.PeerKey]*peerState
	messages uint64
	errors   uint64
	sessions int
	// activePath is the path (session.relay) of the router's applied
	// sessions, and standbys its sessions held on other paths.
	activePath string
	standbys   map[*session]struct{}

	lastMessages, lastErrors uint64
	lastTotal                int64

	// held is the routes in every view of every peer, for the route
	// budget (bmp.max-routes-per-router); budget is the rate budget
	// (nil: none), shared by the router's sessions and safe for
	// concurrent use.
	held   int
	budget *budget

	// gen counts the router's BMP sessions; a peer seen in the current
	// session carries it. After a reconnect, peers still on an older gen
	// when sweepAt passes were not re-announced: the router no longer has
	// them, and their routes are cleared.
	gen     uint64
	sweepAt time.Time

	// localAS is the router's own AS per network instance, from its Peer
	// Ups (the local AS of a neighbor's session; RFC 9069's Loc-RIB
	// instance peer carries it as the peer AS): the origin of the routes
	// it originates itself, which carry an empty AS_PATH.
	localAS map[string]uint32
	// covering is scratch for origin checks.
	covering []*decode.Attrs
	// rov is the VRP changes not yet applied to the RIBs; rovWake tells
	// the router's applied session there are some (rov.go).
	rov     rovQueue
	rovWake chan struct{}
}

type peerState struct {
	ni, addr string
	// pseudo marks a peer that is no BGP neighbor: a Loc-RIB instance
	// (RFC 9069, peer type 3) or a per-instance peer with the unspecified
	// address (FRR sends stats for 0.0.0.0). Its RIB is kept and its
	// events sent, but it gets no neighbor entry in either model.
	pseudo bool
	gen    uint64
	// as is the AS in the peer's per-peer header.
	as uint32
	// prepended is "LOCAL PEER" for an eBGP neighbor: an AS_PATH received
	// from it that starts so has the router's own AS prepended by the
	// sender (FRR encodes monitored routes as it would send them on, see
	// the package doc); quirks are the sender quirks seen for the peer.
	prepended string
	quirks    quirk
	// preWritten: received-pre-policy leaves have been written.
	preWritten bool
	// inst is the BGP instance whose routes the peer's views hold, for
	// origin checks: ni, except for the Loc-RIB instance peer of the
	// global instance (RFC 9069, peer distinguisher 0), which gobgpd
	// names "global" (VRF/Table Name TLV) while its neighbors are in
	// "default".
	inst string
	// upGen is the router session gen of the last Peer Up; ports are the
	// BGP session's TCP ports from it.
	upGen      uint64
	localPort  uint16
	remotePort uint16
	up         bool
	// restarting: a graceful restart holds the peer's routes, stale
	// (graceful.go).
	restarting bool
	// upTime is the last Peer Up's timestamp as the router sent it;
	// downAt is when meshd last knew the peer down (peerUp).
	upTime    time.Time
	downAt    time.Time
	upCount   uint64
	downCount uint64
	// stateKnown: meshd has written a session state for the peer.
	stateKnown  bool
	histSeq     uint64
	views       map[string]*viewState
	afiCounts   map[string]bool // afi-safis written to the core
	statsSeen   map[uint16]bool
	countsDirty bool
}

type viewState struct {
	t *rib.Table
	// warmAt is when the initial table transfer counts as done (End-of-RIB
	// or originCheckDelay after the first route): only then is a new
	// more-specific prefix news rather than part of the dump.
	warmAt time.Time
	// famWarm is warmAt per AFI-SAFI, for origin checks: an End-of-RIB
	// ends one family's initial table (RFC 4724 2), and a router sends
	// its IPv6 table after its IPv4 End-of-RIB.
	famWarm                            []famWarm
	ann, wd, dup, origin, missing      uint64
	lastAnn, lastWd, lastDup, lastOrig uint64
	written                            bool
	// pathIDs are the ADD-PATH path IDs this view has carried (a few),
	// to match routes a speaker re-sends without them.
	pathIDs []uint32
	// stale are the routes a graceful restart marked (graceful.go), nil
	// when none; staleUntil is when they go without an End-of-RIB.
	stale      map[rib.Key]struct{}
	staleUntil time.Time
}

const maxPathIDs = 8

type famWarm struct {
	afiSafi string
	at      time.Time
}

// warmAt returns where a family's warm time is kept, zero at first.
func (vs *viewState) famWarmAt(afiSafi string) *time.Time {
	for i := range vs.famWarm {
		if vs.famWarm[i].afiSafi == afiSafi {
			return &vs.famWarm[i].at
		}
	}
	vs.famWarm = append(vs.famWarm, famWarm{afiSafi: afiSafi})
	return &vs.famWarm[len(vs.famWarm)-1].at
}

// matchPathIDs gives routes decoded without the path IDs their session
// negotiated (gobgpd v4 re-sends pre-policy routes so after a BMP
// reconnect) the ID of the path the view holds for the prefix, so the
// re-send is recognised as such instead of adding a second path.
func (vs *viewState) matchPathIDs(nl []decode.NLRI) {
	for i := range nl {
		n := &nl[i]
		if n.PathID != 0 || vs.t.Has(n) {
			continue
		}
		c := *n
		for _, id := range vs.pathIDs {
			if c.PathID = id; vs.t.Has(&c) {
				n.PathID = id
				break
			}
		}
	}
}

func (vs *viewState) notePathID(id uint32) {
	if id == 0 || len(vs.pathIDs) >= maxPathIDs {
		return
	}
	for _, x := range vs.pathIDs {
		if x == id {
			return
		}
	}
	vs.pathIDs = append(vs.pathIDs, id)
}

func newRouterState(name string) *routerState {
	return &routerState{name: name, in: rib.NewInterner(), peers: map[decode.PeerKey]*peerState{}, localAS: map[string]uint32{}, rovWake: make(chan struct{}, 1)}
}

func (r *routerState) peer(p *decode.Peer) *peerState {
	ps := r.peers[p.Key]
	if ps == nil {
		ps = &peerState{ni: p.NetworkInstance, addr: p.Address, pseudo: isPseudo(p), views: map[string]*viewState{}, afiCounts: map[string]bool{}, statsSeen: map[uint16]bool{}}
		r.peers[p.Key] = ps
	}
	ps.gen = r.gen
	if p.AS != 0 {
		ps.as = p.AS
	}
	ps.inst = instanceOf(p)
	return ps
}

// instanceOf is the BGP instance of a peer's routes (peerState.inst).
func instanceOf(p *decode.Peer) string {
	if p.TypeCode == bmp.BMP_PEER_TYPE_LOCAL_RIB && p.Key.RD == 0 {
		return "default"
	}
	return p.NetworkInstance
}

// originOf is the origin AS of a route held in a view of peer ps: the
// last AS of its AS_PATH, or for an empty AS_PATH the AS that originated
// it without prepending: in an Adj-RIB-In, the peer's (an iBGP peer's
// own routes, or a route server's), elsewhere (Loc-RIB, Adj-RIB-Out,
// RFC 9069 and 8671) the router's own. 0 when that is not known.
func (r *routerState) originOf(ps *peerState, view string, a *decode.Attrs) uint32 {
	if a == nil {
		return 0
	}
	if a.OriginAS != 0 {
		return a.OriginAS
	}
	if a.ASPath != "" {
		// A path that ends in an AS_SET has no single origin.
		return 0
	}
	if !ps.pseudo && (view == "ADJ_RIB_IN_PRE" || view == "ADJ_RIB_IN_POST") {
		return ps.as
	}
	if as := r.localAS[ps.inst]; as != 0 {
		return as
	}
	if ps.pseudo {
		return ps.as // RFC 9069 4.1: the Loc-RIB instance peer's AS is the router's
	}
	return 0
}

// coveringOrigins finds the longest prefix covering n (a route just added
// to view of ps) in any RIB view of any peer of the router in the same
// BGP instance; with exact, only n's own prefix in the other views (the
// other paths for it). It returns the prefix length (-1 for none), the
// origins held for it, and where the first was found.
func (r *routerState) coveringOrigins(ps *peerState, view string, n *decode.NLRI, exact bool) (bits int, origins []uint32, where *peerState, whereView string) {
	bits = -1
	minBits := 0
	if exact {
		minBits = n.IP.Bits()
	}
	for _, qs := range r.peers {
		if qs.inst != ps.inst {
			continue
		}
		for qv, vs := range qs.views {
			own := qs == ps && qv == view
			if exact && (own || isRIBOut(view) || isRIBOut(qv)) {
				// An Adj-RIB-Out route is the Loc-RIB's after export
				// policy, which may rewrite the path (remove-private-as):
				// another origin there is policy, not another originator.
				continue
			}
			ids := vs.pathIDs
			if n.PathID != 0 && own {
				ids = []uint32{n.PathID}
			}
			l, as := vs.t.LongestCovering(n, ids, exact, max(bits, minBits), r.covering[:0])
			r.covering = as[:0]
			if l < 0 {
				continue
			}
			if l > bits {
				bits, origins, where, whereView = l, origins[:0], qs, qv
			}
			for _, a := range as {
				if o := r.originOf(qs, qv, a); o != 0 {
					origins = append(origins, o)
				}
			}
		}
	}
	return bits, origins, where, whereView
}

func isRIBOut(view string) bool { return view == "ADJ_RIB_OUT_PRE" || view == "ADJ_RIB_OUT_POST" }

// isPseudo tells a BMP peer that stands for the router itself (Loc-RIB
// instance, or the unspecified address) from a BGP neighbor.
func isPseudo(p *decode.Peer) bool {
	return p.TypeCode == bmp.BMP_PEER_TYPE_LOCAL_RIB || p.Address == "0.0.0.0" || p.Address == "::" || p.Address == ""
}

func (r *routerState) view(ps *peerState, v string) *viewState {
	vs := ps.views[v]
	if vs == nil {
		vs = &viewState{t: rib.NewTable(r.in)}
		ps.views[v] = vs
	}
	return vs
}
