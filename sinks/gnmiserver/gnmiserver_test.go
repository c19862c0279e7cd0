package gnmiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/merge"
	"github.com/meshd/meshd/stage"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for none
	}{
		{"defaults", Config{}, ""},
		{"loopback v6", Config{Listen: "[::1]:57400"}, ""},
		{"all interfaces, nothing", Config{Listen: ":57400"}, "gnmi-server.tls-cert, gnmi-server.tls-key, gnmi-server.username, gnmi-server.password"},
		{"public, TLS only", Config{Listen: "192.0.2.1:57400", TLSCert: "c", TLSKey: "k"}, "gnmi-server.username, gnmi-server.password"},
		{"public, credentials only", Config{Listen: "0.0.0.0:57400", Username: "u", Password: "pw-Secret-1"}, "set gnmi-server.tls-cert, gnmi-server.tls-key"},
		{"public, both", Config{Listen: "0.0.0.0:57400", TLSCert: "c", TLSKey: "k", Username: "u", Password: "p"}, ""},
		{"public, explicit opt-in", Config{Listen: "0.0.0.0:57400", AllowInsecure: true}, ""},
		{"host name", Config{Listen: "meshd.example:57400"}, "beyond loopback"},
		{"cert without key", Config{TLSCert: "c"}, "gnmi-server.tls-cert and gnmi-server.tls-key"},
		{"CA without cert", Config{TLSCA: "ca"}, "gnmi-server.tls-ca"},
		{"user without password", Config{Username: "u"}, "gnmi-server.username and gnmi-server.password"},
		{"bad listen", Config{Listen: "57400"}, "gnmi-server.listen"},
		{"negative cap", Config{MaxSubscriptionsPerClient: -1}, "gnmi-server.max-subscriptions-per-client"},
		{"no total cap", Config{MaxSubscriptions: -1}, ""},
		{"negative total cap", Config{MaxSubscriptions: -2}, "gnmi-server.max-subscriptions"},
		{"negative recv size", Config{MaxRecvMsgSize: -1}, "gnmi-server.max-recv-msg-size"},
		{"negative send size", Config{MaxSendMsgSize: -1}, "gnmi-server.max-send-msg-size"},
		{"sizes", Config{MaxRecvMsgSize: 1 << 20, MaxSendMsgSize: 64 << 20}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			c.SetDefaults()
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), c.Password) && c.Password != "" {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
	d := Defaults()
	if d.MaxSubscriptions != 1024 || d.MaxRecvMsgSize != 4<<20 || d.MaxSendMsgSize != 0 || d.MaxSubscriptionsPerClient != 64 {
		t.Errorf("defaults: max-subscriptions %d, max-recv-msg-size %d, max-send-msg-size %d, max-subscriptions-per-client %d; the config docs say 1024, 4194304, 0, 64",
			d.MaxSubscriptions, d.MaxRecvMsgSize, d.MaxSendMsgSize, d.MaxSubscriptionsPerClient)
	}
	if _, err := New(Config{Listen: "0.0.0.0:0"}, &merge.Core{}); err == nil {
		t.Error("New accepted an insecure public listener")
	}
}

// fixture runs a merge core and the sink on a loopback port.
type fixture struct {
	core *merge.Core
	sink *Sink
	sub  *merge.Subscription
	c    gpb.GNMIClient
	reg  *prometheus.Registry
}

func start(t *testing.T, depth int) *fixture {
	t.Helper()
	return startWith(t, depth, Config{Listen: "127.0.0.1:0", MinSampleInterval: 50 * time.Millisecond},
		[]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())})
}

// startWith runs the sink with cfg and dials it with dopts; extra options
// go to the sink.
func startWith(t *testing.T, depth int, cfg Config, dopts []grpc.DialOption, opts ...Option) *fixture {
	t.Helper()
	return startHook(t, depth, nil, nil, cfg, dopts, opts...)
}

// startAfter runs the sink once before has fed the core, with the sink's
// queue (of depth batches) already subscribed and nothing reading it.
func startAfter(t *testing.T, depth int, before func(*merge.Core)) *fixture {
	t.Helper()
	return startHook(t, depth, before, nil, Config{Listen: "127.0.0.1:0", MinSampleInterval: 50 * time.Millisecond},
		[]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())})
}

