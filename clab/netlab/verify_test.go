package netlab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadLab4 parses the captures of a 4-router lab's daemons (testdata/
// verify/lab4, see its README) into router views.
func loadLab4(t *testing.T) (*Topology, map[string]*RouterView) {
	t.Helper()
	return loadRouters(t, "lab4")
}

func loadRouters(t *testing.T, dir string) (*Topology, map[string]*RouterView) {
	t.Helper()
	topo, err := NewTopology(4)
	if err != nil {
		t.Fatal(err)
	}
	// The captures come from a lab that ran BIRD on r3 and gobgpd on r4.
	topo.Routers[2].Daemon, topo.Routers[3].Daemon = "bird", "gobgpd"
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "verify", dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	views := map[string]*RouterView{}
	for _, r := range topo.Routers {
		v := &RouterView{Router: r}
		var err error
		switch r.Daemon {
		case "gobgpd":
			if v.Sessions, err = ParseGobgpPeers(r.Name, read(r.Name+"-gobgpd-listpeer.jsonl")); err != nil {
				t.Fatal(err)
			}
			for _, af := range []struct{ f, name string }{{"ipv4", "IPV4_UNICAST"}, {"ipv6", "IPV6_UNICAST"}} {
				rs, err := ParseGobgpPaths(r.Name, af.name, r.ASN, read(r.Name+"-gobgpd-listpath-"+af.f+".jsonl"))
				if err != nil {
					t.Fatal(err)
				}
				v.Routes = append(v.Routes, rs...)
			}
		case "frr":
			if v.Sessions, err = ParseFRRNeighbors(r.Name, read(r.Name+"-frr-neighbors.json")); err != nil {
				t.Fatal(err)
			}
			for _, af := range []struct{ f, name string }{{"ipv4", "IPV4_UNICAST"}, {"ipv6", "IPV6_UNICAST"}} {
				rs, err := ParseFRRRoutes(r.Name, af.name, read(r.Name+"-frr-"+af.f+".json"))
				if err != nil {
					t.Fatal(err)
				}
				v.Routes = append(v.Routes, rs...)
			}
		case "bird":
			if v.Sessions, err = ParseBIRDProtocols(r.Name, read(r.Name+"-bird-protocols.txt")); err != nil {
				t.Fatal(err)
			}
		}
		views[r.Name] = v
	}
	return topo, views
}

func findSession(t *testing.T, v *RouterView, nbr string) RouterSession {
	t.Helper()
	for _, s := range v.Sessions {
		if s.Neighbor == nbr {
			return s
		}
	}
	t.Fatalf("%s: no session with %s", v.Router.Name, nbr)
	return RouterSession{}
}

func counts(c *Counts) [3]string {
	return [3]string{numStr(c.Received), numStr(c.Accepted), numStr(c.Sent)}
}

