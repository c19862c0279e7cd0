package merge

import (
	"time"

	"github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
)

type nbrID struct{ ni, addr string }

// nbrInfo keeps what the verdict needs without scanning the leaves.
type nbrInfo struct {
	leaves int
	// The neighbor's network-instance and neighbor elements, as a source
	// sent them, for the verdict's paths (see verdictPath); nil until a
	// path with elements of the shape needed comes.
	niElem, nbrElem *gnmi.PathElem
	lastSeen        [4]int64  // by change.Source (meshd's own is not seen), Unix ns, 0 for never
	verdict         time.Time // when the verdict was last computed
}

// verdictInputs are the leaves the verdict is made of; a change to any
// other leaf (a message counter, an RTT) only refreshes the verdict's
// last-seen times, at most every lastSeenStep.
var verdictInputs = map[string]bool{
	"session-state": true, "established-transitions": true, "last-established": true,
	"last-hop-change": true, "last-down-reason": true,
	"last-loss": true, "rtt-recent": true, "rtt-baseline": true,
}

// verdictDue reports whether a change below a neighbor calls for the
// verdict to be computed again.
func verdictDue(n *nbrInfo, rest []*gnmi.PathElem, deleted bool, at time.Time) bool {
	if n == nil || deleted || len(rest) == 0 || n.verdict.IsZero() {
		return true
	}
	if len(rest) > 0 && rest[0].GetName() == "verdict" {
		return false
	}
	if verdictInputs[rest[len(rest)-1].GetName()] || at.Sub(n.verdict) >= lastSeenStep ||
		at.Before(n.verdict) && aheadOfClock(n.verdict.UnixNano()) {
		n.verdict = at
		return true
	}
	return false
}

// clockSlack is how far ahead of meshd's clock a time must be before it
// is taken for one a clock stepped back has left behind, not a router's
// clock running a little fast.
const clockSlack = 5 * time.Minute

// aheadOfClock reports whether a time (Unix ns) is later than meshd's
// clock allows: after a clock steps back, the last-seen times and the
// verdict's own time held from before are an hour (say) in the future,
// and keeping the latest of them froze the verdict's "now" for that hour:
// last-seen leaves stood still and a flap in that hour was not flagged.
// Such a time gives way to the next change's. Only then is the clock
// read, so the hot path pays nothing.
func aheadOfClock(ns int64) bool {
	return ns > time.Now().Add(clockSlack).UnixNano()
}

// seen records a change for a neighbor's verdict bookkeeping.
// p must be the path keyOf was last given; r.nbr is left naming its
// neighbor.
func (r *router) seen(p *gnmi.Path, src change.Source, at time.Time, added int) {
	n := r.nbr.info
	if n != nil {
		r.nbr.rest = p.GetElem()[r.nbr.depth:]
	} else {
		ni, addr, rest, ok := change.NeighborOf(p)
		if !ok {
			return
		}
		id := nbrID{ni, addr}
		n = r.nbrs[id]
		if n == nil {
			n = &nbrInfo{}
			r.nbrs[id] = n
		}
		depth := len(p.GetElem()) - len(rest)
		r.nbr.depth, r.nbr.id, r.nbr.info, r.nbr.rest = depth, id, n, rest
		if n.nbrElem == nil {
			n.niElem, n.nbrElem = neighborElems(p.GetElem()[:depth])
		}
	}
	n.leaves += added
	if src != change.SourceMeshd && int(src) < len(n.lastSeen) {
		if ns, last := at.UnixNano(), n.lastSeen[src]; ns > last || ns < last && aheadOfClock(last) {
			n.lastSeen[src] = ns
		}
	}
}
