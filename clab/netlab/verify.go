package netlab

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// `meshd-lab verify` holds meshd to the routers' own view: every session's
// state, peer AS, established transitions and prefix counts per AFI-SAFI,
// and the origin AS (and AS path) of every route, as each router's daemon
// reports them, against meshd's gNMI target, InfluxDB's last values and
// /api/sessions.
//
// Consistency. The routers and meshd lag each other, and counters move
// while they are read. One round reads every router (before), then all of
// meshd's views, then every router again (after). A meshd value agrees
// when it equals the router's value before or after, or, for a number,
// lies between the two: meshd read in between may have caught the
// router at any point of that change. A route is checked only when it is
// the same before and after. Rounds repeat until one finds no mismatch
// or --wait passes; the mismatches of the last round, which persisted
// that long, are reported.

// The views of meshd that verify reads.
const (
	ViewGNMI   = "gnmi"
	ViewInflux = "influx"
	ViewAPI    = "api"
)

var viewOrder = []string{ViewGNMI, ViewInflux, ViewAPI}

// Mismatch is one value meshd shows differently from the router.
type Mismatch struct {
	Router   string // the router whose session or route this is in meshd
	Neighbor string
	AFISAFI  string // "" for a session-wide field
	Prefix   string // for route checks
	Field    string
	Source   string // whose view the expected value is: "r1 (gobgpd)"
	Want     string // the router's value; "a→b" when it moved during the round
	Got      map[string]string
	Bad      []string // the views that disagree
}

func (m Mismatch) String() string {
	af := m.AFISAFI
	if af == "" {
		af = "-"
	}
	nb := m.Neighbor
	if nb == "" {
		nb = "-"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "MISMATCH %s %s %s", m.Router, nb, af)
	if m.Prefix != "" {
		fmt.Fprintf(&b, " %s", m.Prefix)
	}
	fmt.Fprintf(&b, " %s: router %s: %s", m.Field, m.Source, m.Want)
	for _, v := range viewOrder {
		got, ok := m.Got[v]
		if !ok {
			continue
		}
		mark := ""
		for _, bad := range m.Bad {
			if bad == v {
				mark = " (differs)"
			}
		}
		fmt.Fprintf(&b, "; meshd %s: %s%s", v, got, mark)
	}
	return b.String()
}

// Report is one round's result.
type Report struct {
	Round      int
	Sessions   int
	Routes     int
	Checks     int
	Mismatches []Mismatch
	// NotComparable counts, per reason, the checks that cannot be made.
	NotComparable map[string]int
	// Unsettled counts routes that changed while the round read them.
	Unsettled int
}

func (r *Report) notComparable(why string) {
	if r.NotComparable == nil {
		r.NotComparable = map[string]int{}
	}
	r.NotComparable[why]++
}

// Write prints a report: the mismatches, then every reason a check could
// not be made, with how many checks it covers.
func (r *Report) Write(w io.Writer) {
	fmt.Fprintf(w, "verify round %d: %d sessions, %d routes, %d checks, %d mismatches\n", r.Round, r.Sessions, r.Routes, r.Checks, len(r.Mismatches))
	for _, m := range r.Mismatches {
		fmt.Fprintln(w, m)
	}
	var whys []string
	for why := range r.NotComparable {
		whys = append(whys, why)
	}
	sort.Strings(whys)
	for _, why := range whys {
		fmt.Fprintf(w, "not comparable (%d checks): %s\n", r.NotComparable[why], why)
	}
	if r.Unsettled > 0 {
		fmt.Fprintf(w, "not compared this round: %d routes changed on their router while verify read meshd\n", r.Unsettled)
	}
}

func ptrStr[T uint64 | string](p *T) (string, bool) {
	if p == nil {
		return "absent", false
	}
	switch v := any(*p).(type) {
	case uint64:
		return strconv.FormatUint(v, 10), true
	case string:
		return v, true
	}
	return "", false
}

// agrees reports whether meshd's value got is the router's before or
// after, or a number between them.
func agrees(got, before, after string) bool {
	if got == before || got == after {
		return true
	}
	g, e1 := strconv.ParseUint(got, 10, 64)
	b, e2 := strconv.ParseUint(before, 10, 64)
	a, e3 := strconv.ParseUint(after, 10, 64)
	if e1 != nil || e2 != nil || e3 != nil {
		return false
	}
	return min(a, b) <= g && g <= max(a, b)
}

