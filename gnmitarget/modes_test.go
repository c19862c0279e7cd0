package gnmitarget

import (
	"context"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/change"
)

// The version Capabilities reports is the one the gNMI protobuf package
// meshd is built with declares, so an upgrade of it cannot leave the
// answer behind.
func TestCapabilitiesVersion(t *testing.T) {
	_, addr := startServer(t)
	resp, err := dial(t, addr).Capabilities(context.Background(), &gpb.CapabilityRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := proto.GetExtension(gpb.File_github_com_openconfig_gnmi_proto_gnmi_gnmi_proto.Options(), gpb.E_GnmiService).(string)
	if want == "" || resp.GetGNMIVersion() != want {
		t.Errorf("gNMI version %q, the protobuf package declares %q", resp.GetGNMIVersion(), want)
	}
}

// updates_only: ONCE sends its sync_response and nothing else; POLL skips
// the first state but answers every poll with the current one.
func TestUpdatesOnlyOnceAndPoll(t *testing.T) {
	s, addr := startServer(t)
	s.Update("r1", nbr("default", "192.0.2.1", "ESTABLISHED", 10))
	c := dial(t, addr)
	state := "/network-instances/network-instance/protocols/protocol/bgp/neighbors/neighbor/state/session-state"
	for _, mode := range []gpb.SubscriptionList_Mode{gpb.SubscriptionList_ONCE, gpb.SubscriptionList_POLL} {
		sl := streamList("*", gpb.SubscriptionMode_TARGET_DEFINED, state)
		sl.Mode, sl.UpdatesOnly = mode, true
		r := subscribe(t, c, sl)
		if got := r.untilSync(t, 5*time.Second); len(got.vals) != 0 || len(got.deletes) != 0 {
			t.Fatalf("%v updates_only: %v before sync_response, want nothing", mode, got.keys())
		}
		if mode == gpb.SubscriptionList_ONCE {
			select {
			case resp, ok := <-r.ch:
				if ok {
					t.Errorf("ONCE updates_only sent %v after sync_response", resp)
				}
			case <-time.After(5 * time.Second):
				t.Error("ONCE updates_only stream not closed after sync_response")
			}
			continue
		}
		r.quiet(t, 200*time.Millisecond)
		if err := r.stream.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Poll{Poll: &gpb.Poll{}}}); err != nil {
			t.Fatal(err)
		}
		got := r.untilSync(t, 5*time.Second)
		if k := nkey("r1", "default", "192.0.2.1", "state", "session-state"); got.vals[k] != "ESTABLISHED" || len(got.vals) != 1 {
			t.Errorf("POLL updates_only, first poll: %v, want %s = ESTABLISHED", got.vals, k)
		}
	}
}

// A subscription may name a router meshd does not hold yet (one about to
// connect): it syncs empty, then gets that router's leaves when they come,
// and nothing of any other router.
func TestSubscribeRouterBeforeItExists(t *testing.T) {
	s, addr := startServer(t)
	s.Update("r1", nbr("default", "192.0.2.1", "ESTABLISHED", 10))
	c := dial(t, addr)
	r := subscribe(t, c, streamList("r5", gpb.SubscriptionMode_ON_CHANGE, "/network-instances/network-instance/protocols/protocol/bgp/neighbors/neighbor/state"))
	if got := r.untilSync(t, 5*time.Second); len(got.vals) != 0 {
		t.Fatalf("sync for an absent router: %v", got.keys())
	}
	s.Update("r6", nbr("default", "192.0.2.6", "ACTIVE", 0))
	r.quiet(t, 200*time.Millisecond)
	s.Update("r5", nbr("default", "192.0.2.5", "ESTABLISHED", 3))
	got := newLeaves()
	for len(got.vals) < 3 {
		got.add(r.next(t, 5*time.Second).GetUpdate())
	}
	if n := hasPrefix(got.keys(), "r5|"); n != 3 {
		t.Errorf("leaves of r5 after it appeared: %v", got.keys())
	}
	if k := nkey("r5", "default", "192.0.2.5", "state", "session-state"); got.vals[k] != "ESTABLISHED" {
		t.Errorf("%s = %q", k, got.vals[k])
	}
	s.Update("r5", []change.Update{leafUp(change.NeighborPath("default", "192.0.2.5", "state", "session-state"), change.String("IDLE"), t0.Add(time.Hour))})
	if v := r.next(t, 5*time.Second).GetUpdate().GetUpdate(); len(v) != 1 || v[0].GetVal().GetStringVal() != "IDLE" {
		t.Errorf("change on r5: %v", v)
	}
}
