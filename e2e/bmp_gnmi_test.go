package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshd/meshd/bmpbridge"
	"github.com/meshd/meshd/bmpbridge/bmpgen"
	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/merge"
	"github.com/meshd/meshd/sinks/gnmiserver"
)

// A router that speaks only BMP (no gNMI target configured for it) shows
// up in meshd's gNMI target as OpenConfig neighbor state: BMP messages on
// a real TCP session into the bridge, through the merge core and the
// re-serve sink, to a gNMI client, all on loopback as meshd wires them.
func TestBMPOnlyRouterOverGNMI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	core, err := merge.New(merge.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	sink, err := gnmiserver.New(gnmiserver.Config{Listen: "127.0.0.1:0"}, core, gnmiserver.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	sub := core.Subscribe("gnmi-server", 1024, merge.WithKeys())
	sinkDone := make(chan error, 1)
	go func() { sinkDone <- sink.Run(ctx, sub) }()
	br, err := bmpbridge.New(core, bmpbridge.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = br.Serve(ctx, ln) }()
	t.Cleanup(func() {
		_ = br.Close()
		cancel()
		if err := <-sinkDone; err != nil {
			t.Errorf("sink: %v", err)
		}
		sub.Close()
	})
	for deadline := time.Now().Add(5 * time.Second); sink.Addr() == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("gNMI sink not listening after 5s")
		}
	}
	cc, err := grpc.NewClient(sink.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := gpb.NewGNMIClient(cc)

	// The client subscribes before the router connects: the router's
	// target appears for a "*" subscription.
	st, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	statePath, err := change.ParsePath("/network-instances/network-instance/protocols/protocol/bgp/neighbors/neighbor/state/session-state")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: &gpb.SubscriptionList{
		Prefix: &gpb.Path{Target: "*"}, Mode: gpb.SubscriptionList_STREAM, Encoding: gpb.Encoding_PROTO,
		Subscription: []*gpb.Subscription{{Path: statePath, Mode: gpb.SubscriptionMode_ON_CHANGE}},
	}}}); err != nil {
		t.Fatal(err)
	}
	updates := make(chan *gpb.Notification, 64)
	go func() {
		defer close(updates)
		for {
			resp, err := st.Recv()
			if err != nil {
				return
			}
			if n := resp.GetUpdate(); n != nil {
				updates <- n
			}
		}
	}()
	awaitState := func(want string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case n, ok := <-updates:
				if !ok {
					t.Fatalf("subscription ended before session-state %s", want)
				}
				for _, u := range n.GetUpdate() {
					if n.GetPrefix().GetTarget() == "edge9" && u.GetVal().GetStringVal() == want {
						return
					}
				}
			case <-timeout:
				t.Fatalf("no session-state %s for edge9 within 10s", want)
			}
		}
	}

	peer := &bmpgen.Peer{Addr: netip.MustParseAddr("192.0.2.2"), AS: 42009012, BGPID: netip.MustParseAddr("10.255.0.2"), Time: time.Unix(1_700_000_000, 0)}
	fams := []uint32{1<<8 | 1}
	sent := bmpgen.Open{AS: 65001, HoldTime: 90, ID: netip.MustParseAddr("10.255.0.1"), Families: fams, FourOctet: true}
	recv := bmpgen.Open{AS: 42009012, HoldTime: 30, ID: peer.BGPID, Families: fams, FourOctet: true}
	stream := bmpgen.AppendInitiation(nil, "edge9", "BMP only")
	stream = bmpgen.AppendPeerUp(stream, peer, netip.MustParseAddr("192.0.2.1"), 179, 50000, sent, recv, "")
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(stream); err != nil {
		t.Fatal(err)
	}
	awaitState("ESTABLISHED")

	// Get: the neighbor's OpenConfig state as JSON_IETF, typed by the
	// schema, from what the Peer Up said.
	nbrPath, err := change.ParsePath("/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=192.0.2.2]/state")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(ctx, &gpb.GetRequest{Prefix: &gpb.Path{Target: "edge9"}, Path: []*gpb.Path{nbrPath}, Encoding: gpb.Encoding_JSON_IETF, Type: gpb.GetRequest_STATE})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	var state map[string]any
	if err := json.Unmarshal(resp.GetNotification()[0].GetUpdate()[0].GetVal().GetJsonIetfVal(), &state); err != nil {
		t.Fatal(err)
	}
	// A top-level object's members are qualified with their module (RFC
	// 7951 §4).
	const ni = "openconfig-network-instance:"
	for k, want := range map[string]any{ni + "session-state": "ESTABLISHED", ni + "peer-as": float64(42009012), ni + "local-as": float64(65001)} {
		if state[k] != want {
			t.Errorf("state %s = %v, want %v (state %v)", k, state[k], want, state)
		}
	}

	// A Peer Down reaches the subscriber as the neighbor's new state.
	if _, err := conn.Write(bmpgen.AppendPeerDown(nil, peer, 3, 6, 2, nil, 0)); err != nil {
		t.Fatal(err)
	}
	awaitState("IDLE")
}
