package merge

import (
	"sort"
	"time"

	"github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
)

type nbrKey struct{ router, ni, addr string }

// recentChange is how long a flap or a path change keeps a session
// DEGRADED after it happened.
const recentChange = 5 * time.Minute

// lastSeenStep bounds how often last-seen leaves are rewritten, so a
// steady stream of samples does not double the update rate.
const lastSeenStep = 10 * time.Second

// verdictLocked recomputes the joined verdict of every neighbor touched by
// a batch and appends the verdict leaves that changed.
func (c *Core) verdictLocked(locked routerSet, touched map[nbrKey]bool, ups []change.Update) []change.Update {
	if len(touched) == 0 {
		return ups
	}
	keys := make([]nbrKey, 0, len(touched))
	for k := range touched {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.router != b.router {
			return a.router < b.router
		}
		if a.ni != b.ni {
			return a.ni < b.ni
		}
		return a.addr < b.addr
	})
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
	// The leaves read here are all directly below the neighbor, in the
	// neighbor's group of the leaf store: two keys built, not one a leaf.
	ocNbr := change.PathKey(change.NeighborPath(k.ni, k.addr))
	meshNbr := change.PathKey(change.MeshdNeighborPath(k.ni, k.addr))
	ocLeaf := func(rest string) *leaf { return r.leaves.inGroup(ocNbr, rest) }
	meshLeaf := func(rest string) *leaf { return r.leaves.inGroup(meshNbr, rest) }
	n := r.nbrs[nbrID{k.ni, k.addr}]
	verdictOnly := n != nil && n.leaves <= countVerdictLeaves(r, meshNbr)
	if n == nil || verdictOnly {
		// The neighbor is gone: drop its verdict too.
		ch := change.Change{Router: r.name, Path: change.MeshdNeighborPath(k.ni, k.addr, "verdict"), Time: time.Now(), Source: change.SourceMeshd}
		var res Result
		return c.deleteLocked(r, &ch, ups, &res)
	}
	var now time.Time
	seen := map[change.Source]time.Time{}
	defer func() {
		if n.verdict.Before(now) {
			n.verdict = now
		}
	}()
	for src, ns := range n.lastSeen {
		if ns != 0 {
			t := time.Unix(0, ns)
			seen[change.Source(src)] = t
			if t.After(now) {
				now = t
			}
		}
	}

	health, reason := "UNKNOWN", "no session state reported yet"
	if st := ocLeaf("/state/session-state"); st != nil {
		s := st.v.stringVal()
		if s != "ESTABLISHED" {
			health, reason = "DOWN", "session-state "+s
			if rs := meshLeaf("/bmp/state/last-down-reason"); rs != nil && rs.time().Before(st.time().Add(time.Second)) == false {
				reason += ": " + rs.v.stringVal()
			}
		} else {
			health, reason = "HEALTHY", "established"
			if hc := meshLeaf("/probe/state/last-hop-change"); hc != nil {
				if at := time.Unix(0, int64(hc.v.uintVal())); now.Sub(at) < recentChange {
					health, reason = "DEGRADED", "path (hop count) changed recently"
				}
			}
			tr := ocLeaf("/state/established-transitions")
			le := ocLeaf("/state/last-established")
			if tr != nil && le != nil && tr.v.uintVal() > 1 {
				if at := lastEstablished(le.v.uintVal()); now.Sub(at) < recentChange {
					health, reason = "DEGRADED", "session flapped recently"
				}
			}
		}
	}
	var srcs []string
	for s := range seen {
		srcs = append(srcs, s.String())
	}
	sort.Strings(srcs)

	set := func(v *gnmi.TypedValue, elems ...string) {
		// Most verdicts come out as they were: no path to build then.
		if l := meshLeaf("/verdict/state/" + elems[0]); l != nil && l.v.equal(v) {
			return
		}
		p := change.MeshdNeighborPath(k.ni, k.addr, append([]string{"verdict", "state"}, elems...)...)
		ch := change.Change{Router: r.name, Path: p, Value: v, Time: now, Source: change.SourceMeshd}
		var res Result
		ups, _ = c.setLocked(r, &ch, ups, &res)
	}
	set(change.String(health), "health")
	set(change.String(reason), "reason")
	set(change.StringList(srcs), "sources")
	for src, name := range map[change.Source]string{change.SourceGNMI: "last-seen-gnmi", change.SourceBMP: "last-seen-bmp", change.SourceProbe: "last-seen-probe"} {
		t, ok := seen[src]
		if !ok {
			continue
		}
		if cur := meshLeaf("/verdict/state/" + name); cur != nil {
			if t.Sub(time.Unix(0, int64(cur.v.uintVal()))) < lastSeenStep {
				continue
			}
		}
		set(change.Uint(uint64(t.UnixNano())), name)
	}
	return ups
}

// countVerdictLeaves counts the verdict's own leaves of a neighbor, so a
// neighbor with nothing else left is seen as gone.
func countVerdictLeaves(r *router, meshNbr string) int {
	n := 0
	for _, rest := range verdictLeaves {
		if r.leaves.inGroup(meshNbr, rest) != nil {
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
