package netlab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/encoding/prototext"
)

func readMeshdFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "verify", "meshd", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// /api/sessions as a lab's meshd served it (testdata/verify/meshd): its
// one prefix count per session is what verify compares.
func TestApplyAPI(t *testing.T) {
	v := MeshdView{}
	if err := ApplyAPI(v, readMeshdFixture(t, "api-sessions.json")); err != nil {
		t.Fatal(err)
	}
	s := v[SessionKey{"r1", "10.100.1.2"}]
	if s == nil {
		t.Fatal("no r1 10.100.1.2")
	}
	got := [4]string{numStr(s.PeerAS), numStr(s.Transitions), numStr(s.PrefixesTotal), ""}
	got[3], _ = ptrStr(s.State)
	if want := [4]string{"4200000002", "1", "7", "ESTABLISHED"}; got != want {
		t.Errorf("r1 10.100.1.2: %v, want %v", got, want)
	}
	// BIRD's end (r3): the probe's row has no state.
	if s := v[SessionKey{"r3", "10.100.2.1"}]; s == nil || s.State != nil {
		t.Errorf("r3 10.100.2.1: %+v, want a row without state", s)
	}
	if err := ApplyAPI(MeshdView{}, []byte(`{"router":"r1"}`)); err == nil {
		t.Error("an answer that is not a list of rows was accepted")
	}
}

// loadMeshdRound reads meshd's answers captured in the same verify round
// as the routers' in testdata/verify/round (gNMI Get as prototext, the
// InfluxQL answers, /api/sessions).
func loadMeshdRound(t *testing.T) Views {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "verify", "round", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	v := Views{Sessions: map[string]MeshdView{ViewGNMI: {}, ViewInflux: {}, ViewAPI: {}}}
	for _, r := range []string{"r1", "r2", "r4"} {
		var resp gpb.GetResponse
		if err := prototext.Unmarshal(read("meshd-gnmi-get-"+r+".textproto"), &resp); err != nil {
			t.Fatal(err)
		}
		ApplyGNMI(v.Sessions[ViewGNMI], r, &resp)
	}
	var res [4]*influxResult
	for i, q := range []struct{ q, f string }{{qNeighbor, "neighbor"}, {qPeerAS, "peer-as"}, {qAFI, "afi"}, {qRoutes, "routes"}} {
		r, err := parseInflux(q.q, read("meshd-influx-"+q.f+".json"))
		if err != nil {
			t.Fatal(err)
		}
		res[i] = r
	}
	ApplyInflux(v.Sessions[ViewInflux], res[0], res[1], res[2])
	v.Routes = ApplyRoutes(res[3])
	if err := ApplyAPI(v.Sessions[ViewAPI], read("meshd-api-sessions.json")); err != nil {
		t.Fatal(err)
	}
	return v
}

// The readers of meshd's views, on its real answers.
func TestMeshdReaders(t *testing.T) {
	v := loadMeshdRound(t)
	k := SessionKey{"r1", "10.100.1.2"}
	for _, name := range []string{ViewGNMI, ViewInflux, ViewAPI} {
		s := v.Sessions[name][k]
		if s == nil {
			t.Fatalf("%s: no %v", name, k)
		}
		state, _ := ptrStr(s.State)
		if state != "ESTABLISHED" || numStr(s.PeerAS) != "4200000002" || numStr(s.Transitions) != "1" {
			t.Errorf("%s %v: state %s peer AS %s transitions %s", name, k, state, numStr(s.PeerAS), numStr(s.Transitions))
		}
	}
	for _, name := range []string{ViewGNMI, ViewInflux} {
		a := v.Sessions[name][k].AFs["IPV4_UNICAST"]
		if a == nil {
			t.Fatalf("%s: no IPV4_UNICAST", name)
		}
		if got := [3]string{numStr(a.ReceivedPre), numStr(a.Received), numStr(a.Sent)}; got != [3]string{"4", "2", "2"} {
			t.Errorf("%s %v IPV4_UNICAST: pre %s received %s sent %s, want 4 2 2 (gobgpd r1 said 4 received, 2 accepted, 2 advertised)", name, k, got[0], got[1], got[2])
		}
	}
	// Routes: the last point of a route in InfluxDB's time order.
	own := v.Routes[RouteKey{"r1", "0.0.0.0", "LOC_RIB", "IPV4_UNICAST", "10.200.1.0/24"}]
	if len(own) != 1 || own[0].OriginAS != 0 {
		t.Errorf("r1's own 10.200.1.0/24 in its Loc-RIB: %+v, want one route with origin_as 0 as meshd stored it", own)
	}
	gone := v.Routes[RouteKey{"r2", "10.100.2.2", "ADJ_RIB_IN_POST", "IPV4_UNICAST", "10.200.1.0/24"}]
	if len(gone) != 1 {
		t.Errorf("r2 10.100.2.2 10.200.1.0/24 post-policy: %+v: its last point (1 µs after the withdraw) is an announce", gone)
	}
}

