package gnmiclient

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ondatra/gnmi/oc"

	"github.com/meshd/meshd/change"
	mygot "github.com/meshd/meshd/ygot"
)

// What a subscription says is what the request asks for: list mode,
// stream mode, intervals, encoding, prefix, origin and target.
func TestBuildRequest(t *testing.T) {
	const nbr = "/network-instances/network-instance[name=*]/protocols/protocol[identifier=*][name=*]/bgp/neighbors/neighbor[neighbor-address=*]"
	type sub struct {
		mode   gpb.SubscriptionMode
		sample time.Duration
		hb     time.Duration
		supp   bool
		path   string // PathKey of origin-less elems
		origin string
	}
	cases := []struct {
		name     string
		subs     []*Subscription
		mode     string
		encoding string
		wantMode gpb.SubscriptionList_Mode
		wantEnc  gpb.Encoding
		target   string
		updOnly  bool
		want     []sub
	}{
		{
			name:     "on-change",
			subs:     []*Subscription{{Paths: []string{nbr + "/state"}, StreamMode: "on-change", Encoding: "json_ietf"}},
			mode:     "stream",
			wantMode: gpb.SubscriptionList_STREAM, wantEnc: gpb.Encoding_JSON_IETF,
			want: []sub{{mode: gpb.SubscriptionMode_ON_CHANGE, path: nbr + "/state"}},
		},
		{
			name:     "sample with heartbeat and suppress-redundant",
			subs:     []*Subscription{{Paths: []string{nbr + "/state"}, StreamMode: "sample", SampleInterval: 5 * time.Second, HeartbeatInterval: time.Minute, SuppressRedundant: true, Encoding: "json"}},
			mode:     "stream",
			wantMode: gpb.SubscriptionList_STREAM, wantEnc: gpb.Encoding_JSON,
			want: []sub{{mode: gpb.SubscriptionMode_SAMPLE, sample: 5 * time.Second, hb: time.Minute, supp: true, path: nbr + "/state"}},
		},
		{
			name:     "target-defined, gnmic's underscore spelling, proto",
			subs:     []*Subscription{{Paths: []string{nbr + "/state"}, StreamMode: "TARGET_DEFINED", SampleInterval: 10 * time.Second, Encoding: "PROTO"}},
			mode:     "stream",
			wantMode: gpb.SubscriptionList_STREAM, wantEnc: gpb.Encoding_PROTO,
			want: []sub{{mode: gpb.SubscriptionMode_TARGET_DEFINED, sample: 10 * time.Second, path: nbr + "/state"}},
		},
		{
			name: "once ignores stream settings",
			subs: []*Subscription{{Paths: []string{nbr + "/state"}, StreamMode: "sample", SampleInterval: 5 * time.Second, Encoding: "json_ietf"}},
			mode: "once", wantMode: gpb.SubscriptionList_ONCE, wantEnc: gpb.Encoding_JSON_IETF,
			want: []sub{{path: nbr + "/state"}},
		},
		{
			name: "poll",
			subs: []*Subscription{{Paths: []string{nbr + "/state"}, Encoding: "json_ietf"}},
			mode: "poll", wantMode: gpb.SubscriptionList_POLL, wantEnc: gpb.Encoding_JSON_IETF,
			want: []sub{{path: nbr + "/state"}},
		},
		{
			name: "prefix folded in, its origin kept, the target's encoding wins",
			subs: []*Subscription{{Prefix: "openconfig:" + nbr, Paths: []string{"state", "timers/state"}, StreamMode: "on-change", Encoding: "json_ietf", Target: "edge1"}},
			mode: "stream", encoding: "proto",
			wantMode: gpb.SubscriptionList_STREAM, wantEnc: gpb.Encoding_PROTO, target: "edge1",
			want: []sub{
				{mode: gpb.SubscriptionMode_ON_CHANGE, path: nbr + "/state", origin: "openconfig"},
				{mode: gpb.SubscriptionMode_ON_CHANGE, path: nbr + "/timers/state", origin: "openconfig"},
			},
		},
		{
			name: "several subscriptions, one list; updates-only only if all ask",
			subs: []*Subscription{
				{Paths: []string{"openconfig:/interfaces"}, StreamMode: "on-change", Encoding: "json_ietf", UpdatesOnly: true},
				{Paths: []string{"/meshd"}, StreamMode: "sample", SampleInterval: time.Second, Encoding: "json_ietf", UpdatesOnly: true},
			},
			mode: "stream", wantMode: gpb.SubscriptionList_STREAM, wantEnc: gpb.Encoding_JSON_IETF, updOnly: true,
			want: []sub{
				{mode: gpb.SubscriptionMode_ON_CHANGE, path: "/interfaces", origin: "openconfig"},
				{mode: gpb.SubscriptionMode_SAMPLE, sample: time.Second, path: "/meshd"},
			},
		},
		{
			name: "updates-only is not asked for by one of two",
			subs: []*Subscription{
				{Paths: []string{"/interfaces"}, Encoding: "json_ietf", UpdatesOnly: true},
				{Paths: []string{"/meshd"}, Encoding: "json_ietf"},
			},
			mode: "stream", wantMode: gpb.SubscriptionList_STREAM, wantEnc: gpb.Encoding_JSON_IETF,
			want: []sub{
				{mode: gpb.SubscriptionMode_TARGET_DEFINED, path: "/interfaces"},
				{mode: gpb.SubscriptionMode_TARGET_DEFINED, path: "/meshd"},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range tc.subs {
				s.setDefaults()
			}
			req, err := BuildRequest(tc.subs, tc.mode, tc.encoding)
			if err != nil {
				t.Fatal(err)
			}
			l := req.GetSubscribe()
			if l.GetMode() != tc.wantMode || l.GetEncoding() != tc.wantEnc || l.GetUpdatesOnly() != tc.updOnly {
				t.Errorf("list mode %v encoding %v updates-only %v, want %v %v %v", l.GetMode(), l.GetEncoding(), l.GetUpdatesOnly(), tc.wantMode, tc.wantEnc, tc.updOnly)
			}
			if got := l.GetPrefix().GetTarget(); got != tc.target {
				t.Errorf("prefix target %q, want %q", got, tc.target)
			}
			if len(l.GetSubscription()) != len(tc.want) {
				t.Fatalf("%d subscriptions, want %d: %v", len(l.GetSubscription()), len(tc.want), l)
			}
			for i, w := range tc.want {
				s := l.GetSubscription()[i]
				got := sub{
					mode: s.GetMode(), sample: time.Duration(s.GetSampleInterval()), hb: time.Duration(s.GetHeartbeatInterval()),
					supp: s.GetSuppressRedundant(), path: change.PathKey(&gpb.Path{Elem: s.GetPath().GetElem()}), origin: s.GetPath().GetOrigin(),
				}
				w.path = change.PathKey(mustPath(t, w.path))
				if got != w {
					t.Errorf("subscription %d = %+v, want %+v", i, got, w)
				}
			}
		})
	}
	if _, err := BuildRequest(nil, "stream", ""); err == nil {
		t.Error("no subscriptions accepted")
	}
}

