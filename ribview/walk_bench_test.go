package ribview

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
)

// BenchmarkWalk is a ONCE of one router's table, the leaves built and
// not sent (gnmitarget's BenchmarkSubtreeEncode marshals them), per
// route. For profiling the walk only; the figure is bench-rib's.
func BenchmarkWalk(b *testing.B) {
	const n = 20000
	h := NewHub(nil)
	h.SetSource(batchSource(benchTable(n)))
	pats := [][]*gpb.PathElem{parse(rib)}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		err := h.Walk(context.Background(), all, pats, false, func(*gpb.Notification) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/route")
}

// batchSource hands out one router's routes 512 at a time, as the bridge
// does.
type batchSource []Route

func (batchSource) RIBRouters() []string { return []string{"r1"} }

func (s batchSource) WalkRIB(_ string, _ *Select, fn func([]Route) error) error {
	for rest := []Route(s); len(rest) > 0; {
		n := min(len(rest), 512)
		if err := fn(rest[:n]); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return nil
}

// benchTable is n routes of one neighbor's Adj-RIB-In, a set for every
// three routes.
func benchTable(n int) []Route {
	routes := make([]Route, n)
	sets := make([]*Attrs, max(n/3, 1))
	for i := range sets {
		sets[i] = &Attrs{Index: uint64(i + 1), Origin: "IGP", ASPath: fmt.Sprintf("65001 %d", 64512+i%1000), NextHop: "192.0.2.2", Communities: []string{"65001:1"}}
	}
	for i := range routes {
		routes[i] = Route{NI: "default", Neighbor: "192.0.2.2", View: AdjInPre,
			Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32), Attrs: sets[i%len(sets)]}
	}
	return routes
}
