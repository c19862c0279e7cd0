package gnmiclient

import (
	"context"
	"sync"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
)

// cacheServer is openconfig/gnmi's cache behind its subscribe server, over
// real gRPC on loopback, holding target dev1 with two neighbors' peer-as.
type cacheServer struct {
	*testenv.CacheTarget
	addr string
}

func startCacheServer(t *testing.T) *cacheServer {
	t.Helper()
	cs := &cacheServer{CacheTarget: testenv.NewCacheTarget(t, "dev1")}
	cs.setPeerAS(t, "10.0.0.1", 65001)
	cs.setPeerAS(t, "10.0.0.2", 65002)
	cs.Sync()
	cs.addr = testenv.ServeGNMI(t, cs.Sub)
	return cs
}

func (cs *cacheServer) setPeerAS(t *testing.T, addr string, as uint64) {
	t.Helper()
	cs.Put(t, &gpb.Update{Path: change.NeighborPath("default", addr, "state", "peer-as"), Val: change.Uint(as)})
}

const peerASPath = "/network-instances/network-instance[name=*]/protocols/protocol[identifier=*][name=*]/bgp/neighbors/neighbor[neighbor-address=*]/state/peer-as"

// peerASes reads the neighbor address and peer-as of every update seen.
type peerASes struct {
	mu   sync.Mutex
	seen []map[string]uint64 // one map per notification
}

func (p *peerASes) fn(n *gpb.Notification) error {
	m := map[string]uint64{}
	for _, u := range n.GetUpdate() {
		for _, e := range u.GetPath().GetElem() {
			if a, ok := e.GetKey()["neighbor-address"]; ok {
				m[a] = u.GetVal().GetUintVal()
			}
		}
	}
	p.mu.Lock()
	p.seen = append(p.seen, m)
	p.mu.Unlock()
	return nil
}

func (p *peerASes) merged() map[string]uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]uint64{}
	for _, m := range p.seen {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// ONCE returns after the sync_response with every leaf; POLL fetches the
// state anew each poll; STREAM with a count stops after that many
// notifications.
func TestOneShotSubscribe(t *testing.T) {
	cs := startCacheServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("once", func(t *testing.T) {
		var got peerASes
		sub := &Subscription{Paths: []string{peerASPath}, Target: "dev1", Mode: "once", Encoding: "proto"}
		if err := Subscribe(ctx, &Target{Address: cs.addr, Insecure: ptr(true)}, sub, 0, 0, got.fn); err != nil {
			t.Fatal(err)
		}
		if m := got.merged(); m["10.0.0.1"] != 65001 || m["10.0.0.2"] != 65002 || len(m) != 2 {
			t.Errorf("once got %v, want both neighbors' peer-as", m)
		}
	})

	t.Run("poll", func(t *testing.T) {
		var got peerASes
		sub := &Subscription{Paths: []string{peerASPath}, Target: "dev1", Mode: "poll", Encoding: "proto"}
		fn := func(n *gpb.Notification) error {
			got.fn(n)
			got.mu.Lock()
			seen := len(got.seen)
			got.mu.Unlock()
			if seen == 2 {
				// After the first round: only a real poll sees this.
				cs.setPeerAS(t, "10.0.0.1", 65100)
			}
			return nil
		}
		start := time.Now()
		if err := Subscribe(ctx, &Target{Address: cs.addr, Insecure: ptr(true)}, sub, 3, 100*time.Millisecond, fn); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el < 200*time.Millisecond {
			t.Errorf("three polls 100ms apart took %v", el)
		}
		got.mu.Lock()
		n := len(got.seen)
		last := got.seen[n-2:]
		got.mu.Unlock()
		if n != 6 {
			t.Errorf("%d notifications, want 6 (two neighbors, three rounds)", n)
		}
		final := map[string]uint64{}
		for _, m := range last {
			for k, v := range m {
				final[k] = v
			}
		}
		if final["10.0.0.1"] != 65100 || final["10.0.0.2"] != 65002 {
			t.Errorf("last poll = %v, want 10.0.0.1's new peer-as 65100", final)
		}
	})

	t.Run("stream-count", func(t *testing.T) {
		var got peerASes
		sub := &Subscription{Paths: []string{peerASPath}, Target: "dev1", Mode: "stream", StreamMode: "on-change", Encoding: "proto"}
		done := make(chan error, 1)
		go func() { done <- Subscribe(ctx, &Target{Address: cs.addr, Insecure: ptr(true)}, sub, 3, 0, got.fn) }()
		// Two from the initial state; the third is a live change.
		waitFor(t, 5*time.Second, "initial state", func() bool { return len(got.merged()) == 2 })
		cs.setPeerAS(t, "10.0.0.2", 65200)
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("stream with count 3 did not return after a live change")
		}
		if m := got.merged(); m["10.0.0.2"] != 65200 {
			t.Errorf("stream got %v, want the live change", m)
		}
	})
}

