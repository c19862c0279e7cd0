package gnmitarget

import (
	"fmt"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
)

// An ON_CHANGE stream on a list's key leaf gets the key leaf of an entry
// created after its sync, and its delete when the entry goes (whether the
// entry is deleted whole or loses its last leaf); a stream on the entries
// other leaves gets no key leaf. This is how a client learns of new BGP
// neighbors from neighbor/neighbor-address.
func TestStreamKeyLeafOnChange(t *testing.T) {
	s, addr := startServer(t)
	s.Update("r1", nbr("default", "192.0.2.1", "ESTABLISHED", 10))
	c := dial(t, addr)
	const nbrs = "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor"
	key := func(a string) string {
		return "r1|" + pathString(mustPath(t, nbrs+"[neighbor-address="+a+"]/neighbor-address").GetElem())
	}

	keys := subscribe(t, c, streamList("r1", gpb.SubscriptionMode_ON_CHANGE, nbrs+"/neighbor-address"))
	wide := subscribe(t, c, streamList("r1", gpb.SubscriptionMode_ON_CHANGE, nbrs))
	got := keys.untilSync(t, 5*time.Second)
	if want := fmt.Sprint(map[string]string{key("192.0.2.1"): "192.0.2.1"}); fmt.Sprint(got.vals) != want {
		t.Fatalf("initial key leaves %v, want %s", got.vals, want)
	}
	wide.untilSync(t, 5*time.Second)

	s.Update("r1", nbr("default", "192.0.2.2", "ACTIVE", 0))
	n := keys.next(t, 5*time.Second).GetUpdate()
	got.add(n)
	if got.vals[key("192.0.2.2")] != "192.0.2.2" || n.GetTimestamp() != t0.UnixNano() {
		t.Errorf("after a new neighbor: key leaves %v, notification %v; want 192.0.2.2's, stamped with its first leaf's time", got.vals, n)
	}
	// The stream on the whole neighbors gets the new neighbor's leaves and no key leaf.
	for end := time.After(300 * time.Millisecond); ; {
		var resp *gpb.SubscribeResponse
		select {
		case resp = <-wide.ch:
		case <-end:
		}
		if resp == nil {
			break
		}
		for _, u := range resp.GetUpdate().GetUpdate() {
			if el := u.GetPath().GetElem(); el[len(el)-1].GetName() == "neighbor-address" {
				t.Errorf("the stream on %s got a key leaf: %v", nbrs, u)
			}
		}
	}

	// The whole entry deleted, then an entry losing its last leaf.
	s.Update("r1", []change.Update{{Path: change.NeighborPath("default", "192.0.2.2"), Time: t0.Add(time.Hour)}})
	got.add(keys.next(t, 5*time.Second).GetUpdate())
	s.Update("r1", nbr("default", "192.0.2.3", "ACTIVE", 0)[:1])
	got.add(keys.next(t, 5*time.Second).GetUpdate())
	s.Update("r1", []change.Update{{Path: change.NeighborPath("default", "192.0.2.3", "state", "session-state"), Time: t0.Add(time.Hour)}})
	got.add(keys.next(t, 5*time.Second).GetUpdate())
	if want := fmt.Sprint(map[string]string{key("192.0.2.1"): "192.0.2.1"}); fmt.Sprint(got.vals) != want {
		t.Errorf("after the deletes: key leaves %v, want %s (deletes %v)", got.vals, want, got.deletes)
	}
	keys.quiet(t, 200*time.Millisecond)
}