// The parsers read the daemons' real output; the values expected here
// were read off the captures by hand.
func TestParseRouterViews(t *testing.T) {
	_, views := loadLab4(t)
	tests := []struct {
		router, nbr, state string
		peerAS, localAS    uint32
		transitions        string
		af                 string
		counts             [3]string // received (pre-policy), accepted, sent
		local              string
	}{
		{"r1", "10.100.1.2", "ESTABLISHED", 4200000002, 4200000001, "absent", "IPV4_UNICAST", [3]string{"4", "3", "3"}, ""},
		{"r1", "fd00:100:4::1", "ESTABLISHED", 4200000004, 4200000001, "absent", "IPV6_UNICAST", [3]string{"3", "3", "2"}, ""},
		{"r2", "10.100.1.1", "ESTABLISHED", 4200000001, 4200000002, "1", "IPV4_UNICAST", [3]string{"absent", "3", "4"}, ""},
		{"r2", "fd00:100:2::2", "ESTABLISHED", 4200000003, 4200000002, "1", "IPV6_UNICAST", [3]string{"absent", "2", "4"}, ""},
		{"r3", "10.100.2.1", "ESTABLISHED", 4200000002, 4200000003, "absent", "IPV4_UNICAST", [3]string{"absent", "2", "2"}, "10.100.2.2"},
		{"r3", "fd00:100:3::2", "ESTABLISHED", 4200000004, 4200000003, "absent", "IPV6_UNICAST", [3]string{"absent", "2", "3"}, "fd00:100:3::1"},
	}
	for _, tt := range tests {
		s := findSession(t, views[tt.router], tt.nbr)
		if s.State != tt.state || s.PeerAS != tt.peerAS || s.LocalAS != tt.localAS || numStr(s.Transitions) != tt.transitions || s.Local != tt.local {
			t.Errorf("%s %s: state %s peer AS %d local AS %d transitions %s local %q, want %s %d %d %s %q",
				tt.router, tt.nbr, s.State, s.PeerAS, s.LocalAS, numStr(s.Transitions), s.Local, tt.state, tt.peerAS, tt.localAS, tt.transitions, tt.local)
		}
		c := s.AFs[tt.af]
		if c == nil {
			t.Errorf("%s %s: no %s counts", tt.router, tt.nbr, tt.af)
			continue
		}
		if got := counts(c); got != tt.counts {
			t.Errorf("%s %s %s: counts %v, want %v", tt.router, tt.nbr, tt.af, got, tt.counts)
		}
	}
	if n := len(views["r3"].Sessions); n != 4 {
		t.Errorf("BIRD r3: %d BGP sessions, want 4 (device, direct and static protocols are no sessions)", n)
	}
	routes := []Route{
		// FRR's own route: peerId "(unspec)", empty path, origin its AS.
		{"r2", "", "IPV4_UNICAST", "10.200.2.0/24", 4200000002, "", true},
		{"r2", "10.100.1.1", "IPV4_UNICAST", "10.200.3.0/24", 4200000003, "4200000001 4200000004 4200000003", false},
		// gobgpd's own route: no neighbor, no AS path.
		{"r1", "", "IPV4_UNICAST", "10.200.1.0/24", 4200000001, "", true},
		{"r1", "10.100.4.1", "IPV4_UNICAST", "10.200.3.0/24", 4200000003, "4200000004 4200000003", true},
	}
	for _, want := range routes {
		found := false
		for _, r := range views[want.Router].Routes {
			if r.Neighbor == want.Neighbor && r.Prefix == want.Prefix && r.AFISAFI == want.AFISAFI {
				found = true
				if r != want {
					t.Errorf("route %+v, want %+v", r, want)
				}
			}
		}
		if !found {
			t.Errorf("no route %s %s from %q", want.Router, want.Prefix, want.Neighbor)
		}
	}
}

// agreeing builds meshd views that agree with the routers in every check,
// the starting point each mismatch case changes one value of.
func agreeing(topo *Topology, views map[string]*RouterView) Views {
	out := Views{Sessions: map[string]MeshdView{ViewGNMI: {}, ViewInflux: {}, ViewAPI: {}}, Routes: map[RouteKey][]MeshdRoute{}}
	set := func(k SessionKey, state string, peerAS uint32, tr *uint64) {
		for _, v := range out.Sessions {
			s := v.get(k)
			s.State, s.PeerAS, s.Transitions = strp(state), u64(uint64(peerAS)), tr
		}
	}
	owner := map[string]string{}
	for _, r := range topo.Routers {
		for _, p := range topo.Peers(r) {
			owner[p.LocalAddr.String()] = r.Name
		}
	}
	for _, rv := range views {
		for _, s := range rv.Sessions {
			if s.Daemon == "bird" {
				continue
			}
			k := SessionKey{s.Router, s.Neighbor}
			set(k, s.State, s.PeerAS, s.Transitions)
			var tot uint64
			for af, c := range s.AFs {
				for _, v := range []string{ViewGNMI, ViewInflux} {
					a := out.Sessions[v].get(k).af(af)
					a.Received, a.ReceivedPre, a.Sent = c.Accepted, c.Received, c.Sent
				}
				tot += *c.Accepted
			}
			out.Sessions[ViewAPI].get(k).PrefixesTotal = u64(tot)
		}
		for _, r := range rv.Routes {
			mr := MeshdRoute{OriginAS: r.OriginAS, ASPath: r.ASPath}
			if r.Neighbor == "" {
				if r.Best && rv.Router.Daemon == "gobgpd" {
					out.Routes[RouteKey{r.Router, "0.0.0.0", "LOC_RIB", r.AFISAFI, r.Prefix}] = []MeshdRoute{mr}
				}
				continue
			}
			for _, rib := range []string{"ADJ_RIB_IN_PRE", "ADJ_RIB_IN_POST"} {
				out.Routes[RouteKey{r.Router, r.Neighbor, rib, r.AFISAFI, r.Prefix}] = []MeshdRoute{mr}
			}
			if r.Best && rv.Router.Daemon == "gobgpd" {
				out.Routes[RouteKey{r.Router, "0.0.0.0", "LOC_RIB", r.AFISAFI, r.Prefix}] = []MeshdRoute{mr}
			}
		}
	}
	// A BIRD session as its neighbor sees it: what BIRD exports, the
	// neighbor receives before policy.
	for _, rv := range views {
		for _, s := range rv.Sessions {
			if s.Daemon != "bird" {
				continue
			}
			k := SessionKey{owner[s.Neighbor], s.Local}
			for af, c := range s.AFs {
				for _, v := range []string{ViewGNMI, ViewInflux} {
					out.Sessions[v].get(k).af(af).ReceivedPre = c.Sent
				}
			}
		}
	}
	return out
}

