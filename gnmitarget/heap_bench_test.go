package gnmitarget

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/meshd/meshd/change"
)

// fleetNeighbor is one OpenConfig BGP neighbor as a router streams it: its
// state, timers and two address families' prefix counters (24 leaves).
func fleetNeighbor(addr string) []change.Update {
	st := []string{"session-state", "peer-as", "local-as", "peer-type", "last-established",
		"established-transitions", "supported-capabilities", "description", "enabled", "neighbor-address"}
	var ups []change.Update
	for i, f := range st {
		ups = append(ups, change.Update{Path: change.NeighborPath("default", addr, "state", f), Value: change.Uint(uint64(i)), Time: t0})
	}
	for _, f := range []string{"hold-time", "keepalive-interval", "negotiated-hold-time"} {
		ups = append(ups, change.Update{Path: change.NeighborPath("default", addr, "timers", "state", f), Value: change.Uint(90), Time: t0})
	}
	for _, m := range []string{"UPDATE", "NOTIFICATION"} {
		ups = append(ups, change.Update{Path: change.NeighborPath("default", addr, "state", "messages", "received", m), Value: change.Uint(7), Time: t0})
	}
	for _, afi := range []string{"IPV4_UNICAST", "IPV6_UNICAST"} {
		for _, f := range []string{"received", "sent", "installed", "received-pre-policy"} {
			p := change.NeighborPath("default", addr, "afi-safis", "afi-safi", "state", "prefixes", f)
			p.Elem[len(p.Elem)-5].Key = map[string]string{"afi-safi-name": afi}
			ups = append(ups, change.Update{Path: p, Value: change.Uint(100), Time: t0})
		}
		p := change.NeighborPath("default", addr, "afi-safis", "afi-safi", "state", "active")
		p.Elem[len(p.Elem)-3].Key = map[string]string{"afi-safi-name": afi}
		ups = append(ups, change.Update{Path: p, Value: change.Bool(true), Time: t0})
	}
	return ups
}

// BenchmarkStoreHeap reports the live heap a target's tree holds per leaf,
// on 50 routers × 100 neighbors shaped as a fleet streams them: the
// store's share of the whole binary's memory at 1,000 routers.
func BenchmarkStoreHeap(b *testing.B) {
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s, err := New()
		if err != nil {
			b.Fatal(err)
		}
		leaves := 0
		for r := 0; r < 50; r++ {
			for n := 0; n < 100; n++ {
				ups := fleetNeighbor(fmt.Sprintf("10.%d.%d.1", r, n))
				leaves += len(ups)
				s.Update(fmt.Sprintf("r%d", r), ups)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(leaves), "heap-B/leaf")
		runtime.KeepAlive(s)
	}
}
