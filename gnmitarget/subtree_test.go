package gnmitarget

import (
	"context"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/ribview"
)

// hubSubtree serves a ribview.Hub (as meshd's gnmi-server sink does);
// when lose is set, its watches' next Drain reports changes lost (the
// hub's own overflow is ribview's TestWatch).
type hubSubtree struct {
	*ribview.Hub
	lose *atomic.Bool
}

func (h hubSubtree) Watch(want func(string) bool, patterns [][]*gpb.PathElem) SubtreeWatch {
	return lossyWatch{h.Hub.Watch(want, patterns), h.lose}
}

type lossyWatch struct {
	*ribview.Watch
	lose *atomic.Bool
}

func (w lossyWatch) Drain(buf []*gpb.Notification) ([]*gpb.Notification, bool) {
	out, lost := w.Watch.Drain(buf)
	if w.lose.Swap(false) {
		return out[:len(buf)], true
	}
	return out, lost
}

// oneRIB holds one router's routes.
type oneRIB []ribview.Route

func (oneRIB) RIBRouters() []string { return []string{"r1"} }

func (o oneRIB) WalkRIB(router string, sel *ribview.Select, fn func([]ribview.Route) error) error {
	var out []ribview.Route
	for _, r := range o {
		if sel.Wants(r.NI, r.Neighbor, r.View, r.Prefix) {
			out = append(out, r)
		}
	}
	return fn(out)
}

const ribPath = "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/rib"

func ribRoute(p string, idx uint64) ribview.Route {
	return ribview.Route{NI: "default", Neighbor: "192.0.2.2", View: ribview.AdjInPost, Prefix: netip.MustParsePrefix(p),
		Attrs: &ribview.Attrs{Index: idx, Origin: "IGP", ASPath: "65002", NextHop: "192.0.2.2"}}
}

func ribServer(t *testing.T, routes ...ribview.Route) (hubSubtree, gpb.GNMIClient) {
	t.Helper()
	hub := hubSubtree{ribview.NewHub(nil), &atomic.Bool{}}
	hub.SetSource(oneRIB(routes))
	s, addr := startServer(t, WithSubtree(hub))
	s.Update("r1", nbr("default", "192.0.2.2", "ESTABLISHED", 1))
	return hub, dial(t, addr)
}

func routeKey(p, leaf string) string {
	return "r1|" + ribPath + "/afi-safis/afi-safi[afi-safi-name=IPV4_UNICAST]/ipv4-unicast/neighbors/neighbor[neighbor-address=192.0.2.2]/adj-rib-in-post/routes/route[path-id=0][prefix=" + p + "]/state/" + leaf
}

// TestSubtreeStream: a RIB path is walked at the start, then streamed as
// the source publishes; a subscriber that falls a whole queue behind
// gets a delete of its path and the walk again, and nothing is lost.
func TestSubtreeStream(t *testing.T) {
	hub, c := ribServer(t, ribRoute("10.1.0.0/16", 1))
	r := subscribe(t, c, streamList("r1", gpb.SubscriptionMode_ON_CHANGE, ribPath+"/afi-safis"))
	l := r.untilSync(t, 10*time.Second)
	if got := l.vals[routeKey("10.1.0.0/16", "prefix")]; got != "10.1.0.0/16" {
		t.Fatalf("initial walk: prefix leaf %q; leaves %v", got, l.keys())
	}
	if n := hasPrefix(l.keys(), "r1|network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors"); n != 0 {
		t.Errorf("the store's leaves in a RIB subscription: %d", n)
	}
	rt := ribRoute("10.2.0.0/16", 2)
	hub.Publish("r1", &rt)
	for l.vals[routeKey("10.2.0.0/16", "attr-index")] != "2" {
		l.add(r.next(t, 10*time.Second).GetUpdate())
	}
	wd := ribRoute("10.1.0.0/16", 1)
	wd.Attrs = nil
	hub.Publish("r1", &wd)
	for l.vals[routeKey("10.1.0.0/16", "prefix")] != "" {
		l.add(r.next(t, 10*time.Second).GetUpdate())
	}

	// Changes lost: the subscriber is walked again, after a delete.
	hub.lose.Store(true)
	rt = ribRoute("10.3.0.0/16", 3)
	hub.Publish("r1", &rt)
	deadline := time.Now().Add(10 * time.Second)
	sawDelete := false
	for time.Now().Before(deadline) && (!sawDelete || l.vals[routeKey("10.1.0.0/16", "prefix")] == "") {
		n := r.next(t, time.Until(deadline)).GetUpdate()
		if len(n.GetDelete()) > 0 && len(n.GetDelete()[0].GetElem()) == 7 {
			sawDelete = true
		}
		l.add(n)
	}
	if !sawDelete {
		t.Fatal("no delete of the subscribed path after the overflow")
	}
	// The walk after the overflow reads the source: 10.1.0.0/16 (still
	// in the fake source) is back, 10.2.0.0/16 (never in it) is gone.
	if l.vals[routeKey("10.2.0.0/16", "prefix")] != "" {
		t.Errorf("a route the source does not hold kept after the resync")
	}
}