// Views are meshd's views read in one round.
type Views struct {
	Sessions map[string]MeshdView // by view name
	Routes   map[RouteKey][]MeshdRoute
	// Raw keeps meshd's answers by file name, for --dump.
	Raw map[string][]byte
}

// checker accumulates one round's checks.
type checker struct {
	rep   *Report
	views Views
	topo  *Topology
}

// value is one field of one session in one view.
type getter func(s *MeshdSession) (string, bool)

// check compares one router value (before and after) with the views
// named in views.
func (c *checker) check(key SessionKey, af, field, source, before, after string, views []string, get getter) {
	c.rep.Checks++
	m := Mismatch{Router: key.Router, Neighbor: key.Neighbor, AFISAFI: af, Field: field, Source: source, Want: before, Got: map[string]string{}}
	if before != after {
		m.Want = before + "→" + after
	}
	for _, v := range views {
		s := c.views.Sessions[v][key]
		got, ok := "absent", false
		if s != nil {
			got, ok = get(s)
		}
		m.Got[v] = got
		if !ok || !agrees(got, before, after) {
			m.Bad = append(m.Bad, v)
		}
	}
	if len(m.Bad) > 0 {
		c.rep.Mismatches = append(c.rep.Mismatches, m)
	}
}

func afGet(af string, f func(a *MeshdAF) *uint64) getter {
	return func(s *MeshdSession) (string, bool) {
		a := s.AFs[af]
		if a == nil {
			return "absent", false
		}
		return ptrStr(f(a))
	}
}

func numStr(p *uint64) string {
	s, _ := ptrStr(p)
	return s
}

// frrNoPrePolicy is why FRR's pre-policy view is no Adj-RIB-In: without
// soft-reconfiguration inbound FRR keeps none, and its BMP pre-policy
// feed withdraws each route it announces (bmpbridge then writes no
// received-pre-policy and holds no pre-policy route).
const frrNoPrePolicy = "FRR without soft-reconfiguration inbound (the lab's) keeps no pre-policy Adj-RIB-In: its BMP pre-policy feed withdraws each route it announces, so meshd holds no pre-policy routes or count for it"

// bmpSends says which RIBs a lab router's BMP feed carries for an
// AFI-SAFI; the lab configures them (gobgpd: route-monitoring-policy all;
// FRR: pre-policy for both, post-policy for IPv4).
func bmpSends(daemon, rib, af string) (bool, string) {
	switch daemon {
	case "gobgpd":
		return true, ""
	case "frr":
		switch {
		case rib == "ADJ_RIB_IN_PRE":
			return false, frrNoPrePolicy
		case rib == "ADJ_RIB_IN_POST" && af == "IPV4_UNICAST":
			return true, ""
		case rib == "ADJ_RIB_IN_POST":
			return false, "the lab's FRR monitors ipv6 unicast pre-policy only (bmp monitor ipv6 unicast post-policy not configured)"
		}
		return false, "the lab's FRR exports no Loc-RIB over BMP (bmp monitor ... loc-rib not configured)"
	}
	return false, "BIRD has no BMP"
}

// Compare checks one round: the routers read before and after meshd's
// views.
func Compare(topo *Topology, before, after map[string]*RouterView, views Views) *Report {
	rep := &Report{}
	c := &checker{rep: rep, views: views, topo: topo}
	// Which router owns an address: a BIRD session is checked at its
	// other end, the neighbor's session with BIRD's address.
	owner := map[string]string{}
	for _, r := range topo.Routers {
		for _, p := range topo.Peers(r) {
			owner[p.LocalAddr.String()] = r.Name
		}
	}
	names := make([]string, 0, len(after))
	for n := range after {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, _ := topo.Router(names[i])
		b, _ := topo.Router(names[j])
		return a.Index < b.Index
	})
	for _, name := range names {
		av, bv := after[name], before[name]
		if bv == nil {
			continue
		}
		bs := map[string]RouterSession{}
		for _, s := range bv.Sessions {
			bs[s.Neighbor] = s
		}
		for _, sa := range av.Sessions {
			sb, ok := bs[sa.Neighbor]
			if !ok {
				continue
			}
			rep.Sessions++
			if sa.Daemon == "bird" {
				c.birdSession(owner, sa, sb)
				continue
			}
			c.session(sa, sb)
		}
		c.routes(av, bv)
	}
	// A stable order, so two runs' reports can be compared line by line.
	sort.SliceStable(rep.Mismatches, func(i, j int) bool {
		a, b := rep.Mismatches[i], rep.Mismatches[j]
		if a.Router != b.Router {
			ra, _ := topo.Router(a.Router)
			rb, _ := topo.Router(b.Router)
			return ra.Index < rb.Index
		}
		if (a.Prefix == "") != (b.Prefix == "") {
			return a.Prefix == "" // sessions first, then routes
		}
		for _, p := range [][2]string{{a.Neighbor, b.Neighbor}, {a.AFISAFI, b.AFISAFI}, {a.Prefix, b.Prefix}} {
			if p[0] != p[1] {
				return p[0] < p[1]
			}
		}
		return false
	})
	return rep
}

