package merge

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
)

type nbrKey struct{ router, ni, addr string }

// recentChange is how long a flap or a path change keeps a session
// DEGRADED after it happened.
const recentChange = 5 * time.Minute

// recentLoss is how long a lost keepalive keeps a session DEGRADED.
const recentLoss = time.Minute

// An RTT rise is sustained and large enough to degrade a session when the
// least of the probe's last five samples (rtt-recent) is above the least
// of the last hour (rtt-baseline) by more than rttRiseMin and by more
// than rttRiseRel of the baseline. The floor sits far above what idle
// paths showed: on a 2-core machine at load 4-10, the least of 5 stayed
// within 0.5 ms of the baseline on every lab and test link, while single
// samples reached 152 ms and the least of 3 once ran 11 ms up (see
// probe/stats). The ratio keeps a long path's ordinary swings out.
const (
	rttRiseMin = 10 * time.Millisecond
	rttRiseRel = 0.5
)

// lastSeenStep bounds how often last-seen leaves are rewritten, so a
// steady stream of samples does not double the update rate.
const lastSeenStep = 10 * time.Second

// verdictLocked recomputes the joined verdict of every neighbor touched by
// a batch and appends the verdict leaves that changed.
func (c *Core) verdictLocked(locked routerSet, keys []nbrKey, ups []change.Update) []change.Update {
	if len(keys) == 0 {
		return ups
	}
	slices.SortFunc(keys, func(a, b nbrKey) int {
		return cmp.Or(strings.Compare(a.router, b.router), strings.Compare(a.ni, b.ni), strings.Compare(a.addr, b.addr))
	})
	keys = slices.Compact(keys)
	for _, k := range keys {
		r := locked.get(k.router)
		if r == nil {
			continue
		}
		ups = c.verdictOne(r, k, ups)
	}
	return ups
}

func (c *Core) verdictOne(r *router, k nbrKey, ups []change.Update) []change.Update {
	n := r.nbrs[nbrID{k.ni, k.addr}]
	// The leaves read here are all directly below the neighbor, in the
	// neighbor's group of the leaf store: its two group keys are built in
	// the router's buffers, and looked up without allocating.
	r.ocKey = change.AppendNeighborKey(r.ocKey[:0], k.ni, k.addr)
	r.meshKey = change.AppendMeshdNeighborKey(r.meshKey[:0], k.ni, k.addr)
	ocLeaf := func(rest string) *leaf { return r.leaves.inGroupBytes(r.ocKey, rest) }
	meshLeaf := func(rest string) *leaf { return r.leaves.inGroupBytes(r.meshKey, rest) }
	if n == nil || n.leaves <= countVerdictLeaves(meshLeaf) {
		// The neighbor is gone: drop its verdict too.
		ch := change.Change{Router: r.name, Path: change.MeshdNeighborPath(k.ni, k.addr, "verdict"), Time: time.Now(), Source: change.SourceMeshd}
		var res Result
		return c.deleteLocked(r, &ch, ups, &res)
	}
	var now time.Time
	defer func() {
		if n.verdict.Before(now) || !now.IsZero() && n.verdict.After(now) && aheadOfClock(n.verdict.UnixNano()) {
			n.verdict = now
		}
	}()
	for _, ns := range n.lastSeen {
		if t := time.Unix(0, ns); ns != 0 && t.After(now) {
			now = t
		}
	}

	health, reason := "UNKNOWN", "no session state reported yet"
	if st := ocLeaf("/state/session-state"); st != nil {
		s := st.stringVal()
		if s != "ESTABLISHED" {
			health, reason = "DOWN", "session-state "+s
			if rs := meshLeaf("/bmp/state/last-down-reason"); rs != nil && rs.time().Before(st.time().Add(time.Second)) == false {
				reason += ": " + rs.stringVal()
			}
		} else {
			health, reason = "HEALTHY", "established"
			if hc := meshLeaf("/probe/state/last-hop-change"); hc != nil {
				if at := time.Unix(0, int64(hc.uintVal())); now.Sub(at) < recentChange {
					health, reason = "DEGRADED", "path (hop count) changed recently"
				}
			}
			tr := ocLeaf("/state/established-transitions")
			le := ocLeaf("/state/last-established")
			if tr != nil && le != nil && tr.uintVal() > 1 {
				if at := lastEstablished(le.uintVal()); now.Sub(at) < recentChange {
					health, reason = "DEGRADED", "session flapped recently"
				}
			}
			if why := probeTrouble(meshLeaf, now); why != "" {
				if health == "DEGRADED" {
					reason = why + "; " + reason
				} else {
					health, reason = "DEGRADED", why
				}
			}
		}
	}

	// Most verdicts come out as they were: each leaf is compared with
	// what it holds before a value or a path is built for it.
	set := func(name string, v *gnmi.TypedValue) {
		p := verdictPath(n, k, name)
		ch := change.Change{Router: r.name, Path: p, Value: v, Time: now, Source: change.SourceMeshd}
		var res Result
		ups, _ = c.setLocked(r, &ch, ups, &res)
	}
	if l := meshLeaf("/verdict/state/health"); l == nil || l.stringVal() != health {
		set("health", change.String(health))
	}
	if l := meshLeaf("/verdict/state/reason"); l == nil || l.stringVal() != reason {
		set("reason", change.String(reason))
	}
	src := sourcesValue(n.lastSeen)
	if l := meshLeaf("/verdict/state/sources"); l == nil || !l.equal(src) {
		set("sources", src)
	}
	for _, ls := range lastSeenLeaves {
		ns := n.lastSeen[ls.src]
		if ns == 0 {
			continue
		}
		if cur := meshLeaf(ls.rest); cur != nil {
			// A last-seen time that went back (a clock stepped back) is
			// written at once.
			if d := ns - int64(cur.uintVal()); d >= 0 && d < int64(lastSeenStep) {
				continue
			}
		}
		set(ls.name, change.Uint(uint64(ns)))
	}
	return ups
}