// Each check of verify's finds a mismatch in one value, in the view it
// is in, and only there; the agreeing views give none.
func TestCompareFindsEachMismatch(t *testing.T) {
	topo, views := loadLab4(t)
	rep := Compare(topo, views, views, agreeing(topo, views))
	if len(rep.Mismatches) != 0 {
		for _, m := range rep.Mismatches {
			t.Log(m)
		}
		t.Fatalf("agreeing views: %d mismatches, want 0", len(rep.Mismatches))
	}
	if rep.Sessions != 16 || rep.Routes == 0 {
		t.Fatalf("checked %d sessions and %d routes, want 16 and some", rep.Sessions, rep.Routes)
	}
	r1 := SessionKey{"r1", "10.100.1.2"}
	r2 := SessionKey{"r2", "10.100.1.1"}
	tests := []struct {
		name   string
		break_ func(v Views)
		want   string // the mismatch line's start
	}{
		{"state in gNMI", func(v Views) { v.Sessions[ViewGNMI][r1].State = strp("ACTIVE") },
			"MISMATCH r1 10.100.1.2 - session-state: router r1 (gobgpd): ESTABLISHED; meshd gnmi: ACTIVE (differs); meshd influx: ESTABLISHED; meshd api: ESTABLISHED"},
		{"peer AS in InfluxDB", func(v Views) { v.Sessions[ViewInflux][r1].PeerAS = u64(0) },
			"MISMATCH r1 10.100.1.2 - peer-as: router r1 (gobgpd): 4200000002; meshd gnmi: 4200000002; meshd influx: 0 (differs); meshd api: 4200000002"},
		{"transitions (FRR)", func(v Views) { v.Sessions[ViewAPI][r2].Transitions = u64(58) },
			"MISMATCH r2 10.100.1.1 - established-transitions: router r2 (frr): 1; meshd gnmi: 1; meshd influx: 1; meshd api: 58 (differs)"},
		{"pre-policy (gobgpd)", func(v Views) { v.Sessions[ViewGNMI][r1].AFs["IPV4_UNICAST"].ReceivedPre = u64(0) },
			"MISMATCH r1 10.100.1.2 IPV4_UNICAST prefixes-received-pre-policy: router r1 (gobgpd): 4; meshd gnmi: 0 (differs); meshd influx: 4"},
		{"received absent", func(v Views) { v.Sessions[ViewInflux][r2].AFs["IPV4_UNICAST"].Received = nil },
			"MISMATCH r2 10.100.1.1 IPV4_UNICAST prefixes-received: router r2 (frr): 3; meshd gnmi: 3; meshd influx: absent (differs)"},
		{"sent", func(v Views) { v.Sessions[ViewGNMI][r2].AFs["IPV4_UNICAST"].Sent = u64(5) },
			"MISMATCH r2 10.100.1.1 IPV4_UNICAST prefixes-sent: router r2 (frr): 4; meshd gnmi: 5 (differs); meshd influx: 4"},
		{"api's doubled count", func(v Views) { v.Sessions[ViewAPI][r1].PrefixesTotal = u64(7) },
			"MISMATCH r1 10.100.1.2 * prefixes-received: router r1 (gobgpd) (sum over AFI-SAFIs): 3; meshd api: 7 (differs)"},
		// A session meshd's gNMI target lacks: every one of its values
		// is absent there (5 mismatches; the first is compared).
		{"session missing", func(v Views) { delete(v.Sessions[ViewGNMI], r2) },
			"MISMATCH r2 10.100.1.1 - session-state: router r2 (frr): ESTABLISHED; meshd gnmi: absent (differs); meshd influx: ESTABLISHED; meshd api: ESTABLISHED"},
		// BIRD's end, through gobgpd r4's session with it; gobgpd's own
		// received count is the second mismatch.
		{"BIRD through its neighbor", func(v Views) {
			v.Sessions[ViewInflux][SessionKey{"r4", "10.100.3.1"}].AFs["IPV4_UNICAST"].ReceivedPre = u64(0)
		}, "MISMATCH r4 10.100.3.1 IPV4_UNICAST prefixes-received-pre-policy: router r3 (bird, the session's other end) exported: 3; meshd gnmi: 3; meshd influx: 0 (differs)"},
		{"origin AS of an own route", func(v Views) {
			v.Routes[RouteKey{"r1", "0.0.0.0", "LOC_RIB", "IPV4_UNICAST", "10.200.1.0/24"}] = []MeshdRoute{{OriginAS: 0}}
		}, "MISMATCH r1 - IPV4_UNICAST LOC_RIB 10.200.1.0/24 origin-as: router r1 (gobgpd): 4200000001; meshd influx: 0 (differs)"},
		{"FRR's post-policy AS path", func(v Views) {
			v.Routes[RouteKey{"r2", "10.100.2.2", "ADJ_RIB_IN_POST", "IPV4_UNICAST", "10.200.3.0/24"}] = []MeshdRoute{{OriginAS: 4200000003, ASPath: "4200000002 4200000003"}}
		}, `MISMATCH r2 10.100.2.2 IPV4_UNICAST ADJ_RIB_IN_POST 10.200.3.0/24 as-path: router r2 (frr): "4200000003"; meshd influx: "4200000002 4200000003" (differs)`},
		{"pre-policy route withdrawn", func(v Views) {
			delete(v.Routes, RouteKey{"r1", "10.100.4.1", "ADJ_RIB_IN_PRE", "IPV4_UNICAST", "10.200.3.0/24"})
		}, "MISMATCH r1 10.100.4.1 IPV4_UNICAST ADJ_RIB_IN_PRE 10.200.3.0/24 origin-as: router r1 (gobgpd): 4200000003; meshd influx: no route (differs)"},
		{"hijacked origin", func(v Views) {
			v.Routes[RouteKey{"r1", "10.100.4.1", "ADJ_RIB_IN_POST", "IPV4_UNICAST", "10.200.3.0/24"}] = []MeshdRoute{{OriginAS: 4200000004, ASPath: "4200000004 4200000003"}}
		}, "MISMATCH r1 10.100.4.1 IPV4_UNICAST ADJ_RIB_IN_POST 10.200.3.0/24 origin-as: router r1 (gobgpd): 4200000003; meshd influx: 4200000004 (differs)"},
		{"stale route", func(v Views) {
			v.Routes[RouteKey{"r4", "10.100.3.1", "ADJ_RIB_IN_POST", "IPV4_UNICAST", "10.200.1.0/25"}] = []MeshdRoute{{OriginAS: 4200000003}}
		}, "MISMATCH r4 10.100.3.1 IPV4_UNICAST ADJ_RIB_IN_POST 10.200.1.0/25 route: router r4 (gobgpd): no route; meshd influx: announced, origin 4200000003 (differs)"},
		{"FRR own route under 0.0.0.0", func(v Views) {
			v.Routes[RouteKey{"r2", "0.0.0.0", "ADJ_RIB_IN_POST", "IPV4_UNICAST", "10.200.2.0/24"}] = []MeshdRoute{{OriginAS: 0}}
		}, "MISMATCH r2 0.0.0.0 IPV4_UNICAST ADJ_RIB_IN_POST 10.200.2.0/24 origin-as: router r2 (frr) own route: 4200000002; meshd influx: 0 (differs)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := agreeing(topo, views)
			tt.break_(v)
			rep := Compare(topo, views, views, v)
			n := 1
			switch tt.name {
			case "session missing":
				n = 5
			case "BIRD through its neighbor":
				n = 2 // r4's gobgpd says the same from its end
			}
			if len(rep.Mismatches) != n {
				for _, m := range rep.Mismatches {
					t.Log(m)
				}
				t.Fatalf("%d mismatches, want %d: %s", len(rep.Mismatches), n, tt.want)
			}
			if got := rep.Mismatches[0].String(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// A counter that moved while verify read meshd agrees anywhere between
// the router's two reads, and not outside them.
func TestCompareBeforeAfter(t *testing.T) {
	topo, views := loadLab4(t)
	after := map[string]*RouterView{}
	for k, v := range views {
		c := *v
		c.Sessions = append([]RouterSession(nil), v.Sessions...)
		after[k] = &c
	}
	// r2's session with r1 came up again twice while verify read meshd.
	for i, s := range after["r2"].Sessions {
		if s.Neighbor == "10.100.1.1" {
			after["r2"].Sessions[i].Transitions = u64(3)
		}
	}
	for _, tt := range []struct {
		meshd uint64
		want  int
	}{{1, 0}, {2, 0}, {3, 0}, {4, 1}, {0, 1}} {
		v := agreeing(topo, views)
		for _, name := range viewOrder {
			v.Sessions[name][SessionKey{"r2", "10.100.1.1"}].Transitions = u64(tt.meshd)
		}
		rep := Compare(topo, views, after, v)
		if len(rep.Mismatches) != tt.want {
			t.Errorf("meshd %d transitions between the router's 1 and 3: %d mismatches, want %d", tt.meshd, len(rep.Mismatches), tt.want)
		}
		if tt.want == 1 && len(rep.Mismatches) == 1 && !strings.Contains(rep.Mismatches[0].String(), "router r2 (frr): 1→3;") {
			t.Errorf("mismatch %s does not show the router's value moving", rep.Mismatches[0])
		}
	}
}

// What cannot be compared is said, with why, never skipped silently.
func TestReportSaysWhatIsNotComparable(t *testing.T) {
	topo, views := loadLab4(t)
	rep := Compare(topo, views, views, agreeing(topo, views))
	var b strings.Builder
	rep.Write(&b)
	for _, want := range []string{
		"not comparable (8 checks): gobgpd counts no established transitions",
		"not comparable (4 checks): FRR counts pre-policy prefixes only with soft-reconfiguration inbound",
		"not comparable (4 checks): BIRD has no BMP",
		"no per-route state",
		"the lab's FRR exports no Loc-RIB over BMP",
		"the lab's FRR monitors ipv6 unicast pre-policy only",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

// BIRD's text output, the parts verify reads: a session that is down
// prints no Routes line, and a Routes line may count filtered routes.
func TestParseBIRDVariants(t *testing.T) {
	out := `BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
n_10_100_2_1 BGP        ---        start  23:04:39.770  Active        Socket: Connection refused
  BGP state:          Active
    Neighbor address: 10.100.2.1
    Neighbor AS:      4200000002
    Local AS:         4200000003
    Connect delay:    0.452/1
    Last error:       Socket: Connection refused

n_fd00_100_3__2 BGP        ---        up     23:03:51.290  Established
  BGP state:          Established
    Neighbor address: fd00:100:3::2
    Neighbor AS:      4200000004
    Local AS:         4200000003
    Source address:   fd00:100:3::1
  Channel ipv6
    State:          UP
    Routes:         2 imported, 1 filtered, 3 exported, 2 preferred
`
	ss, err := ParseBIRDProtocols("r3", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2 {
		t.Fatalf("%d sessions, want 2", len(ss))
	}
	if s := ss[0]; s.State != "ACTIVE" || counts(s.AFs["IPV4_UNICAST"]) != [3]string{"absent", "0", "0"} {
		t.Errorf("down session: %s %v", s.State, counts(s.AFs["IPV4_UNICAST"]))
	}
	if s := ss[1]; s.State != "ESTABLISHED" || counts(s.AFs["IPV6_UNICAST"]) != [3]string{"absent", "2", "3"} {
		t.Errorf("up session: %s %v", s.State, counts(s.AFs["IPV6_UNICAST"]))
	}
	if _, err := ParseBIRDProtocols("r3", []byte("x BGP\n  Channel ipv4\n    Routes: many imported\n")); err == nil {
		t.Error("a Routes line that is not BIRD's format was accepted")
	}
}
