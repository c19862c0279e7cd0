package web

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshd/meshd/change"
)

// BenchmarkWrite is the page's share of a collector goroutine's batch:
// one notification of a router's neighbor (its UPDATE counter, which no
// column shows, and its prefixes received), from many routers at once.
func BenchmarkWrite(b *testing.B) {
	s := newState(time.Hour, 2000)
	const routers, nbrs = 1000, 10
	batches := make([][]change.Update, routers*nbrs)
	for r := range routers {
		for n := range nbrs {
			ni, addr := "default", fmt.Sprintf("10.%d.%d.%d", r/250, r%250, n+1)
			batches[r*nbrs+n] = []change.Update{
				{Router: fmt.Sprintf("r%d", r), Path: change.NeighborPath(ni, addr, "state", "messages", "received", "UPDATE"), Value: change.Uint(7), Source: change.SourceGNMI},
				{Router: fmt.Sprintf("r%d", r), Path: change.AfiSafiPath(ni, addr, "IPV4_UNICAST", "state", "prefixes", "received"), Value: change.Uint(100), Source: change.SourceGNMI},
				{Router: fmt.Sprintf("r%d", r), Path: change.NeighborPath(ni, addr, "state", "session-state"), Value: change.String("ESTABLISHED"), Source: change.SourceGNMI},
			}
		}
	}
	var i atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Write(batches[int(i.Add(1))%len(batches)], nil)
		}
	})
}
