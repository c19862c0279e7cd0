package merge

import (
	"testing"
	"time"

	"github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/change"
)

// TestWalkRouter: a walk hands out every leaf Snapshot does, with the
// same key (prefix+rest), value, time and source.
func TestWalkRouter(t *testing.T) {
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1700000000, 0)
	nb := func(elems ...string) *gnmi.Path { return change.NeighborPath("default", "192.0.2.1", elems...) }
	res := c.Apply([]change.Change{
		{Router: "r1", Path: nb("state", "peer-as"), Value: change.Uint(65001), Time: at, Source: change.SourceGNMI},
		{Router: "r1", Path: nb("state", "session-state"), Value: change.String("ESTABLISHED"), Time: at, Source: change.SourceGNMI},
		{Router: "r1", Path: nb("state", "enabled"), Value: change.Bool(true), Time: at, Source: change.SourceBMP},
		{Router: "r1", Path: nb("state", "supported-capabilities"), Value: change.StringList([]string{"MPBGP", "ROUTE_REFRESH"}), Time: at, Source: change.SourceGNMI},
		{Router: "r1", Path: change.AfiSafiPath("default", "192.0.2.1", "IPV4_UNICAST", "state", "prefixes", "received"), Value: change.Uint(7), Time: at, Source: change.SourceGNMI},
		{Router: "r1", Path: change.MeshdNeighborPath("default", "192.0.2.1", "probe", "state", "rtt-last"), Value: change.Decimal(1.5, 3), Time: at, Source: change.SourceProbe},
		{Router: "r2", Path: nb("state", "peer-as"), Value: change.Uint(65002), Time: at, Source: change.SourceGNMI},
	})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	for _, r := range []string{"r1", "r2"} {
		want := map[string]change.Update{}
		for _, u := range c.Snapshot(r) {
			want[u.Key] = u
		}
		n := 0
		ok := c.WalkRouter(r, func(prefix, rest string, v *gnmi.TypedValue, ts time.Time, src change.Source) {
			n++
			u, found := want[prefix+rest]
			if !found || !proto.Equal(v, u.Value) || !ts.Equal(u.Time) || src != u.Source {
				t.Errorf("%s: walk gave %s%s = %v at %v from %v; Snapshot %+v", r, prefix, rest, v, ts, src, u)
			}
		})
		if !ok || n != len(want) || n == 0 {
			t.Errorf("%s: walk ok %v, %d leaves; Snapshot %d", r, ok, n, len(want))
		}
	}
	if c.WalkRouter("nobody", func(string, string, *gnmi.TypedValue, time.Time, change.Source) { t.Error("called") }) {
		t.Error("walk of a router not held reported true")
	}
}