func (c *checker) session(sa, sb RouterSession) {
	key := SessionKey{sa.Router, sa.Neighbor}
	src := fmt.Sprintf("%s (%s)", sa.Router, sa.Daemon)
	all := []string{ViewGNMI, ViewInflux, ViewAPI}
	c.check(key, "", "session-state", src, sb.State, sa.State, all, func(s *MeshdSession) (string, bool) { return ptrStr(s.State) })
	c.check(key, "", "peer-as", src, fmt.Sprint(sb.PeerAS), fmt.Sprint(sa.PeerAS), all, func(s *MeshdSession) (string, bool) { return ptrStr(s.PeerAS) })
	if sa.Transitions != nil && sb.Transitions != nil {
		c.check(key, "", "established-transitions", src, numStr(sb.Transitions), numStr(sa.Transitions), all, func(s *MeshdSession) (string, bool) { return ptrStr(s.Transitions) })
	} else {
		c.rep.notComparable(sa.NotReported["established-transitions"])
	}
	var totB, totA uint64
	totOK := true
	afs := make([]string, 0, len(sa.AFs))
	for af := range sa.AFs {
		afs = append(afs, af)
	}
	sort.Strings(afs)
	two := []string{ViewGNMI, ViewInflux}
	for _, af := range afs {
		ca, cb := sa.AFs[af], sb.AFs[af]
		if cb == nil {
			continue
		}
		fields := []struct {
			name   string
			a, b   *uint64
			meshd  func(*MeshdAF) *uint64
			totals bool
		}{
			{"prefixes-received-pre-policy", ca.Received, cb.Received, func(m *MeshdAF) *uint64 { return m.ReceivedPre }, false},
			{"prefixes-received", ca.Accepted, cb.Accepted, func(m *MeshdAF) *uint64 { return m.Received }, true},
			{"prefixes-sent", ca.Sent, cb.Sent, func(m *MeshdAF) *uint64 { return m.Sent }, false},
		}
		for _, f := range fields {
			if f.a == nil || f.b == nil {
				why := sa.NotReported[f.name]
				if why == "" {
					why = fmt.Sprintf("%s reports no %s", sa.Daemon, f.name)
				}
				c.rep.notComparable(why)
				if f.totals {
					totOK = false
				}
				continue
			}
			c.check(key, af, f.name, src, numStr(f.b), numStr(f.a), two, afGet(af, f.meshd))
			if f.totals {
				totB += *f.b
				totA += *f.a
			}
		}
		c.rep.notComparable("/api/sessions has one prefix count per session (compared with the sum of prefixes-received over its AFI-SAFIs), no per-AFI-SAFI or sent counts")
	}
	if totOK {
		c.check(key, "*", "prefixes-received", src+" (sum over AFI-SAFIs)", strconv.FormatUint(totB, 10), strconv.FormatUint(totA, 10), []string{ViewAPI},
			func(s *MeshdSession) (string, bool) { return ptrStr(s.PrefixesTotal) })
	}
}