// probeTrouble says what the probe's figures hold against an established
// session: a keepalive lost within recentLoss, or a sustained RTT rise
// over the session's baseline; "" when nothing.
func probeTrouble(meshLeaf func(rest string) *leaf, now time.Time) string {
	var why []string
	if ll := meshLeaf("/probe/state/last-loss"); ll != nil {
		if at := time.Unix(0, int64(ll.uintVal())); now.Sub(at) < recentLoss {
			w := "keepalives unanswered"
			if n := meshLeaf("/probe/state/losses"); n != nil {
				w += fmt.Sprintf(" (%d lost)", n.uintVal())
			}
			why = append(why, w)
		}
	}
	rec, ok1 := microseconds(meshLeaf("/probe/state/rtt-recent"))
	base, ok2 := microseconds(meshLeaf("/probe/state/rtt-baseline"))
	if ok1 && ok2 {
		rise := rec - base
		if rise > rttRiseMin && float64(rise) > rttRiseRel*float64(base) {
			why = append(why, fmt.Sprintf("RTT up %s over baseline %s", roundRTT(rise), roundRTT(base)))
		}
	}
	return strings.Join(why, "; ")
}

// microseconds reads a probe duration leaf (decimal64 microseconds).
func microseconds(l *leaf) (time.Duration, bool) {
	if l == nil {
		return 0, false
	}
	var us float64
	switch v := l.typed().GetValue().(type) {
	case *gnmi.TypedValue_DecimalVal:
		us = float64(v.DecimalVal.GetDigits()) / math.Pow10(int(v.DecimalVal.GetPrecision()))
	case *gnmi.TypedValue_DoubleVal:
		us = v.DoubleVal
	case *gnmi.TypedValue_FloatVal:
		us = float64(v.FloatVal)
	case *gnmi.TypedValue_UintVal:
		us = float64(v.UintVal)
	default:
		return 0, false
	}
	return time.Duration(us * 1e3), true
}

// roundRTT rounds for a reason string: whole ms from 10 ms, else 0.1 ms,
// so the reason does not change with every sample's microseconds.
func roundRTT(d time.Duration) time.Duration {
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Microsecond)
}

// sourcesValues holds one sources leaf-list value for each set of
// sources, shared (read-only) by every neighbor's verdict: a fleet's
// hundred thousand neighbors have a handful of distinct lists between
// them.
var sourcesValues [1 << len(nbrInfo{}.lastSeen)]atomic.Pointer[gnmi.TypedValue]