// verify on one real round of the lab (routers and meshd read together)
// reports the mismatches the live run printed (old meshd, before the
// fixes of issue 14 items 1, 3 and 4), among them the doubled prefix
// count, the origin AS 0 of own routes and FRR's post-policy AS paths.
func TestCompareRealRound(t *testing.T) {
	topo, routers := loadRouters(t, "round")
	rep := Compare(topo, routers, routers, loadMeshdRound(t))
	var b strings.Builder
	rep.Write(&b)
	for _, want := range []string{
		"MISMATCH r1 10.100.4.1 * prefixes-received: router r1 (gobgpd) (sum over AFI-SAFIs): 3; meshd api: 6 (differs)",
		"MISMATCH r1 - IPV4_UNICAST LOC_RIB 10.200.1.0/24 origin-as: router r1 (gobgpd): 4200000001; meshd influx: 0 (differs)",
		`MISMATCH r2 10.100.2.2 IPV4_UNICAST ADJ_RIB_IN_POST 10.200.3.0/24 as-path: router r2 (frr): "4200000003"; meshd influx: "4200000002 4200000003" (differs)`,
		"MISMATCH r2 0.0.0.0 IPV4_UNICAST ADJ_RIB_IN_POST 10.200.2.0/24 origin-as: router r2 (frr) own route: 4200000002; meshd influx: 0 (differs)",
		"MISMATCH r2 10.100.2.2 IPV4_UNICAST ADJ_RIB_IN_POST 10.200.1.0/24 route: router r2 (frr): no route; meshd influx: announced, origin 4200000001 (differs)",
	} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("report lacks\n%s\nreport:\n%s", want, b.String())
		}
	}
	// The live run printed 28: 10 more in FRR's pre-policy view, which
	// verify now knows to be none (not comparable, said so).
	if len(rep.Mismatches) != 18 {
		t.Errorf("%d mismatches, want 18:\n%s", len(rep.Mismatches), b.String())
	}
	if !strings.Contains(b.String(), "checks): "+frrNoPrePolicy) {
		t.Errorf("report does not say FRR's pre-policy view is not comparable:\n%s", b.String())
	}
}

// bmp_route replayed in time order: a withdraw after an announce removes
// the route, one at the same time leaves it marked as tied, and path IDs
// are routes of their own.
func TestApplyRoutes(t *testing.T) {
	q := `{"results":[{"series":[
{"name":"bmp_route","tags":{"router":"r1","neighbor":"10.100.1.2","rib":"ADJ_RIB_IN_POST","afi_safi":"IPV4_UNICAST","action":"announce"},
 "columns":["time","prefix","origin_as","as_path","path_id"],
 "values":[[100,"10.200.2.0/24",4200000002,"4200000002",null],[100,"10.200.3.0/24",4200000003,"4200000002 4200000003",null],[300,"10.200.4.0/24",4200000004,"4200000004",1],[300,"10.200.4.0/24",4200000005,"4200000005",2]]},
{"name":"bmp_route","tags":{"router":"r1","neighbor":"10.100.1.2","rib":"ADJ_RIB_IN_POST","afi_safi":"IPV4_UNICAST","action":"withdraw"},
 "columns":["time","prefix","origin_as","as_path","path_id"],
 "values":[[100,"10.200.3.0/24",4200000003,"4200000002 4200000003",null],[200,"10.200.2.0/24",4200000002,"4200000002",null],[400,"10.200.4.0/24",4200000004,"4200000004",1]]},
{"name":"bmp_route","tags":{"router":"r1","neighbor":"10.100.1.2","rib":"LOC_RIB","afi_safi":"IPV4_UNICAST","action":"announce"},
 "columns":["time","prefix","origin_as","as_path","path_id"],
 "values":[[1796253782920703000,"10.200.5.0/24",4200000005,"4200000005",null]]},
{"name":"bmp_route","tags":{"router":"r1","neighbor":"10.100.1.2","rib":"LOC_RIB","afi_safi":"IPV4_UNICAST","action":"withdraw"},
 "columns":["time","prefix","origin_as","as_path","path_id"],
 "values":[[1796253782920703001,"10.200.5.0/24",4200000005,"4200000005",null]]}
]}]}`
	res, err := parseInflux(qRoutes, []byte(q))
	if err != nil {
		t.Fatal(err)
	}
	got := ApplyRoutes(res)
	key := func(p string) RouteKey { return RouteKey{"r1", "10.100.1.2", "ADJ_RIB_IN_POST", "IPV4_UNICAST", p} }
	if r := got[key("10.200.2.0/24")]; len(r) != 0 {
		t.Errorf("10.200.2.0/24 withdrawn later: %+v", r)
	}
	if r := got[key("10.200.3.0/24")]; len(r) != 1 || !r[0].Tied {
		t.Errorf("10.200.3.0/24 withdrawn at the announce's time: %+v, want one tied route", r)
	}
	// 1 ns later, at today's times: beyond a float64's precision.
	if r := got[RouteKey{"r1", "10.100.1.2", "LOC_RIB", "IPV4_UNICAST", "10.200.5.0/24"}]; len(r) != 0 {
		t.Errorf("10.200.5.0/24 withdrawn 1 ns after its announce: %+v", r)
	}
	if r := got[key("10.200.4.0/24")]; len(r) != 1 || r[0].OriginAS != 4200000005 {
		t.Errorf("10.200.4.0/24 path 1 withdrawn, path 2 kept: %+v", r)
	}
}
