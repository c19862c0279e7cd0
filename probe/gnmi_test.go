package probe

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/gnmitarget"
	"github.com/meshd/meshd/probe/capture"
	mygot "github.com/meshd/meshd/ygot"
)

// TestServeOverGNMI wires the probe to a gnmitarget server as cmd/meshd
// does and reads its leaves back with Get and Subscribe.
func TestServeOverGNMI(t *testing.T) {
	srv, err := gnmitarget.New(gnmitarget.WithModels(mygot.ΓModelData...), gnmitarget.WithMinSampleInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	publish := func(chs []change.Change) {
		ups := make([]change.Update, len(chs))
		for i, c := range chs {
			ups[i] = change.Update{Router: c.Router, Path: c.Path, Key: change.PathKey(c.Path), Value: c.Value, Time: c.Time, Source: c.Source}
		}
		srv.Update("r1", ups)
	}
	fx := fixtures[0]
	a := New(Config{Router: "r1", LocalAddrs: []netip.Addr{fx.a.Addr()}, Publish: publish}, false)
	r, err := capture.OpenFile(filepath.Join("testdata", fx.file))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The first half of the capture before anyone subscribes.
	var frames []capture.Frame
	for {
		f, err := r.Next()
		if err != nil {
			break
		}
		f.Data = append([]byte(nil), f.Data...)
		frames = append(frames, f)
	}
	half := len(frames) / 2
	for i := 0; i < half; i++ {
		a.Handle(&frames[i])
	}

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cl := gpb.NewGNMIClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	caps, err := cl.Capabilities(ctx, &gpb.CapabilityRequest{})
	if err != nil || len(caps.GetSupportedModels()) == 0 {
		t.Fatalf("Capabilities: %v %v", caps, err)
	}
	leaf := func(name string) *gpb.Path {
		return change.MeshdNeighborPath("default", fx.b.Addr().String(), "probe", "state", name)
	}
	get, err := cl.Get(ctx, &gpb.GetRequest{Prefix: &gpb.Path{Target: "r1"}, Path: []*gpb.Path{leaf("samples")}, Encoding: gpb.Encoding_PROTO})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	n := get.GetNotification()
	if len(n) == 0 || len(n[0].GetUpdate()) == 0 || n[0].GetUpdate()[0].GetVal().GetUintVal() == 0 {
		t.Fatalf("Get samples: %v", get)
	}
	before := n[0].GetUpdate()[0].GetVal().GetUintVal()

	for _, mode := range []gpb.SubscriptionMode{gpb.SubscriptionMode_ON_CHANGE, gpb.SubscriptionMode_SAMPLE} {
		sctx, scancel := context.WithCancel(ctx)
		sub, err := cl.Subscribe(sctx)
		if err != nil {
			t.Fatal(err)
		}
		err = sub.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: &gpb.SubscriptionList{
			Prefix: &gpb.Path{Target: "r1"}, Mode: gpb.SubscriptionList_STREAM, Encoding: gpb.Encoding_PROTO,
			Subscription: []*gpb.Subscription{{Path: leaf("rtt-last"), Mode: mode, SampleInterval: uint64(100 * time.Millisecond)}},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		// Initial value, sync, then what the second half of the capture adds.
		var synced bool
		var values []int64
		feed := func() {
			for i := half; i < len(frames); i++ {
				a.Handle(&frames[i])
			}
		}
		for i := 0; i < 50 && len(values) < 2; i++ {
			resp, err := sub.Recv()
			if err != nil {
				t.Fatalf("%v: Recv: %v", mode, err)
			}
			if resp.GetSyncResponse() {
				synced = true
				if mode == gpb.SubscriptionMode_ON_CHANGE {
					feed()
				}
				continue
			}
			for _, u := range resp.GetUpdate().GetUpdate() {
				values = append(values, u.GetVal().GetDecimalVal().GetDigits())
			}
		}
		scancel()
		if !synced || len(values) < 1 {
			t.Fatalf("%v: synced %v values %v", mode, synced, values)
		}
		t.Logf("%v: rtt-last values (µs×1000) %v", mode, values)
	}
	get, err = cl.Get(ctx, &gpb.GetRequest{Prefix: &gpb.Path{Target: "r1"}, Path: []*gpb.Path{leaf("samples")}, Encoding: gpb.Encoding_PROTO})
	if err != nil {
		t.Fatal(err)
	}
	if after := get.GetNotification()[0].GetUpdate()[0].GetVal().GetUintVal(); after != 10 || after <= before {
		t.Fatalf("samples before %d after %d, want 10 at the end", before, after)
	}
}