// startHook is startWith with before run between subscribing and Run,
// and snap (if not nil) wrapping the core as the sink's snapshot source.
func startHook(t testing.TB, depth int, before func(*merge.Core), snap func(*merge.Core) stage.Snapshotter, cfg Config, dopts []grpc.DialOption, opts ...Option) *fixture {
	t.Helper()
	core, err := merge.New()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	var src stage.Snapshotter = core
	if snap != nil {
		src = snap(core)
	}
	sink, err := New(cfg, src, append([]Option{WithRegisterer(reg)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	sub := core.Subscribe("gnmi-server", depth, merge.WithKeys())
	if before != nil {
		before(core)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sink.Run(ctx, sub) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		sub.Close()
	})
	deadline := time.Now().Add(5 * time.Second)
	for sink.Addr() == nil {
		if time.Now().After(deadline) {
			t.Fatal("sink not listening after 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cc, err := grpc.NewClient(sink.Addr().String(), dopts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return &fixture{core: core, sink: sink, sub: sub, c: gpb.NewGNMIClient(cc), reg: reg}
}

// bmpPeerUp is what the BMP bridge applies for a Peer Up: OpenConfig
// neighbor state, sourced from BMP only.
func bmpPeerUp(router, ni, addr string, as uint64, at time.Time) []change.Change {
	mk := func(p *gpb.Path, v *gpb.TypedValue) change.Change {
		return change.Change{Router: router, Path: p, Value: v, Time: at, Source: change.SourceBMP}
	}
	return []change.Change{
		mk(change.NeighborPath(ni, addr, "state", "session-state"), change.String("ESTABLISHED")),
		mk(change.NeighborPath(ni, addr, "state", "peer-as"), change.Uint(as)),
		mk(change.NeighborPath(ni, addr, "state", "local-as"), change.Uint(65000)),
		mk(change.NeighborPath(ni, addr, "state", "neighbor-address"), change.String(addr)),
	}
}

func (f *fixture) get(t testing.TB, target, path string, enc gpb.Encoding) (*gpb.GetResponse, error) {
	t.Helper()
	p, err := change.ParsePath(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return f.c.Get(ctx, &gpb.GetRequest{Prefix: &gpb.Path{Target: target}, Path: []*gpb.Path{p}, Encoding: enc})
}

// waitGet polls Get until cond holds on the response.
func (f *fixture) waitGet(t *testing.T, target, path string, enc gpb.Encoding, what string, cond func(*gpb.GetResponse, error) bool) *gpb.GetResponse {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := f.get(t, target, path, enc)
		if cond(resp, err) {
			return resp
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s (last: %v, %v)", what, resp, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const nbrState = "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=192.0.2.1]/state"

func TestBMPOnlyRouterServedAsOpenConfig(t *testing.T) {
	f := start(t, 1024)
	at := time.Now()
	if res := f.core.Apply(bmpPeerUp("edge1", "default", "192.0.2.1", 64512, at)); res.Err != nil || res.Applied != 4 {
		t.Fatalf("Apply: %+v", res)
	}

	// Get, PROTO: the OpenConfig leaves as they came from BMP.
	resp := f.waitGet(t, "edge1", nbrState+"/session-state", gpb.Encoding_PROTO, "session-state", func(r *gpb.GetResponse, err error) bool { return err == nil })
	u := resp.GetNotification()[0].GetUpdate()
	if len(u) != 1 || u[0].GetVal().GetStringVal() != "ESTABLISHED" || resp.GetNotification()[0].GetPrefix().GetTarget() != "edge1" {
		t.Fatalf("Get session-state = %v", resp)
	}

	// Get, JSON_IETF: the neighbor's state container, typed by the schema
	// (peer-as is a uint32 number), its members qualified with their
	// module as a top-level object's are (RFC 7951 §4).
	resp, err := f.get(t, "edge1", nbrState, gpb.Encoding_JSON_IETF)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(resp.GetNotification()[0].GetUpdate()[0].GetVal().GetJsonIetfVal(), &st); err != nil {
		t.Fatal(err)
	}
	const ni = "openconfig-network-instance:"
	if st[ni+"session-state"] != "ESTABLISHED" || st[ni+"peer-as"] != float64(64512) || st[ni+"local-as"] != float64(65000) {
		t.Errorf("JSON_IETF state = %v", st)
	}
	resp, err = f.get(t, "edge1", "/", gpb.Encoding_JSON_IETF)
	if err != nil {
		t.Fatal(err)
	}
	root := string(resp.GetNotification()[0].GetUpdate()[0].GetVal().GetJsonIetfVal())
	if !strings.Contains(root, `"openconfig-network-instance:network-instances"`) {
		t.Errorf("root JSON_IETF not module-qualified: %.200s", root)
	}

	// Subscribe, STREAM: current state, then the BMP Peer Down.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st2, err := f.c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := change.ParsePath("/network-instances/network-instance/protocols/protocol/bgp/neighbors/neighbor/state/session-state")
	if err := st2.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: &gpb.SubscriptionList{
		Prefix: &gpb.Path{Target: "*"}, Mode: gpb.SubscriptionList_STREAM, Encoding: gpb.Encoding_PROTO,
		Subscription: []*gpb.Subscription{{Path: p, Mode: gpb.SubscriptionMode_ON_CHANGE}},
	}}}); err != nil {
		t.Fatal(err)
	}
	recv := func() *gpb.SubscribeResponse {
		t.Helper()
		r, err := st2.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		return r
	}
	if n := recv().GetUpdate(); n.GetPrefix().GetTarget() != "edge1" || n.GetUpdate()[0].GetVal().GetStringVal() != "ESTABLISHED" {
		t.Fatalf("initial = %v", n)
	}
	if !recv().GetSyncResponse() {
		t.Fatal("no sync_response after the initial state")
	}
	f.core.Apply([]change.Change{{Router: "edge1", Path: change.NeighborPath("default", "192.0.2.1", "state", "session-state"),
		Value: change.String("IDLE"), Time: at.Add(time.Second), Source: change.SourceBMP}})
	n := recv().GetUpdate()
	if len(n.GetUpdate()) != 1 || n.GetUpdate()[0].GetVal().GetStringVal() != "IDLE" || n.GetTimestamp() != at.Add(time.Second).UnixNano() {
		t.Fatalf("peer down = %v", n)
	}

	// The router goes away: a delete reaches the subscriber and Get
	// reports NotFound. (Removed as meshd: a removal by the BMP source
	// alone leaves the core's own verdict leaves, which outrank it.)
	f.core.RemoveRouter("edge1", change.SourceMeshd, at.Add(2*time.Second))
	for {
		n := recv().GetUpdate()
		if len(n.GetDelete()) > 0 {
			full := append(append([]*gpb.PathElem{}, n.GetPrefix().GetElem()...), n.GetDelete()[0].GetElem()...)
			if full[len(full)-1].GetName() != "session-state" {
				t.Errorf("delete of %v", full)
			}
			break
		}
	}
	f.waitGet(t, "edge1", "/", gpb.Encoding_PROTO, "router gone", func(r *gpb.GetResponse, err error) bool { return status.Code(err) == codes.NotFound })
}

func TestCapabilities(t *testing.T) {
	f := start(t, 16)
	resp, err := f.c.Capabilities(context.Background(), &gpb.CapabilityRequest{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, m := range resp.GetSupportedModels() {
		names[m.GetName()] = m.GetVersion()
	}
	if _, ok := names["openconfig-network-instance"]; !ok || names["meshd-bgp"] != "2026-11-21" {
		t.Errorf("models = %v", names)
	}
}

// The sink's queue overflowed before it read anything: its first resync
// serves the core's state, and the batches still queued, older than that
// state, neither take a leaf back in time nor bring back a router the
// core has dropped; their loss, which that resync covers, starts no
// other resync. (Before, a resync was followed by the batches it had
// already covered, and every loss marker started another whole-fleet
// resync, each losing more batches: subscribers of a busy fleet saw
// updates seconds late.)
func TestQueuedBatchesDoNotUndoResync(t *testing.T) {
	const n = 50
	at := time.Unix(1_700_000_000, 0)
	upd := change.NeighborPath("default", "192.0.2.1", "state", "messages", "received", "UPDATE")
	count := func(i int) []change.Change {
		return []change.Change{{Router: "r1", Path: upd, Value: change.Uint(uint64(i)), Time: at.Add(time.Duration(i) * time.Second), Source: change.SourceBMP}}
	}
	f := startAfter(t, 4, func(core *merge.Core) {
		core.Apply(append(bmpPeerUp("r1", "default", "192.0.2.1", 64512, at), bmpPeerUp("r2", "default", "192.0.2.9", 64513, at)...))
		for i := 1; i <= n; i++ {
			core.Apply(count(i))
		}
		core.RemoveRouter("r2", change.SourceBMP, at.Add(time.Hour))
	})
	if f.sub.Dropped() == 0 {
		t.Fatal("the queue of 4 did not overflow")
	}
	updPath := nbrState + "/messages/received/UPDATE"
	served := func(want uint64) {
		t.Helper()
		f.waitGet(t, "r1", updPath, gpb.Encoding_PROTO, fmt.Sprintf("r1's UPDATE counter at %d", want), func(r *gpb.GetResponse, err error) bool {
			return err == nil && r.GetNotification()[0].GetUpdate()[0].GetVal().GetUintVal() == want
		})
	}
	served(n)
	// Queued batches are taken by the same loop that served n: once it
	// has, none is left to take it back. Let a later change through the
	// queue to be sure it was emptied.
	f.core.Apply(count(n + 1))
	served(n + 1)
	resp, err := f.get(t, "r1", updPath, gpb.Encoding_PROTO)
	if err != nil {
		t.Fatal(err)
	}
	if ts, want := resp.GetNotification()[0].GetTimestamp(), at.Add((n+1)*time.Second).UnixNano(); ts != want {
		t.Errorf("served with timestamp %v, want the source's %v", time.Unix(0, ts).UTC(), time.Unix(0, want).UTC())
	}
	if _, err := f.get(t, "r2", "/", gpb.Encoding_PROTO); status.Code(err) != codes.NotFound {
		t.Errorf("r2, removed from the core while its batches were queued: %v, want NotFound", err)
	}
	// Served now as the core publishes: nothing more is dropped from the
	// queue of 4, and each Apply returns with the change served.
	dropped := f.sub.Dropped()
	for i := n + 2; i <= n+100; i++ {
		f.core.Apply(count(i))
		resp, err := f.get(t, "r1", updPath, gpb.Encoding_PROTO)
		if err != nil || resp.GetNotification()[0].GetUpdate()[0].GetVal().GetUintVal() != uint64(i) {
			t.Fatalf("after Apply of %d: served %v, %v", i, resp, err)
		}
	}
	if d := f.sub.Dropped(); d != dropped {
		t.Errorf("%d more updates dropped after the sink was level with the core", d-dropped)
	}
	if v := testutil.ToFloat64(f.sink.resyncs); v != 1 {
		t.Errorf("resyncs = %v, want 1 (the start's, which covers the loss)", v)
	}
}

// Batches lost while the sink resynchronises (here its first one, held
// at the gate while the core changes more often than the queue of 2
// holds) make it resynchronise again before it takes batches from the
// core directly: the served tree is the core's, the router the core
// dropped meanwhile included.
func TestUncoveredLossResyncs(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	gate := make(chan struct{})
	entered := make(chan struct{})
	var once sync.Once
	f := startHook(t, 2, func(core *merge.Core) {
		core.Apply(append(bmpPeerUp("r1", "default", "192.0.2.1", 64512, at), bmpPeerUp("r2", "default", "192.0.2.9", 64513, at)...))
	}, func(core *merge.Core) stage.Snapshotter {
		return gatedSnap{Core: core, wait: func() {
			once.Do(func() {
				close(entered)
				<-gate
			})
		}}
	}, Config{Listen: "127.0.0.1:0", MinSampleInterval: 50 * time.Millisecond},
		[]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())})
	<-entered
	upd := change.NeighborPath("default", "192.0.2.1", "state", "messages", "received", "UPDATE")
	for i := 0; i < 8; i++ {
		f.core.Apply([]change.Change{{Router: "r1", Path: upd, Value: change.Uint(uint64(i)), Time: at.Add(time.Duration(i) * time.Second), Source: change.SourceBMP}})
	}
	f.core.RemoveRouter("r2", change.SourceBMP, at.Add(time.Minute))
	state := change.NeighborPath("default", "192.0.2.1", "state", "session-state")
	f.core.Apply([]change.Change{{Router: "r1", Path: state, Value: change.String("ACTIVE"), Time: at.Add(time.Minute), Source: change.SourceBMP}})
	if f.sub.Dropped() == 0 {
		t.Fatal("the queue of 2 did not overflow")
	}
	close(gate)
	f.waitGet(t, "r1", nbrState+"/session-state", gpb.Encoding_PROTO, "r1 ACTIVE", func(r *gpb.GetResponse, err error) bool {
		return err == nil && r.GetNotification()[0].GetUpdate()[0].GetVal().GetStringVal() == "ACTIVE"
	})
	f.waitGet(t, "r1", nbrState+"/messages/received/UPDATE", gpb.Encoding_PROTO, "r1's counter at 7", func(r *gpb.GetResponse, err error) bool {
		return err == nil && r.GetNotification()[0].GetUpdate()[0].GetVal().GetUintVal() == 7
	})
	f.waitGet(t, "r2", "/", gpb.Encoding_PROTO, "r2 gone", func(r *gpb.GetResponse, err error) bool { return status.Code(err) == codes.NotFound })
}

// gatedSnap calls wait before each use of the core's snapshot.
type gatedSnap struct {
	*merge.Core
	wait func()
}

func (g gatedSnap) Routers() []string { g.wait(); return g.Core.Routers() }
func (g gatedSnap) Snapshot(r string) []change.Update {
	g.wait()
	return g.Core.Snapshot(r)
}

// afiSafiPrefixes is what the BMP bridge applies for a neighbor's IPv4
// unicast prefix counts.
func afiSafiPrefixes(router, addr string, rx uint64, at time.Time) []change.Change {
	mk := func(p *gpb.Path, v *gpb.TypedValue) change.Change {
		return change.Change{Router: router, Path: p, Value: v, Time: at, Source: change.SourceBMP}
	}
	return append(bmpPeerUp(router, "default", addr, 64512, at),
		mk(change.AfiSafiPath("default", addr, "IPV4_UNICAST", "state", "afi-safi-name"), change.String("IPV4_UNICAST")),
		mk(change.AfiSafiPath("default", addr, "IPV4_UNICAST", "state", "prefixes", "received"), change.Uint(rx)))
}

// JSON_IETF writes identityref values as RFC 7951 §6.8 wants them,
// "module:NAME" with the identity's defining module, as a leaf and as a
// list key; enumerations stay bare (§6.4); JSON (not IETF) stays bare.
func TestJSONIETFIdentityQualified(t *testing.T) {
	f := start(t, 1024)
	if res := f.core.Apply(afiSafiPrefixes("r1", "192.0.2.1", 3, time.Now())); res.Err != nil {
		t.Fatalf("Apply: %+v", res)
	}
	const afi = "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=192.0.2.1]/afi-safis/afi-safi[afi-safi-name=IPV4_UNICAST]"
	const qualified = "openconfig-bgp-types:IPV4_UNICAST"
	const ni = "openconfig-network-instance:"
	tests := []struct {
		name, path string
		enc        gpb.Encoding
		get        func(v any) any // picks the value checked out of the decoded JSON
		want       any
	}{
		{"leaf", afi + "/state/afi-safi-name", gpb.Encoding_JSON_IETF, func(v any) any { return v }, qualified},
		// A subtree's top-level members are qualified with their module
		// (RFC 7951 §4), the ones below only where the module changes.
		{"in its container", afi + "/state", gpb.Encoding_JSON_IETF, func(v any) any { return v.(map[string]any)[ni+"afi-safi-name"] }, qualified},
		{"list key", afi[:strings.LastIndex(afi, "/afi-safi[")], gpb.Encoding_JSON_IETF,
			func(v any) any { return v.(map[string]any)[ni+"afi-safi"].([]any)[0].(map[string]any)["afi-safi-name"] }, qualified},
		{"enumeration stays bare", nbrState + "/session-state", gpb.Encoding_JSON_IETF, func(v any) any { return v }, "ESTABLISHED"},
		{"JSON stays bare", afi + "/state/afi-safi-name", gpb.Encoding_JSON, func(v any) any { return v }, "IPV4_UNICAST"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.waitGet(t, "r1", tc.path, tc.enc, tc.path, func(r *gpb.GetResponse, err error) bool { return err == nil })
			val := resp.GetNotification()[0].GetUpdate()[0].GetVal()
			b := val.GetJsonIetfVal()
			if tc.enc == gpb.Encoding_JSON {
				b = val.GetJsonVal()
			}
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			if got := tc.get(v); got != tc.want {
				t.Errorf("%s = %v, want %v (JSON %s)", tc.path, got, tc.want, b)
			}
		})
	}
}

// once runs a ONCE subscription and returns its updates by path, and
// whether the sync came last.
func (f *fixture) once(t *testing.T, target, path string, enc gpb.Encoding) (map[string]*gpb.TypedValue, []*gpb.Notification) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := f.c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: &gpb.SubscriptionList{
		Prefix: &gpb.Path{Target: target}, Mode: gpb.SubscriptionList_ONCE, Encoding: enc,
		Subscription: []*gpb.Subscription{{Path: change.MustPath(path)}},
	}}}); err != nil {
		t.Fatal(err)
	}
	got := map[string]*gpb.TypedValue{}
	var ns []*gpb.Notification
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("ONCE %s: %v before the sync", path, err)
		}
		if resp.GetSyncResponse() {
			return got, ns
		}
		n := resp.GetUpdate()
		ns = append(ns, n)
		for _, u := range n.GetUpdate() {
			p := &gpb.Path{Elem: append(append([]*gpb.PathElem(nil), n.GetPrefix().GetElem()...), u.GetPath().GetElem()...)}
			got[change.PathKey(p)] = u.GetVal()
		}
	}
}