// birdSession checks a BIRD session at its other end: meshd knows it only
// from the neighbor's BMP feed and gNMI view, as the neighbor's session
// with BIRD's address. The same TCP session has one state at both ends
// once settled; the neighbor's peer AS is BIRD's; the prefixes BIRD
// exports are what the neighbor receives before its policy.
func (c *checker) birdSession(owner map[string]string, sa, sb RouterSession) {
	c.rep.notComparable("BIRD has no BMP and the probe has no BIRD poller: meshd has no state of a BIRD router's own end of a session; each BIRD session is checked against meshd's view of its other end")
	other := owner[sa.Neighbor]
	if other == "" || sa.Local == "" {
		c.rep.notComparable("a BIRD session whose neighbor is not a lab router")
		return
	}
	key := SessionKey{other, sa.Local}
	src := fmt.Sprintf("%s (bird, the session's other end)", sa.Router)
	two := []string{ViewGNMI, ViewInflux}
	c.check(key, "", "session-state", src, sb.State, sa.State, []string{ViewGNMI, ViewInflux, ViewAPI}, func(s *MeshdSession) (string, bool) { return ptrStr(s.State) })
	c.check(key, "", "peer-as", src+" local AS", fmt.Sprint(sb.LocalAS), fmt.Sprint(sa.LocalAS), []string{ViewGNMI, ViewInflux, ViewAPI}, func(s *MeshdSession) (string, bool) { return ptrStr(s.PeerAS) })
	for af, ca := range sa.AFs {
		cb := sb.AFs[af]
		if cb == nil || ca.Sent == nil || cb.Sent == nil {
			continue
		}
		if r, ok := c.topo.Router(other); ok && r.Daemon == "frr" {
			// And FRR's accepted count is no mirror of BIRD's exports:
			// FRR drops the routes with its own AS in the path.
			c.rep.notComparable(frrNoPrePolicy)
			continue
		}
		c.check(key, af, "prefixes-received-pre-policy", src+" exported", numStr(cb.Sent), numStr(ca.Sent), two, afGet(af, func(m *MeshdAF) *uint64 { return m.ReceivedPre }))
	}
}

