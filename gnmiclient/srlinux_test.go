package gnmiclient

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ondatra/gnmi/oc"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
	mygot "github.com/meshd/meshd/ygot"
)

// An SR Linux target with OpenConfig off, subscribed with the built-in
// srl-bgp-neighbors subscription, replays its recorded stream over gRPC:
// the native leaves fill the OpenConfig neighbor, the withdrawn neighbor
// goes, and the leaves OpenConfig has no place for are counted by path.
func TestSRLinuxTarget(t *testing.T) {
	rec := testenv.ReadRecording(t, filepath.Join("translate", "testdata", "srlinux", "neighbors.textproto"))
	var replayed = make(chan struct{})
	f := startFake(t, func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
		for _, r := range rec {
			if err := send(r); err != nil {
				return err
			}
		}
		close(replayed)
		<-ctx.Done()
		return nil
	})
	core := newCore(t)
	c, _ := runClient(t, Config{Targets: map[string]*Target{
		"srl1": fast(&Target{Address: f.addr, Subscriptions: []string{"srl-bgp-neighbors"}}),
	}}, core)
	select {
	case <-replayed:
	case <-time.After(10 * time.Second):
		t.Fatal("recording not replayed")
	}
	want := uint64(0)
	for _, r := range rec {
		if r.GetUpdate() != nil {
			want++
		}
	}
	waitFor(t, 5*time.Second, "every notification handled", func() bool {
		st := statusOf(c, "srl1")
		return st.State == StateSynced && st.Notifications == want
	})
	// What the built-in subscription asks an SR Linux box for.
	f.mu.Lock()
	l := f.reqs[0].GetSubscribe()
	f.mu.Unlock()
	if len(l.GetSubscription()) != 1 || l.GetSubscription()[0].GetMode() != gpb.SubscriptionMode_ON_CHANGE || l.GetEncoding() != gpb.Encoding_JSON_IETF {
		t.Errorf("request = %v", l)
	}
	if got := change.PathKey(l.GetSubscription()[0].GetPath()); got != "/network-instance[name=*]/protocols/bgp/neighbor[peer-address=*]" {
		t.Errorf("subscribed path %s", got)
	}
	core.View("srl1", func(r *oc.Root, _ *mygot.Root) {
		bgp := r.GetNetworkInstance("default").GetProtocol(oc.PolicyTypes_INSTALL_PROTOCOL_TYPE_BGP, "BGP").GetBgp()
		n := bgp.GetNeighbor("10.0.0.2")
		if n.GetSessionState() != oc.Bgp_Neighbor_SessionState_ESTABLISHED || n.GetPeerAs() != 65002 || n.GetLocalAs() != 65001 {
			t.Errorf("10.0.0.2: state %v peer-as %d local-as %d", n.GetSessionState(), n.GetPeerAs(), n.GetLocalAs())
		}
		if got := n.GetMessages().GetReceived().GetUPDATE(); got != 45 {
			t.Errorf("10.0.0.2 UPDATEs received = %d, want 45", got)
		}
		if got := n.GetAfiSafi(oc.BgpTypes_AFI_SAFI_TYPE_IPV4_UNICAST).GetPrefixes().GetReceived(); got != 121 {
			t.Errorf("10.0.0.2 ipv4 prefixes received = %d, want 121", got)
		}
		if got := n.GetTimers().GetNegotiatedHoldTime(); got != 90 {
			t.Errorf("negotiated-hold-time = %d", got)
		}
		if v6 := bgp.GetNeighbor("2001:db8::3"); v6.GetSessionState() != oc.Bgp_Neighbor_SessionState_ACTIVE {
			t.Errorf("2001:db8::3 state %v", v6.GetSessionState())
		}
		red := r.GetNetworkInstance("red").GetProtocol(oc.PolicyTypes_INSTALL_PROTOCOL_TYPE_BGP, "BGP").GetBgp()
		if gone := red.GetNeighbor("192.0.2.9"); gone != nil {
			t.Errorf("withdrawn neighbor 192.0.2.9 still in the tree")
		}
	})
	if got := testutil.ToFloat64(c.m.unknown.WithLabelValues("srl1", "/network-instance/protocols/bgp/neighbor/peer-router-id")); got != 1 {
		t.Errorf("unknown peer-router-id = %v, want 1", got)
	}
	if st := statusOf(c, "srl1"); st.Invalid != 0 || st.Failures != 0 {
		t.Errorf("status = %+v", st)
	}
}
