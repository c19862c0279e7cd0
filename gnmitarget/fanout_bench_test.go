package gnmitarget

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
)

// BenchmarkFanout measures the server's cost of delivering one changed
// leaf to one subscriber: 100 whole-tree subscribers, writes of 5 counter
// changes on random neighbors of 200 routers (the bench/gnmiserver load),
// each subscriber draining its queue and marshalling what it sends. The
// gRPC transport is left out. "shared" sends each notification in the
// bytes encoded once for all; "built" builds and marshals it per
// subscriber.
func BenchmarkFanout(b *testing.B) {
	for _, mode := range []string{"shared", "built"} {
		b.Run(mode, func(b *testing.B) {
			const routers, neighbors, nsubs, perWrite = 200, 100, 100, 5
			s, err := New()
			if err != nil {
				b.Fatal(err)
			}
			s.noShare = mode == "built"
			path := func(r, n int) (string, *gpb.Path) {
				return fmt.Sprintf("router%03d", r), change.NeighborPath("default", fmt.Sprintf("10.0.%d.%d", n/256, n%256), "state", "messages", "received", "UPDATE")
			}
			for r := 0; r < routers; r++ {
				var ups []change.Update
				for n := 0; n < neighbors; n++ {
					name, p := path(r, n)
					ups = append(ups, change.Update{Router: name, Path: p, Value: change.Uint(0), Time: t0})
				}
				s.UpdateMany(ups)
			}
			var subs []*subscription
			for i := 0; i < nsubs; i++ {
				sub, err := s.newSubscription(streamList("*", gpb.SubscriptionMode_ON_CHANGE, "/"))
				if err != nil {
					b.Fatal(err)
				}
				s.register(sub)
				subs = append(subs, sub)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			d := &discard{}
			var buf []qent
			delivered := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ups := make([]change.Update, perWrite)
				at := t0.Add(time.Duration(i+1) * time.Millisecond)
				for k := range ups {
					name, p := path(rng.IntN(routers), rng.IntN(neighbors))
					ups[k] = change.Update{Router: name, Path: p, Value: change.Uint(uint64(i + 1)), Time: at}
				}
				s.UpdateMany(ups)
				for _, sub := range subs {
					buf, _, _ = sub.q.drain(buf)
					delivered += len(buf)
					if err := s.sendEntries(d, sub, buf); err != nil {
						b.Fatal(err)
					}
					clear(buf)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(delivered), "ns/leaf-delivered")
			b.ReportMetric(float64(d.bytes)/float64(delivered), "wire-bytes/leaf")
		})
	}
}
