package gnmitarget

import (
	"context"
	"fmt"
	"net"
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// BenchmarkStreamGRPC measures a subscriber's stream through gRPC on
// loopback, transport and client decoding included: each op is one
// change to each of 100 neighbors (one notification each, 100 messages)
// reaching a STREAM subscriber. What it is for: gRPC's per-message costs
// (a stats handler, a size check) that BenchmarkFanout leaves out.
func BenchmarkStreamGRPC(b *testing.B) {
	s, err := New()
	if err != nil {
		b.Fatal(err)
	}
	const n = 100
	for i := range n {
		s.Update("r1", nbr("default", fmt.Sprintf("10.0.0.%d", i), "ESTABLISHED", 0))
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	b.Cleanup(s.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	c := gpb.NewGNMIClient(cc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := c.Subscribe(ctx)
	if err != nil {
		b.Fatal(err)
	}
	sl := streamList("r1", gpb.SubscriptionMode_ON_CHANGE, "/")
	sl.UpdatesOnly = true
	if err := st.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: sl}}); err != nil {
		b.Fatal(err)
	}
	if r, err := st.Recv(); err != nil || !r.GetSyncResponse() {
		b.Fatalf("sync: %v %v", r, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for op := range b.N {
		for i := range n {
			s.Update("r1", nbr("default", fmt.Sprintf("10.0.0.%d", i), "ESTABLISHED", uint64(op+1))[2:3])
		}
		for got := 0; got < n; {
			r, err := st.Recv()
			if err != nil {
				b.Fatal(err)
			}
			got += len(r.GetUpdate().GetUpdate())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/update")
}