// A list's key leaves (network-instance/name, neighbor/neighbor-address,
// afi-safi/afi-safi-name: OpenConfig's leafrefs to config/ or state/)
// answer Get and Subscribe with the key's value, typed by the schema and,
// in JSON_IETF, an identity qualified with its module.
func TestKeyLeavesByPath(t *testing.T) {
	f := start(t, 1024)
	at := time.Now()
	if res := f.core.Apply(append(afiSafiPrefixes("r1", "192.0.2.1", 3, at), bmpPeerUp("r1", "default", "192.0.2.2", 64513, at)...)); res.Err != nil {
		t.Fatalf("Apply: %+v", res)
	}
	const ni = "/network-instances/network-instance[name=default]"
	const nbr = ni + "/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor"
	const afi = nbr + "[neighbor-address=192.0.2.1]/afi-safis/afi-safi[afi-safi-name=IPV4_UNICAST]"
	tests := []struct {
		name, path string
		enc        gpb.Encoding
		want       map[string]string // leaf path → value (PROTO: its string form; JSON: the JSON text)
	}{
		{"network-instance/name", ni + "/name", gpb.Encoding_PROTO, map[string]string{ni + "/name": "default"}},
		{"neighbor-address", nbr + "[neighbor-address=192.0.2.1]/neighbor-address", gpb.Encoding_JSON_IETF,
			map[string]string{nbr + "[neighbor-address=192.0.2.1]/neighbor-address": `"192.0.2.1"`}},
		{"every neighbor's address", nbr + "/neighbor-address", gpb.Encoding_PROTO, map[string]string{
			nbr + "[neighbor-address=192.0.2.1]/neighbor-address": "192.0.2.1",
			nbr + "[neighbor-address=192.0.2.2]/neighbor-address": "192.0.2.2"}},
		{"identity key, JSON_IETF", afi + "/afi-safi-name", gpb.Encoding_JSON_IETF,
			map[string]string{afi + "/afi-safi-name": `"openconfig-bgp-types:IPV4_UNICAST"`}},
		{"identity key, PROTO", afi + "/afi-safi-name", gpb.Encoding_PROTO, map[string]string{afi + "/afi-safi-name": "IPV4_UNICAST"}},
	}
	str := func(v *gpb.TypedValue) string {
		switch {
		case v.GetJsonIetfVal() != nil:
			return string(v.GetJsonIetfVal())
		case v.GetJsonVal() != nil:
			return string(v.GetJsonVal())
		}
		return v.GetStringVal()
	}
	norm := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[change.PathKey(change.MustPath(k))] = v
		}
		return out
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := norm(tc.want)
			resp := f.waitGet(t, "r1", tc.path, tc.enc, "Get "+tc.path, func(r *gpb.GetResponse, err error) bool { return err == nil })
			got := map[string]string{}
			for _, n := range resp.GetNotification() {
				for _, u := range n.GetUpdate() {
					got[change.PathKey(u.GetPath())] = str(u.GetVal())
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Get %s:\n got %v\nwant %v", tc.path, got, want)
			}
			sub, _ := f.once(t, "r1", tc.path, tc.enc)
			got = map[string]string{}
			for k, v := range sub {
				got[k] = str(v)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Subscribe ONCE %s:\n got %v\nwant %v", tc.path, got, want)
			}
		})
	}
	// A name that is no key of the entry is still not there.
	if _, err := f.get(t, "r1", ni+"/type", gpb.Encoding_PROTO); status.Code(err) != codes.NotFound {
		t.Errorf("Get %s/type: %v, want NotFound", ni, err)
	}
}
