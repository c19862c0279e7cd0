package gnmiclient

import (
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ondatra/gnmi/oc"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
	mygot "github.com/meshd/meshd/ygot"
)

// The built-in bgp-neighbors subscription, used as it is (only the
// server's target name added), brings in the neighbor's state, messages,
// timers and afi-safi prefixes from a server built on openconfig/gnmi's
// cache, and nothing from outside that subtree.
func TestDefaultSubscriptionAgainstCache(t *testing.T) {
	tg := testenv.NewCacheTarget(t, "dev1")
	afi := func(leaf ...string) *gpb.Path {
		return change.AfiSafiPath("red", "10.0.0.9", "IPV6_UNICAST", leaf...)
	}
	leaves := []*gpb.Update{
		{Path: change.NeighborPath("red", "10.0.0.9", "state", "session-state"), Val: change.String("ESTABLISHED")},
		{Path: change.NeighborPath("red", "10.0.0.9", "state", "messages", "received", "UPDATE"), Val: change.Uint(12)},
		{Path: change.NeighborPath("red", "10.0.0.9", "timers", "state", "negotiated-hold-time"), Val: change.Uint(90)},
		{Path: afi("state", "prefixes", "received"), Val: change.Uint(33)},
		// Outside the subscription: config, and afi-safi state beyond prefixes.
		{Path: change.NeighborPath("red", "10.0.0.9", "config", "peer-as"), Val: change.Uint(64999)},
		{Path: afi("state", "active"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_BoolVal{BoolVal: true}}},
	}
	tg.Put(t, leaves...)
	tg.Sync()
	addr := testenv.ServeGNMI(t, tg.Sub)

	sub := BuiltinSubscriptions()["bgp-neighbors"]
	sub.Target = "dev1"
	sub.Encoding = "proto" // the cache holds typed values; it does not render JSON
	core := newCore(t)
	c, _ := runClient(t, Config{
		Targets:       map[string]*Target{"dev1": fast(&Target{Address: addr, Subscriptions: []string{"bgp"}})},
		Subscriptions: map[string]*Subscription{"bgp": sub},
	}, core)
	waitFor(t, 5*time.Second, "synced", func() bool { return statusOf(c, "dev1").State == StateSynced })
	core.View("dev1", func(r *oc.Root, _ *mygot.Root) {
		n := r.GetNetworkInstance("red").GetProtocol(oc.PolicyTypes_INSTALL_PROTOCOL_TYPE_BGP, "BGP").GetBgp().GetNeighbor("10.0.0.9")
		if n.GetSessionState() != oc.Bgp_Neighbor_SessionState_ESTABLISHED {
			t.Errorf("session-state = %v", n.GetSessionState())
		}
		if got := n.GetMessages().GetReceived().GetUPDATE(); got != 12 {
			t.Errorf("messages received UPDATE = %d", got)
		}
		if got := n.GetTimers().GetNegotiatedHoldTime(); got != 90 {
			t.Errorf("negotiated-hold-time = %d", got)
		}
		a := n.GetAfiSafi(oc.BgpTypes_AFI_SAFI_TYPE_IPV6_UNICAST)
		if got := a.GetPrefixes().GetReceived(); got != 33 {
			t.Errorf("prefixes received = %d", got)
		}
		if a.Active != nil {
			t.Errorf("afi-safi state/active came in; the default subscribes to prefixes only")
		}
	})
	if _, _, _, ok := core.Leaf("dev1", change.NeighborPath("red", "10.0.0.9", "config", "peer-as")); ok {
		t.Errorf("config/peer-as came in; the default subscribes to state only")
	}
	if st := statusOf(c, "dev1"); st.Leaves != 4 || st.Unknown != 0 || st.Invalid != 0 {
		t.Errorf("status = %+v, want exactly the 4 subscribed leaves", st)
	}
}
