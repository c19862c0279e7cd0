package bmpbridge

import (
	"log/slog"
	"strings"

	"github.com/meshd/meshd/bmpbridge/decode"
)

// fabricatedWithdraw tells whether a pre-policy withdraw of a route the
// pre-policy view does not hold is the sender saying it has no
// Adj-RIB-In: the peer's post-policy view holds the route, which a real
// Adj-RIB-In would then hold too (post-policy routes are pre-policy
// routes that passed the import policy). FRR without
// soft-reconfiguration inbound sends such a withdraw after every
// post-policy announce (FRR issue 10240).
//
// Without a post-policy view (pre-policy monitoring alone, as the lab's
// IPv6), a withdraw into a pre-policy view that has never held a route
// tells the same: a sender with an Adj-RIB-In sends its routes in the BMP
// session's initial table, before any withdraw of them. (Not with a
// post-policy view: FRR with soft-reconfiguration inbound sends a
// pre-policy withdraw for a route its import policy denies, though its
// Adj-RIB-In holds it. Should a first route be denied so, the first
// pre-policy announce clears the verdict.)
func (s *session) fabricatedWithdraw(ps *peerState, n *decode.NLRI) bool {
	if ps.quirks&quirkNoPrePolicy != 0 {
		return true
	}
	post := ps.views["ADJ_RIB_IN_POST"]
	pre := ps.views["ADJ_RIB_IN_PRE"]
	if (post == nil && pre != nil && pre.ann == 0 && pre.t.Len() == 0) || (post != nil && post.t.Has(n)) {
		s.noteQuirk(ps, quirkNoPrePolicy)
		ps.countsDirty = true
		return true
	}
	return false
}

// noPrePolicy tells whether the peer's pre-policy feed carries nothing
// while its post-policy one has routes: the pre-policy view has never
// held a route though its table transfer is done. Then the sender keeps
// no Adj-RIB-In (FRR's initial sync sends only post-policy routes for a
// neighbor without soft-reconfiguration inbound).
func (s *session) noPrePolicy(ps *peerState) bool {
	if ps.quirks&quirkNoPrePolicy != 0 {
		return true
	}
	pre, post := ps.views["ADJ_RIB_IN_PRE"], ps.views["ADJ_RIB_IN_POST"]
	if pre == nil || post == nil || pre.ann > 0 || pre.t.Len() > 0 || post.t.Len() == 0 || pre.warmAt.IsZero() || s.now.Before(pre.warmAt) {
		return false
	}
	s.noteQuirk(ps, quirkNoPrePolicy)
	return true
}

// quirk is a sender behaviour meshd corrects for or distrusts.
type quirk uint8

const (
	// quirkLocalASPrepended: Adj-RIB-In AS_PATHs start with the router's
	// own AS (FRR 8.4).
	quirkLocalASPrepended quirk = 1 << iota
	// quirkNoPrePolicy: the pre-policy feed is withdraws only, as FRR's
	// is for a neighbor without soft-reconfiguration inbound.
	quirkNoPrePolicy
	// quirkLocRIBPathIDs: Loc-RIB routes come under path IDs, and a new
	// best path is sent under a new one without a withdraw of the path
	// it replaces (gobgpd v4).
	quirkLocRIBPathIDs
)

var quirkNames = map[quirk]string{quirkLocalASPrepended: "local_as_prepended", quirkNoPrePolicy: "pre_policy_without_adj_rib_in", quirkLocRIBPathIDs: "loc_rib_path_ids"}

// oneLocRIBPath drops the path IDs of a Loc-RIB update: the Loc-RIB is
// the router's best path per prefix (RFC 9069), so a route announced for
// a prefix replaces the one held, whatever path ID each came under.
// gobgpd v4 numbers its Loc-RIB paths and, when the best path changes,
// sends the new one alone: kept by path ID, the replaced path stayed
// held for good (a hijacked prefix the hijacker withdrew still showed
// its origin in the Loc-RIB). A router that reports several Loc-RIB
// paths of one prefix at once is counted a prefix at a time too.
func (s *session) oneLocRIBPath(ps *peerState, u *decode.Update) {
	seen := false
	for _, nl := range [2][]decode.NLRI{u.Announce, u.Withdraw} {
		for i := range nl {
			if nl[i].PathID != 0 {
				nl[i].PathID, seen = 0, true
			}
		}
	}
	if seen {
		s.noteQuirk(ps, quirkLocRIBPathIDs)
	}
}

// noteQuirk records a sender quirk once per peer: counted, logged once.
func (s *session) noteQuirk(ps *peerState, q quirk) {
	if ps.quirks&q != 0 {
		return
	}
	ps.quirks |= q
	s.b.m.quirks[quirkNames[q]].Inc()
	s.log.Info("BMP sender quirk", slog.String("quirk", quirkNames[q]), slog.String("network_instance", ps.ni), slog.String("neighbor", ps.addr))
}

// asPath is the AS_PATH of a route as the neighbor sent it: in an
// Adj-RIB-In or the Loc-RIB, a path that starts with the router's own AS
// and then the eBGP neighbor's is the sender's outbound encoding (FRR 8.4
// prepends its AS, bgp_bmp.c bmp_update calling bgp_packet_attribute);
// the leading AS is dropped. Adj-RIB-Out paths are kept as they are:
// there the prepend is what goes on the wire (RFC 8671).
func (s *session) asPath(ps *peerState, view string, at *decode.Attrs) string {
	p := stripPrepended(ps, view, at.ASPath)
	if len(p) != len(at.ASPath) {
		s.noteQuirk(ps, quirkLocalASPrepended)
	}
	return p
}

// stripPrepended is asPath without noting the quirk (a reader of the
// RIBs, which changes nothing).
func stripPrepended(ps *peerState, view, p string) string {
	if ps.prepended == "" || len(p) < len(ps.prepended) || p[:len(ps.prepended)] != ps.prepended ||
		(len(p) > len(ps.prepended) && p[len(ps.prepended)] != ' ') {
		return p
	}
	switch view {
	case "ADJ_RIB_IN_PRE", "ADJ_RIB_IN_POST", "LOC_RIB":
	default:
		return p
	}
	return p[strings.IndexByte(p, ' ')+1:]
}