// routes checks the origin AS and AS path of every route of a router
// against meshd's bmp_route data in InfluxDB, in each RIB the router's
// BMP feed carries, and that meshd holds no post-policy or Loc-RIB route
// the router does not.
func (c *checker) routes(av, bv *RouterView) {
	r := av.Router
	if r.Daemon == "bird" {
		return
	}
	type rk struct{ nbr, af, prefix string }
	type rv struct {
		origin uint32
		path   string
	}
	index := func(rs []Route, best bool) map[rk][]rv {
		m := map[rk][]rv{}
		for _, x := range rs {
			if best && !x.Best {
				continue
			}
			k := rk{x.Neighbor, x.AFISAFI, x.Prefix}
			if best {
				k.nbr = ""
			}
			m[k] = append(m[k], rv{x.OriginAS, x.ASPath})
		}
		return m
	}
	same := func(a, b []rv) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	src := fmt.Sprintf("%s (%s)", r.Name, r.Daemon)
	routeViews := "meshd's gNMI target and /api/sessions hold no per-route state: routes are checked in InfluxDB's bmp_route"
	for _, ribSpec := range []struct {
		rib  string
		best bool
	}{{"ADJ_RIB_IN_PRE", false}, {"ADJ_RIB_IN_POST", false}, {"LOC_RIB", true}} {
		ia, ib := index(av.Routes, ribSpec.best), index(bv.Routes, ribSpec.best)
		held := map[rk]bool{}
		for k, ra := range ia {
			if !ribSpec.best && k.nbr == "" {
				continue // the router's own routes are in its Loc-RIB only
			}
			if ok, why := bmpSends(r.Daemon, ribSpec.rib, k.af); !ok {
				c.rep.notComparable(why)
				continue
			}
			if !same(ra, ib[k]) {
				c.rep.Unsettled++
				continue
			}
			c.rep.Routes++
			c.rep.notComparable(routeViews)
			got := c.meshdRoutes(r.Name, k.nbr, ribSpec.rib, k.af, k.prefix)
			held[k] = true
			for _, g := range got {
				if g.Tied {
					c.rep.notComparable("a route's announce and withdraw have the same time in InfluxDB's bmp_route, so which came last is unknown: verify takes the announce")
				}
			}
			for _, want := range ra {
				c.rep.Checks++
				m := Mismatch{Router: r.Name, Neighbor: k.nbr, AFISAFI: k.af + " " + ribSpec.rib, Prefix: k.prefix, Source: src, Got: map[string]string{}}
				if len(got) == 0 {
					m.Field, m.Want, m.Got[ViewInflux], m.Bad = "origin-as", fmt.Sprint(want.origin), "no route", []string{ViewInflux}
					c.rep.Mismatches = append(c.rep.Mismatches, m)
					continue
				}
				var origins, paths []string
				originOK, pathOK := false, false
				for _, g := range got {
					tie := ""
					if g.Tied {
						tie = " (withdrawn at the same ns in InfluxDB: which came last is unknown)"
					}
					origins = append(origins, fmt.Sprint(g.OriginAS)+tie)
					paths = append(paths, strconv.Quote(g.ASPath)+tie)
					originOK = originOK || g.OriginAS == want.origin
					pathOK = pathOK || g.ASPath == want.path
				}
				if !originOK {
					m.Field, m.Want, m.Got[ViewInflux], m.Bad = "origin-as", fmt.Sprint(want.origin), strings.Join(origins, ","), []string{ViewInflux}
					c.rep.Mismatches = append(c.rep.Mismatches, m)
				}
				c.rep.Checks++
				if !pathOK {
					m := m
					m.Got = map[string]string{ViewInflux: strings.Join(paths, ",")}
					m.Field, m.Want, m.Bad = "as-path", strconv.Quote(want.path), []string{ViewInflux}
					c.rep.Mismatches = append(c.rep.Mismatches, m)
				}
			}
		}
		if ribSpec.rib == "ADJ_RIB_IN_PRE" {
			// Pre-policy, a neighbor may send what the router drops
			// (its own AS in the path): meshd's extra routes there are
			// no mismatch.
			continue
		}
		// Routes meshd holds as announced that the router has in neither
		// read.
		for mk := range c.views.Routes {
			if mk.Router != r.Name || mk.RIB != ribSpec.rib {
				continue
			}
			nbr := mk.Neighbor
			self := nbr == "0.0.0.0" || nbr == "::"
			if ribSpec.best && !self {
				continue
			}
			if self {
				// The router's own instance: its own routes (FRR sends
				// them post-policy with peer 0.0.0.0).
				nbr = ""
			}
			if ok, _ := bmpSends(r.Daemon, ribSpec.rib, mk.AFISAFI); !ok {
				continue
			}
			k := rk{nbr, mk.AFISAFI, mk.Prefix}
			if held[k] {
				continue
			}
			if self && !ribSpec.best {
				// Own routes in an Adj-RIB-In: compare their origin with
				// the router's own routes.
				own := func(rs []Route) []rv {
					var out []rv
					for _, x := range rs {
						if x.Neighbor == "" && x.AFISAFI == k.af && x.Prefix == k.prefix {
							out = append(out, rv{x.OriginAS, x.ASPath})
						}
					}
					return out
				}
				oa, ob := own(av.Routes), own(bv.Routes)
				if len(oa) > 0 && same(oa, ob) {
					c.rep.Checks++
					for _, g := range c.views.Routes[mk] {
						if g.OriginAS != oa[0].origin {
							c.rep.Mismatches = append(c.rep.Mismatches, Mismatch{Router: r.Name, Neighbor: mk.Neighbor, AFISAFI: k.af + " " + ribSpec.rib, Prefix: k.prefix,
								Field: "origin-as", Source: src + " own route", Want: fmt.Sprint(oa[0].origin), Got: map[string]string{ViewInflux: fmt.Sprint(g.OriginAS)}, Bad: []string{ViewInflux}})
						}
					}
					continue
				}
			}
			if len(ia[k]) > 0 || len(ib[k]) > 0 {
				continue
			}
			c.rep.Checks++
			var origins []string
			for _, g := range c.views.Routes[mk] {
				tie := ""
				if g.Tied {
					tie = " (withdrawn at the same ns in InfluxDB: which came last is unknown)"
				}
				origins = append(origins, fmt.Sprint(g.OriginAS)+tie)
			}
			c.rep.Mismatches = append(c.rep.Mismatches, Mismatch{Router: r.Name, Neighbor: k.nbr, AFISAFI: k.af + " " + ribSpec.rib, Prefix: k.prefix,
				Field: "route", Source: src, Want: "no route", Got: map[string]string{ViewInflux: "announced, origin " + strings.Join(origins, ",")}, Bad: []string{ViewInflux}})
		}
	}
}

