//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/gnmic/pkg/api"
	"github.com/openconfig/gnmic/pkg/api/target"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/bmpbridge"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/merge"
	"github.com/meshd/meshd/ribview"
	"github.com/meshd/meshd/sinks/gnmiserver"
)

// ribPre is r1's Adj-RIB-In (pre-policy) of its neighbor r2, as the
// gNMI target serves it.
const ribPre = "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/rib" +
	"/afi-safis/afi-safi[afi-safi-name=IPV4_UNICAST]/ipv4-unicast/neighbors/neighbor[neighbor-address=10.90.0.2]/adj-rib-in-pre/routes"

// TestRIBOverGNMI: gobgpd r2 announces routes to gobgpd r1, which
// monitors them over BMP to meshd; gnmic's client code reads r1's
// Adj-RIB-In from meshd's gNMI target in the openconfig-rib-bgp model.
// A ONCE subscription holds what gobgpd in r1 says it holds (its own
// API); a stream filtered by prefix gets that prefix's announcement,
// its attributes and its withdrawal, and nothing of the other prefixes.
func TestRIBOverGNMI(t *testing.T) {
	testenv.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	core, err := merge.New(merge.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	hub := ribview.NewHub(prometheus.NewRegistry())
	sink := startSink(t, ctx, core, gnmiserver.Config{}, prometheus.NewRegistry(), gnmiserver.WithRIBs(hub))
	spk1, spk2 := startGobgpPair(t, ctx, core, bmpbridge.WithRIBHub(hub))
	testenv.WaitFor(t, 60*time.Second, "r1's session with r2 established", func() bool {
		return gobgpNeighbor(t, spk1, "10.90.0.2").state == "ESTABLISHED"
	})

	tg := gnmicTarget(t, ctx, "meshd", sink.Addr().String())

	// A client that watches only its own prefix, with the attributes.
	const mine = "10.99.1.0/24"
	req, err := api.NewSubscribeRequest(api.Target("r1"), api.SubscriptionListModeSTREAM(), api.EncodingPROTO(),
		api.Subscription(api.Path(ribPre+"/route[prefix="+mine+"]"), api.SubscriptionModeON_CHANGE()),
		api.Subscription(api.Path("/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/rib/attr-sets"), api.SubscriptionModeON_CHANGE()))
	if err != nil {
		t.Fatal(err)
	}
	rsps, errs := tg.SubscribeStreamChan(ctx, req, "mine")
	got := &ribLog{}
	go got.read(ctx, rsps, errs)
	testenv.WaitFor(t, 10*time.Second, "the stream's sync_response", got.synced)

	// A table first: the other prefixes.
	var table []string
	for i := range 20 {
		p := fmt.Sprintf("10.98.%d.0/24", i)
		table = append(table, p)
		spk2.Gobgp(t, "global", "rib", "add", p, "-a", "ipv4")
	}
	testenv.WaitFor(t, 30*time.Second, "gobgpd in r1 holding r2's 20 routes", func() bool {
		return len(gobgpAdjIn(t, spk1)) == 20
	})
	var once []string
	testenv.WaitFor(t, 10*time.Second, "meshd's Adj-RIB-In-Pre of r1 (ONCE, gnmic) equal to gobgpd's", func() bool {
		once = onceRoutes(t, ctx, tg)
		return slices.Equal(once, gobgpAdjIn(t, spk1))
	})
	slices.Sort(table)
	if !slices.Equal(once, table) {
		t.Errorf("ONCE served %v, want r2's table %v", once, table)
	}

	// Then the watched prefix: announced, with its attributes, then
	// withdrawn, each within the second; timed from the CLI's
	// return, so the time includes BGP from r2 to r1 and BMP to meshd.
	var lat []time.Duration
	for round := range 5 {
		start := time.Now()
		spk2.Gobgp(t, "global", "rib", "add", mine, "-a", "ipv4")
		testenv.WaitFor(t, 10*time.Second, "the stream to get "+mine, func() bool { return got.has(mine) })
		lat = append(lat, time.Since(start))
		if round == 0 {
			idx := got.leaf(mine, "attr-index")
			testenv.WaitFor(t, 5*time.Second, "the route's attr-set", func() bool {
				return got.attr(idx, "next-hop") == "10.90.0.2" && got.attr(idx, "member") == fmt.Sprint(asn2)
			})
		}
		start = time.Now()
		spk2.Gobgp(t, "global", "rib", "del", mine, "-a", "ipv4")
		testenv.WaitFor(t, 10*time.Second, "the stream to get the withdrawal of "+mine, func() bool { return !got.has(mine) })
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("announcement or withdrawal to gnmic, 10 changes: min %v, median %v, max %v", lat[0], lat[len(lat)/2], lat[len(lat)-1])
	if med := lat[len(lat)/2]; med > time.Second {
		t.Errorf("median time from a change to the subscriber %v, want within 1 s", med)
	}
	if others := got.prefixesOtherThan(mine); len(others) > 0 {
		t.Errorf("the prefix-filtered stream got other prefixes: %v", others)
	}
	if err := got.error(); err != nil {
		t.Errorf("gnmic's stream: %v", err)
	}
}

// onceRoutes lists the prefixes of r1's Adj-RIB-In-Pre a ONCE
// subscription returns, sorted.
func onceRoutes(t *testing.T, ctx context.Context, tg *target.Target) []string {
	t.Helper()
	req, err := api.NewSubscribeRequest(api.Target("r1"), api.SubscriptionListModeONCE(), api.EncodingJSON_IETF(),
		api.Subscription(api.Path(ribPre)))
	if err != nil {
		t.Fatal(err)
	}
	rsps, err := tg.SubscribeOnce(ctx, req)
	if err != nil {
		t.Fatalf("gnmic ONCE: %v", err)
	}
	var out []string
	for _, r := range rsps {
		for _, u := range r.GetUpdate().GetUpdate() {
			if el := u.GetPath().GetElem(); len(el) > 0 && el[len(el)-1].GetName() == "prefix" {
				var p string
				if err := json.Unmarshal(u.GetVal().GetJsonIetfVal(), &p); err != nil {
					t.Fatalf("prefix leaf %s: %v", u.GetVal(), err)
				}
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return out
}

// gobgpAdjIn lists the prefixes gobgpd in r1 holds from r2, by its own
// API, sorted.
func gobgpAdjIn(t *testing.T, d *testenv.Daemon) []string {
	t.Helper()
	out := strings.TrimSpace(d.Gobgp(t, "neighbor", "10.90.0.2", "adj-in", "-a", "ipv4", "-j"))
	if out == "" || out == "null" {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("gobgp adj-in: %v: %s", err, out)
	}
	var ps []string
	for p := range m {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// ribLog keeps what a RIB stream holds: route leaves by prefix, attr-set
// leaves by index.
type ribLog struct {
	mu     sync.Mutex
	routes map[string]map[string]string
	attrs  map[string]map[string]string
	sync   bool
	first  error
}

func (l *ribLog) read(ctx context.Context, rsps <-chan *gpb.SubscribeResponse, errs <-chan error) {
	for {
		select {
		case r, ok := <-rsps:
			if !ok {
				return
			}
			l.add(r)
		case err, ok := <-errs:
			if !ok {
				return
			}
			l.mu.Lock()
			if l.first == nil {
				l.first = err
			}
			l.mu.Unlock()
		case <-ctx.Done():
			return
		}
	}
}

func (l *ribLog) add(r *gpb.SubscribeResponse) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.routes == nil {
		l.routes, l.attrs = map[string]map[string]string{}, map[string]map[string]string{}
	}
	if r.GetSyncResponse() {
		l.sync = true
		return
	}
	n := r.GetUpdate()
	full := func(p *gpb.Path) []*gpb.PathElem {
		return append(append([]*gpb.PathElem(nil), n.GetPrefix().GetElem()...), p.GetElem()...)
	}
	find := func(es []*gpb.PathElem, name, key string) string {
		for _, e := range es {
			if e.GetName() == name {
				return e.GetKey()[key]
			}
		}
		return ""
	}
	for _, d := range n.GetDelete() {
		es := full(d)
		if p := find(es, "route", "prefix"); p != "" {
			delete(l.routes, p)
		}
		if i := find(es, "attr-set", "index"); i != "" {
			delete(l.attrs, i)
		}
	}
	for _, u := range n.GetUpdate() {
		es := full(u.GetPath())
		name := es[len(es)-1].GetName()
		v := typedString(u.GetVal())
		if ll := u.GetVal().GetLeaflistVal(); ll != nil {
			var parts []string
			for _, e := range ll.GetElement() {
				parts = append(parts, typedString(e))
			}
			v = strings.Join(parts, " ")
		}
		if p := find(es, "route", "prefix"); p != "" {
			if l.routes[p] == nil {
				l.routes[p] = map[string]string{}
			}
			l.routes[p][name] = v
		} else if i := find(es, "attr-set", "index"); i != "" {
			if l.attrs[i] == nil {
				l.attrs[i] = map[string]string{}
			}
			l.attrs[i][name] = v
		}
	}
}

func (l *ribLog) synced() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sync
}

func (l *ribLog) has(p string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.routes[p]["prefix"] == p
}

func (l *ribLog) leaf(p, name string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.routes[p][name]
}

func (l *ribLog) attr(idx, name string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.attrs[idx][name]
}

func (l *ribLog) prefixesOtherThan(p string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for q := range l.routes {
		if q != p {
			out = append(out, q)
		}
	}
	return out
}

func (l *ribLog) error() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}
