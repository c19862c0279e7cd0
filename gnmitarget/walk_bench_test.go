package gnmitarget

import (
	"context"
	"fmt"
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// discard is a Subscribe stream that marshals what is sent and drops it.
type discard struct {
	grpc.ServerStream
	bytes int
}

func (d *discard) Send(r *gpb.SubscribeResponse) error {
	b, err := proto.Marshal(r)
	d.bytes += len(b)
	return err
}
func (d *discard) SendMsg(m any) error {
	if p, ok := m.(*preEncoded); ok {
		d.bytes += len(p.b)
		return nil
	}
	return d.Send(m.(*gpb.SubscribeResponse))
}
func (d *discard) Recv() (*gpb.SubscribeRequest, error) { return nil, nil }
func (d *discard) Context() context.Context             { return context.Background() }

// BenchmarkInitialSync measures the server side of a whole-tree sync of
// 20 routers × 50 neighbors × 4 leaves.
func BenchmarkInitialSync(b *testing.B) {
	s, err := New()
	if err != nil {
		b.Fatal(err)
	}
	for r := 0; r < 20; r++ {
		for i := 0; i < 50; i++ {
			s.Update(fmt.Sprintf("r%d", r), nbr("default", fmt.Sprintf("10.0.%d.%d", r, i), "ESTABLISHED", 1))
		}
	}
	sub, err := s.newSubscription(streamList("*", gpb.SubscriptionMode_ON_CHANGE, "/"))
	if err != nil {
		b.Fatal(err)
	}
	d := &discard{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.sendWalk(d, sub, sub.paths, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/4000, "ns/leaf")
	b.ReportMetric(float64(d.bytes)/float64(b.N)/4000, "bytes/leaf")
}