func TestSubtreeRefusesSample(t *testing.T) {
	_, c := ribServer(t)
	r := subscribe(t, c, streamList("r1", gpb.SubscriptionMode_SAMPLE, ribPath))
	for range r.ch { // the reader's: it ends with the stream
	}
	err := <-r.err
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "SAMPLE") {
		t.Errorf("SAMPLE of a RIB path: %v, want Unimplemented naming SAMPLE", err)
	}
}

// TestSubtreeGet: Get serves the RIB paths in the encoding asked, and a
// prefix key selects one route.
func TestSubtreeGet(t *testing.T) {
	_, c := ribServer(t, ribRoute("10.1.0.0/16", 1), ribRoute("10.2.0.0/16", 2))
	for _, tc := range []struct {
		enc  gpb.Encoding
		path string
		want map[string]string
	}{
		{gpb.Encoding_PROTO, ribPath + "/afi-safis", map[string]string{routeKey("10.1.0.0/16", "attr-index"): "1", routeKey("10.2.0.0/16", "attr-index"): "2"}},
		{gpb.Encoding_JSON_IETF, ribPath + "/afi-safis/afi-safi/ipv4-unicast/neighbors/neighbor/adj-rib-in-post/routes/route[prefix=10.2.0.0/16]",
			map[string]string{routeKey("10.2.0.0/16", "prefix"): `ietf:"10.2.0.0/16"`, routeKey("10.1.0.0/16", "prefix"): ""}},
	} {
		resp, err := c.Get(context.Background(), &gpb.GetRequest{Prefix: &gpb.Path{Target: "r1"}, Path: []*gpb.Path{mustPath(t, tc.path)}, Encoding: tc.enc})
		if err != nil {
			t.Fatalf("Get %s: %v", tc.path, err)
		}
		l := newLeaves()
		for _, n := range resp.GetNotification() {
			l.add(n)
		}
		for k, v := range tc.want {
			if l.vals[k] != v {
				t.Errorf("Get %s (%v): %s = %q, want %q", tc.path, tc.enc, k, l.vals[k], v)
			}
		}
	}
	if _, err := c.Get(context.Background(), &gpb.GetRequest{Prefix: &gpb.Path{Target: "r1"}, Path: []*gpb.Path{mustPath(t, ribPath+"/afi-safis/afi-safi/ipv4-unicast/loc-rib")}}); status.Code(err) != codes.NotFound {
		t.Errorf("Get of an empty Loc-RIB: %v, want NotFound", err)
	}
}

// BenchmarkSubtreeEncode marshals a RIB walk's notifications (20,000
// routes of one neighbor, a set for every three) as the Subscribe
// handler sends them, by protobuf-go and by encodeResponse; per route.
func BenchmarkSubtreeEncode(b *testing.B) {
	const n = 20000
	routes := make([]ribview.Route, n)
	for i := range routes {
		routes[i] = ribRoute(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32).String(), uint64(i/3+1))
	}
	hub := ribview.NewHub(nil)
	hub.SetSource(oneRIB(routes))
	var ns []*gpb.Notification
	pats := [][]*gpb.PathElem{mustPath(b, ribPath).GetElem()}
	if err := hub.Walk(context.Background(), func(string) bool { return true }, pats, false, func(nt *gpb.Notification) error {
		ns = append(ns, nt)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		enc  func(*gpb.Notification) ([]byte, error)
	}{
		{"protobuf-go", func(nt *gpb.Notification) ([]byte, error) {
			return proto.Marshal(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: nt}})
		}},
		{"wire", func(nt *gpb.Notification) ([]byte, error) {
			bs, _ := encodeResponse(nt)
			return bs, nil
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				for _, nt := range ns {
					if _, err := tc.enc(nt); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/route")
		})
	}
}
