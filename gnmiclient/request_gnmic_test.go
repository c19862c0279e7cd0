package gnmiclient

import (
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/gnmic/pkg/api"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// TestBuildRequestAsGnmic: a subscription's SubscribeRequest is the one
// gnmic's own request builder (pkg/api) makes from the same keys, so a
// gnmic subscription block asks a router for the same thing from meshd.
func TestBuildRequestAsGnmic(t *testing.T) {
	qos := uint32(20)
	tests := []struct {
		name string
		sub  Subscription
	}{
		{"builtin bgp-neighbors", *BuiltinSubscriptions()["bgp-neighbors"]},
		{"builtin srl", *BuiltinSubscriptions()["srl-bgp-neighbors"]},
		{"sample with heartbeat", Subscription{
			Paths: []string{"/interfaces/interface[name=ethernet-1/1]/state/counters", "/system/state"},
			Mode:  "stream", StreamMode: "sample", Encoding: "proto",
			SampleInterval: 10 * time.Second, HeartbeatInterval: time.Minute, SuppressRedundant: true,
		}},
		{"qos, models, target, updates-only", Subscription{
			Paths:  []string{"openconfig:/network-instances/network-instance[name=default]"},
			Target: "r1", Mode: "stream", StreamMode: "on-change", Encoding: "json",
			Qos: &qos, Models: []string{"openconfig-network-instance", "openconfig-bgp"}, UpdatesOnly: true,
		}},
		{"once", Subscription{Paths: []string{"/a/b[k=v]/c"}, Mode: "once", Encoding: "json_ietf"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := BuildRequest([]*Subscription{&tc.sub}, tc.sub.Mode, "")
			if err != nil {
				t.Fatal(err)
			}
			want, err := gnmicRequest(&tc.sub)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Errorf("meshd:\n%s\ngnmic:\n%s", prototext.Format(got), prototext.Format(want))
			}
		})
	}
}

// gnmicRequest builds the request with gnmic's pkg/api options, one per
// key as gnmic's subscribe command maps a subscription's keys.
func gnmicRequest(s *Subscription) (*gpb.SubscribeRequest, error) {
	opts := []api.GNMIOption{
		api.Target(s.Target),
		api.SubscriptionListMode(s.Mode),
		api.Encoding(strings.ReplaceAll(s.Encoding, "-", "_")),
		api.UpdatesOnly(s.UpdatesOnly),
	}
	if s.Qos != nil {
		opts = append(opts, api.Qos(*s.Qos))
	}
	for _, m := range s.Models {
		opts = append(opts, api.UseModel(m, "", ""))
	}
	for _, p := range s.Paths {
		sopts := []api.GNMIOption{api.Path(p)}
		if strings.EqualFold(s.Mode, "stream") {
			sopts = append(sopts, api.SubscriptionMode(s.StreamMode),
				api.SampleInterval(s.SampleInterval), api.HeartbeatInterval(s.HeartbeatInterval))
		}
		sopts = append(sopts, api.SuppressRedundant(s.SuppressRedundant))
		opts = append(opts, api.Subscription(sopts...))
	}
	return api.NewSubscribeRequest(opts...)
}