func sourcesValue(lastSeen [len(nbrInfo{}.lastSeen)]int64) *gnmi.TypedValue {
	mask := 0
	for src, ns := range lastSeen {
		if ns != 0 {
			mask |= 1 << src
		}
	}
	if v := sourcesValues[mask].Load(); v != nil {
		return v
	}
	var srcs []string
	for src, ns := range lastSeen {
		if ns != 0 {
			srcs = append(srcs, change.Source(src).String())
		}
	}
	sort.Strings(srcs)
	v := change.StringList(srcs)
	sourcesValues[mask].Store(v)
	return v
}

var lastSeenLeaves = []struct {
	src        change.Source
	name, rest string
}{
	{change.SourceGNMI, "last-seen-gnmi", "/verdict/state/last-seen-gnmi"},
	{change.SourceBMP, "last-seen-bmp", "/verdict/state/last-seen-bmp"},
	{change.SourceProbe, "last-seen-probe", "/verdict/state/last-seen-probe"},
}

// countVerdictLeaves counts the verdict's own leaves of a neighbor, so a
// neighbor with nothing else left is seen as gone.
func countVerdictLeaves(meshLeaf func(rest string) *leaf) int {
	n := 0
	for _, rest := range verdictLeaves {
		if meshLeaf(rest) != nil {
			n++
		}
	}
	return n
}

var verdictLeaves = []string{"/verdict/state/health", "/verdict/state/reason", "/verdict/state/sources",
	"/verdict/state/last-seen-gnmi", "/verdict/state/last-seen-bmp", "/verdict/state/last-seen-probe"}

// lastEstablished reads OpenConfig's last-established, which devices send
// in seconds or nanoseconds since the epoch (the model says ns; some
// implementations send seconds).
func lastEstablished(u uint64) time.Time {
	if u < 1e12 {
		return time.Unix(int64(u), 0)
	}
	return time.Unix(0, int64(u))
}

// Verdict leaves change all the time (a last-seen time every ten seconds
// for each busy neighbor); their paths are built of shared elements, the
// neighbor's own taken from the paths its sources sent, so that a path
// costs a Path and its element slice instead of eight elements and two
// key maps. Paths are read-only wherever they go.
var (
	elemMeshd     = &gnmi.PathElem{Name: "meshd"}
	elemNIs       = &gnmi.PathElem{Name: "network-instances"}
	elemNeighbors = &gnmi.PathElem{Name: "neighbors"}
	elemVerdict   = &gnmi.PathElem{Name: "verdict"}
	elemState     = &gnmi.PathElem{Name: "state"}
	verdictElems  = map[string]*gnmi.PathElem{}
)

func init() {
	for _, rest := range verdictLeaves {
		name := rest[strings.LastIndexByte(rest, '/')+1:]
		verdictElems[name] = &gnmi.PathElem{Name: name}
	}
}

// neighborElems finds, in the elements of a path up to a neighbor, its
// network-instance and neighbor elements, if their keys are those of
// meshd's model (name; neighbor-address) and nothing else.
func neighborElems(elems []*gnmi.PathElem) (ni, nbr *gnmi.PathElem) {
	for _, e := range elems {
		switch e.GetName() {
		case "network-instance":
			if _, ok := e.GetKey()["name"]; ok && len(e.GetKey()) == 1 {
				ni = e
			}
		case "neighbor":
			if _, ok := e.GetKey()["neighbor-address"]; ok && len(e.GetKey()) == 1 {
				nbr = e
			}
		}
	}
	if ni == nil || nbr == nil {
		return nil, nil
	}
	return ni, nbr
}

// verdictPath returns the path of one of a neighbor's verdict leaves.
func verdictPath(n *nbrInfo, k nbrKey, name string) *gnmi.Path {
	leaf := verdictElems[name]
	if n.nbrElem == nil || leaf == nil {
		return change.MeshdNeighborPath(k.ni, k.addr, "verdict", "state", name)
	}
	return &gnmi.Path{Elem: []*gnmi.PathElem{elemMeshd, elemNIs, n.niElem, elemNeighbors, n.nbrElem, elemVerdict, elemState, leaf}}
}