// meshdRoutes returns the routes meshd holds for a prefix; a Loc-RIB's
// peer is the router's own instance (0.0.0.0 or ::).
func (c *checker) meshdRoutes(router, nbr, rib, af, prefix string) []MeshdRoute {
	if nbr != "" {
		return c.views.Routes[RouteKey{router, nbr, rib, af, prefix}]
	}
	var out []MeshdRoute
	for _, n := range []string{"0.0.0.0", "::"} {
		out = append(out, c.views.Routes[RouteKey{router, n, rib, af, prefix}]...)
	}
	return out
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Wait is how long rounds repeat until one agrees.
	Wait time.Duration
	// Interval is the pause between rounds (default 2s).
	Interval time.Duration
	// Dump, when set, is a folder where each router's raw output of the
	// last round is written.
	Dump string
	// Progress, when set, gets a line per round that found mismatches.
	Progress io.Writer
}

// Verify runs rounds until one finds meshd agreeing with every router or
// o.Wait passes, and returns the last round's report.
func (l *Lab) Verify(ctx context.Context, o VerifyOptions) (*Report, error) {
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	deadline := time.Now().Add(o.Wait)
	for round := 1; ; round++ {
		// A dead process makes every later round fail the same way, and
		// the mismatches it leaves (sessions stuck connecting) point at
		// meshd when the lab is at fault: stop and name it.
		if err := l.Health(); err != nil {
			return nil, fmt.Errorf("verify round %d: a lab process has died: %w", round, err)
		}
		rep, err := l.verifyRound(ctx, o.Dump)
		if rep != nil {
			rep.Round = round
		}
		if err == nil && len(rep.Mismatches) == 0 {
			return rep, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return rep, err
		}
		if o.Progress != nil {
			if err != nil {
				fmt.Fprintf(o.Progress, "verify round %d: %v; again in %v\n", round, err, o.Interval)
			} else {
				fmt.Fprintf(o.Progress, "verify round %d: %d mismatches; again in %v\n", round, len(rep.Mismatches), o.Interval)
			}
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(o.Interval):
		}
	}
}

func (l *Lab) verifyRound(ctx context.Context, dump string) (*Report, error) {
	before, err := l.readRouters(ctx)
	if err != nil {
		return nil, err
	}
	var views Views
	views.Sessions = map[string]MeshdView{}
	views.Raw = map[string][]byte{}
	// Every replica answers for the fleet: read the first that no fault
	// holds (gNMI and the API from the same one).
	addrs, err := l.meshdAddrs(GNMIPort)
	if err != nil {
		return nil, err
	}
	httpAddrs, err := l.meshdAddrs(HTTPPort)
	if err != nil {
		return nil, err
	}
	if views.Sessions[ViewGNMI], err = readGNMI(ctx, addrs[0], l.Topo.Routers, views.Raw); err != nil {
		return nil, err
	}
	if views.Sessions[ViewInflux], views.Routes, err = readInflux(ctx, views.Raw); err != nil {
		return nil, err
	}
	if views.Sessions[ViewAPI], err = readAPI(ctx, httpAddrs[0], views.Raw); err != nil {
		return nil, err
	}
	after, err := l.readRouters(ctx)
	if err != nil {
		return nil, err
	}
	if dump != "" {
		if err := dumpRaw(dump, after, views.Raw); err != nil {
			return nil, err
		}
	}
	return Compare(l.Topo, before, after, views), nil
}

// readRouters reads every router, four at a time.
func (l *Lab) readRouters(ctx context.Context) (map[string]*RouterView, error) {
	out := map[string]*RouterView{}
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, r := range l.Topo.Routers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			v, err := l.ReadRouter(ctx, r)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = fmt.Errorf("%s (%s): %w", r.Name, r.Daemon, err)
				}
				return
			}
			out[r.Name] = v
		}()
	}
	wg.Wait()
	return out, first
}

func dumpRaw(dir string, views map[string]*RouterView, meshd map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, b := range meshd {
		if err := os.WriteFile(filepath.Join(dir, "meshd-"+name), b, 0o644); err != nil {
			return err
		}
	}
	for name, v := range views {
		for cmd, b := range v.Raw {
			f := name + "-" + v.Router.Daemon + "-" + strings.NewReplacer(" ", "_", "/", "_").Replace(cmd) + ".out"
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

func httpGet(ctx context.Context, u string) (*http.Request, error) {
	return http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
}