func mustPath(t *testing.T, s string) *gpb.Path {
	t.Helper()
	p, err := parsePath(s)
	if err != nil {
		t.Fatal(err)
	}
	return &gpb.Path{Elem: p.GetElem()}
}

// One neighbor's state in each encoding a target may be asked for, sent
// the way such a target sends it: JSON_IETF containers with
// module-qualified members and identity values, JSON containers, PROTO
// scalars. Each lands as the same OpenConfig leaves.
func TestEncodings(t *testing.T) {
	nbrPrefix := func(origin string) *gpb.Path {
		p := change.NeighborPath("default", "10.0.0.1")
		p.Origin = origin
		return p
	}
	elems := func(names ...string) *gpb.Path {
		p := &gpb.Path{}
		for _, n := range names {
			p.Elem = append(p.Elem, &gpb.PathElem{Name: n})
		}
		return p
	}
	afi := &gpb.Path{Elem: []*gpb.PathElem{{Name: "afi-safis"}, {Name: "afi-safi", Key: map[string]string{"afi-safi-name": "IPV4_UNICAST"}}, {Name: "state"}, {Name: "prefixes"}, {Name: "received"}}}
	jsonIetf := func(s string) *gpb.TypedValue {
		return &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: []byte(s)}}
	}
	jsonVal := func(s string) *gpb.TypedValue {
		return &gpb.TypedValue{Value: &gpb.TypedValue_JsonVal{JsonVal: []byte(s)}}
	}
	cases := []struct {
		name    string
		subEnc  string // the subscription's encoding
		tgtEnc  string // the target's override
		wantEnc gpb.Encoding
		updates []*gpb.Update
		origin  string
	}{
		{
			name: "json_ietf", subEnc: "json_ietf", wantEnc: gpb.Encoding_JSON_IETF, origin: "openconfig",
			updates: []*gpb.Update{
				{Path: elems("state"), Val: jsonIetf(`{"openconfig-network-instance:peer-as":65001,"session-state":"ESTABLISHED","established-transitions":"4"}`)},
				{Path: afi, Val: jsonIetf(`"17"`)},
			},
		},
		{
			name: "json", subEnc: "json_ietf", tgtEnc: "json", wantEnc: gpb.Encoding_JSON,
			updates: []*gpb.Update{
				{Path: elems("state"), Val: jsonVal(`{"peer-as":65001,"session-state":"ESTABLISHED","established-transitions":4}`)},
				{Path: afi, Val: jsonVal(`17`)},
			},
		},
		{
			name: "proto", subEnc: "proto", wantEnc: gpb.Encoding_PROTO,
			updates: []*gpb.Update{
				{Path: elems("state", "peer-as"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_IntVal{IntVal: 65001}}},
				{Path: elems("state", "session-state"), Val: change.String("ESTABLISHED")},
				{Path: elems("state", "established-transitions"), Val: change.Uint(4)},
				{Path: afi, Val: change.Uint(17)},
			},
		},
	}
	targets := map[string]*Target{}
	subs := map[string]*Subscription{}
	for _, tc := range cases {
		f := startFake(t, func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
			if got := req.GetSubscribe().GetEncoding(); got != tc.wantEnc {
				return fmt.Errorf("asked for encoding %v, want %v", got, tc.wantEnc)
			}
			send(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: &gpb.Notification{
				Timestamp: time.Now().UnixNano(), Prefix: nbrPrefix(tc.origin), Update: tc.updates,
			}}})
			send(syncResp)
			<-ctx.Done()
			return nil
		})
		subs[tc.name] = &Subscription{Paths: bgpNeighborPaths, StreamMode: "on-change", Encoding: tc.subEnc}
		targets[tc.name] = fast(&Target{Address: f.addr, Encoding: tc.tgtEnc, Subscriptions: []string{tc.name}})
	}
	core := newCore(t)
	c, _ := runClient(t, Config{Targets: targets, Subscriptions: subs}, core)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			waitFor(t, 5*time.Second, tc.name+" synced", func() bool { return statusOf(c, tc.name).State == StateSynced })
			core.View(tc.name, func(r *oc.Root, _ *mygot.Root) {
				n := r.GetNetworkInstance("default").GetProtocol(oc.PolicyTypes_INSTALL_PROTOCOL_TYPE_BGP, "BGP").GetBgp().GetNeighbor("10.0.0.1")
				if n.GetPeerAs() != 65001 || n.GetSessionState() != oc.Bgp_Neighbor_SessionState_ESTABLISHED || n.GetEstablishedTransitions() != 4 {
					t.Errorf("neighbor: peer-as %d state %v transitions %d", n.GetPeerAs(), n.GetSessionState(), n.GetEstablishedTransitions())
				}
				if got := n.GetAfiSafi(oc.BgpTypes_AFI_SAFI_TYPE_IPV4_UNICAST).GetPrefixes().GetReceived(); got != 17 {
					t.Errorf("prefixes received = %d", got)
				}
			})
			if st := statusOf(c, tc.name); st.Invalid != 0 || st.Unknown != 0 || st.Failures != 0 || !strings.Contains(string(st.State), "synced") {
				t.Errorf("status = %+v", st)
			}
		})
	}
}
