package influx

import (
	"fmt"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
)

// BenchmarkMapBatch maps batches shaped like a busy fleet's (gnmisim's
// step: a neighbor's UPDATE counter and two prefix counts, one batch a
// notification) over 10,000 neighbors, into line protocol: the sink's
// cost per leaf update on the consumer goroutine.
func BenchmarkMapBatch(b *testing.B) {
	const nbrs = 10000
	m := newMapper()
	now := time.Unix(1700000000, 0)
	batches := make([]change.Batch, nbrs)
	for i := range batches {
		addr := fmt.Sprintf("10.%d.%d.1", i/250, i%250)
		afi := func(leaf string) *gpb.Path {
			return change.AfiSafiPath("default", addr, "IPV4_UNICAST", "state", "prefixes", leaf)
		}
		batches[i].Updates = []change.Update{
			{Router: fmt.Sprintf("sim-%04d", i/100), Path: change.NeighborPath("default", addr, "state", "messages", "received", "UPDATE"), Value: change.Uint(1), Time: now},
			{Router: fmt.Sprintf("sim-%04d", i/100), Path: afi("received"), Value: change.Uint(2), Time: now},
			{Router: fmt.Sprintf("sim-%04d", i/100), Path: afi("installed"), Value: change.Uint(2), Time: now},
		}
		peer := change.Update{Router: batches[i].Updates[0].Router, Path: change.NeighborPath("default", addr, "state", "peer-as"), Value: change.Uint(65001), Time: now}
		m.batch(nil, &change.Batch{Updates: []change.Update{peer}}, now)
	}
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		bt := &batches[i%nbrs]
		for j := range bt.Updates {
			bt.Updates[j].Time = now.Add(time.Duration(i) * time.Millisecond)
		}
		buf, _ = m.batch(buf[:0], bt, now)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(3*b.N), "ns/update")
}