// getServer answers Get with one notification per requested path, after
// checking credentials, and remembers the request.
type getServer struct {
	gpb.UnimplementedGNMIServer
	mu  sync.Mutex
	req *gpb.GetRequest
}

func (g *getServer) Get(ctx context.Context, req *gpb.GetRequest) (*gpb.GetResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if first(md["username"]) != "admin" || first(md["password"]) != "pw" {
		return nil, status.Error(codes.Unauthenticated, "bad username or password")
	}
	g.mu.Lock()
	g.req = req
	g.mu.Unlock()
	resp := &gpb.GetResponse{}
	for _, p := range req.GetPath() {
		resp.Notification = append(resp.Notification, &gpb.Notification{
			Timestamp: time.Now().UnixNano(),
			Update:    []*gpb.Update{{Path: p, Val: &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: []byte(`"ESTABLISHED"`)}}}},
		})
	}
	return resp, nil
}

func startGetServer(t *testing.T, opts ...grpc.ServerOption) (*getServer, string) {
	t.Helper()
	gs := &getServer{}
	g := grpc.NewServer(opts...)
	gpb.RegisterGNMIServer(g, gs)
	lis := listen(t)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return gs, lis.Addr().String()
}

func TestOneShotGet(t *testing.T) {
	pki := testenv.NewPKI(t)
	gs, addr := startGetServer(t, serverOpt(pki, false))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	path := "openconfig:/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=10.0.0.1]/state/session-state"
	resp, err := Get(ctx, &Target{Address: addr, TLSCA: pki.CAFile, Username: "admin", Password: "pw"}, []string{path}, "json_ietf")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetNotification()) != 1 || string(resp.GetNotification()[0].GetUpdate()[0].GetVal().GetJsonIetfVal()) != `"ESTABLISHED"` {
		t.Errorf("response = %v", resp)
	}
	gs.mu.Lock()
	req := gs.req
	gs.mu.Unlock()
	if req.GetEncoding() != gpb.Encoding_JSON_IETF || len(req.GetPath()) != 1 || req.GetPath()[0].GetOrigin() != "openconfig" {
		t.Errorf("request = %v, want JSON_IETF and the path with origin openconfig", req)
	}
	if got := change.PathKey(&gpb.Path{Elem: req.GetPath()[0].GetElem()}); got != change.PathKey(change.NeighborPath("default", "10.0.0.1", "state", "session-state")) {
		t.Errorf("requested path %s", got)
	}
	if _, err := Get(ctx, &Target{Address: addr, TLSCA: pki.CAFile, Username: "admin", Password: "no"}, []string{path}, "json_ietf"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("wrong password: err = %v, want Unauthenticated", err)
	}
	if _, err := Get(ctx, &Target{Address: addr, TLSCA: pki.CAFile}, []string{path}, "ascii"); err == nil {
		t.Error("encoding ascii accepted")
	}
}
