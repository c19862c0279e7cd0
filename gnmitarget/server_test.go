package gnmitarget

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/goyang/pkg/yang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshd/meshd/change"
)

func TestCapabilitiesAndSet(t *testing.T) {
	models := []*gpb.ModelData{
		{Name: "openconfig-network-instance", Organization: "OpenConfig working group", Version: "4.4.1"},
		{Name: "meshd-bgp", Organization: "meshd", Version: "2026-11-21"},
	}
	_, addr := startServer(t, WithModels(models...))
	c := dial(t, addr)
	resp, err := c.Capabilities(context.Background(), &gpb.CapabilityRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetSupportedModels()) != 2 || resp.GetSupportedModels()[1].GetName() != "meshd-bgp" || resp.GetSupportedModels()[1].GetVersion() != "2026-11-21" {
		t.Errorf("models = %v", resp.GetSupportedModels())
	}
	want := []gpb.Encoding{gpb.Encoding_JSON, gpb.Encoding_JSON_IETF, gpb.Encoding_PROTO}
	if !reflect.DeepEqual(resp.GetSupportedEncodings(), want) {
		t.Errorf("encodings = %v, want %v", resp.GetSupportedEncodings(), want)
	}
	_, err = c.Set(context.Background(), &gpb.SetRequest{Update: []*gpb.Update{{Path: mustPath(t, "/a"), Val: change.String("x")}}})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("Set: %v, want Unimplemented", err)
	}
}

func TestGetProto(t *testing.T) {
	s, addr := startServer(t)
	s.Update("r1", append(nbr("default", "192.0.2.1", "ESTABLISHED", 10), nbr("default", "192.0.2.2", "IDLE", 0)...))
	s.Update("r2", nbr("blue", "2001:db8::1", "ACTIVE", 3))
	c := dial(t, addr)

	nb := "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor"
	tests := []struct {
		name   string
		target string
		path   string
		typ    gpb.GetRequest_DataType
		want   []string // keys expected
		code   codes.Code
	}{
		{name: "one leaf", target: "r1", path: nb + "[neighbor-address=192.0.2.1]/state/session-state",
			want: []string{nkey("r1", "default", "192.0.2.1", "state", "session-state")}},
		{name: "key wildcard", target: "r1", path: nb + "[neighbor-address=*]/state/session-state",
			want: []string{nkey("r1", "default", "192.0.2.1", "state", "session-state"), nkey("r1", "default", "192.0.2.2", "state", "session-state")}},
		{name: "key left out", target: "r1", path: nb + "/state/peer-as",
			want: []string{nkey("r1", "default", "192.0.2.1", "state", "peer-as"), nkey("r1", "default", "192.0.2.2", "state", "peer-as")}},
		{name: "name wildcard and ellipsis, all targets", target: "*", path: "/network-instances/network-instance/*/.../session-state",
			want: []string{nkey("r1", "default", "192.0.2.1", "state", "session-state"), nkey("r1", "default", "192.0.2.2", "state", "session-state"),
				nkey("r2", "blue", "2001:db8::1", "state", "session-state")}},
		{name: "subtree, state only", target: "r2", path: "/network-instances", typ: gpb.GetRequest_STATE,
			want: []string{nkey("r2", "blue", "2001:db8::1", "state", "messages", "received", "UPDATE"),
				nkey("r2", "blue", "2001:db8::1", "state", "peer-as"), nkey("r2", "blue", "2001:db8::1", "state", "session-state")}},
		{name: "config only", target: "r2", path: "/", typ: gpb.GetRequest_CONFIG,
			want: []string{nkey("r2", "blue", "2001:db8::1", "config", "peer-as")}},
		{name: "module prefixed", target: "r1", path: "/openconfig-network-instance:network-instances/network-instance[name=default]/protocols/protocol/bgp/neighbors/neighbor[neighbor-address=192.0.2.2]/state/session-state",
			want: []string{nkey("r1", "default", "192.0.2.2", "state", "session-state")}},
		{name: "unknown target", target: "nope", path: "/", code: codes.NotFound},
		{name: "two ellipses refused", target: "r1", path: "/.../neighbors/.../state", code: codes.InvalidArgument},
		{name: "no such path", target: "r1", path: nb + "[neighbor-address=192.0.2.9]", code: codes.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Get(context.Background(), &gpb.GetRequest{
				Prefix: &gpb.Path{Target: tc.target}, Path: []*gpb.Path{mustPath(t, tc.path)},
				Encoding: gpb.Encoding_PROTO, Type: tc.typ,
			})
			if status.Code(err) != tc.code {
				t.Fatalf("Get: %v, want code %v", err, tc.code)
			}
			if tc.code != codes.OK {
				return
			}
			l := newLeaves()
			for _, n := range resp.GetNotification() {
				l.add(n)
			}
			if got := l.keys(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("leaves:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
	// Values and timestamps are the ones stored.
	resp, err := c.Get(context.Background(), &gpb.GetRequest{Prefix: &gpb.Path{Target: "r1"},
		Path: []*gpb.Path{change.NeighborPath("default", "192.0.2.1", "state", "messages")}, Encoding: gpb.Encoding_PROTO})
	if err != nil {
		t.Fatal(err)
	}
	u := resp.GetNotification()[0].GetUpdate()
	if len(u) != 1 || u[0].GetVal().GetUintVal() != 10 || resp.GetNotification()[0].GetTimestamp() != t0.Add(time.Second).UnixNano() {
		t.Errorf("messages = %v", resp)
	}
}

func TestGetJSON(t *testing.T) {
	// A hand-built schema: counters are uint64 (strings in JSON_IETF),
	// peer-as is uint32 (a number).
	u64 := &yang.YangType{Kind: yang.Yuint64}
	u32 := &yang.YangType{Kind: yang.Yuint32}
	str := &yang.YangType{Kind: yang.Ystring}
	leaf := func(n string, ty *yang.YangType) *yang.Entry {
		return &yang.Entry{Name: n, Kind: yang.LeafEntry, Type: ty}
	}
	dir := func(n string, kids ...*yang.Entry) *yang.Entry {
		e := &yang.Entry{Name: n, Kind: yang.DirectoryEntry, Dir: map[string]*yang.Entry{}}
		for _, k := range kids {
			e.Dir[k.Name] = k
			k.Parent = e
		}
		return e
	}
	top := dir("stats", dir("peer", leaf("addr", str), dir("state", leaf("rx", u64), leaf("as", u32))))
	state := top.Dir["peer"].Dir["state"]
	top.Annotation = map[string]any{"schemapath": "/example-mod/stats"}
	// As ygot's schemas: containers annotated, leaves not (a subtree's
	// leaves are in their container's module).
	state.Annotation = map[string]any{"schemapath": "/example-mod/stats/peer/state"}
	// A second model's root: its members come from its own schema.
	other := dir("other", leaf("seen", u64))
	other.Annotation = map[string]any{"schemapath": "/other-mod/other"}

	s, addr := startServer(t, WithSchema(dir("", top), dir("", other)))
	for _, a := range []string{"10.0.0.1", "10.0.0.2"} {
		s.Update("r1", []change.Update{
			leafUp(mustPath(t, "/stats/peer[addr="+a+"]/state/rx"), change.Uint(1<<40), t0),
			leafUp(mustPath(t, "/stats/peer[addr="+a+"]/state/as"), change.Uint(65001), t0),
		})
	}
	s.Update("r1", []change.Update{leafUp(mustPath(t, "/other/seen"), change.Uint(1<<62), t0)})
	c := dial(t, addr)
	for _, tc := range []struct {
		enc  gpb.Encoding
		path string
		want map[string]string // path → JSON
	}{
		{gpb.Encoding_JSON_IETF, "/", map[string]string{"/": `{"example-mod:stats":{"peer":[
			{"addr":"10.0.0.1","state":{"as":65001,"rx":"1099511627776"}},
			{"addr":"10.0.0.2","state":{"as":65001,"rx":"1099511627776"}}]},
			"other-mod:other":{"seen":"4611686018427387904"}}`}},
		// A subtree is a top-level object: its members are qualified
		// (RFC 7951 §4).
		{gpb.Encoding_JSON_IETF, "/stats/peer[addr=10.0.0.1]/state", map[string]string{
			"/stats/peer[addr=10.0.0.1]/state": `{"example-mod:as":65001,"example-mod:rx":"1099511627776"}`}},
		// A list entry's key, which the store has no leaf for, is a
		// member like the others.
		{gpb.Encoding_JSON_IETF, "/stats/peer[addr=10.0.0.1]", map[string]string{
			"/stats/peer[addr=10.0.0.1]": `{"example-mod:addr":"10.0.0.1","example-mod:state":{"as":65001,"rx":"1099511627776"}}`}},
		{gpb.Encoding_JSON, "/stats/peer/state", map[string]string{
			"/stats/peer[addr=10.0.0.1]/state": `{"as":65001,"rx":1099511627776}`,
			"/stats/peer[addr=10.0.0.2]/state": `{"as":65001,"rx":1099511627776}`}},
		{gpb.Encoding_JSON_IETF, "/stats/peer[addr=10.0.0.2]/state/rx", map[string]string{
			"/stats/peer[addr=10.0.0.2]/state/rx": `"1099511627776"`}},
	} {
		resp, err := c.Get(context.Background(), &gpb.GetRequest{Prefix: &gpb.Path{Target: "r1"}, Path: []*gpb.Path{mustPath(t, tc.path)}, Encoding: tc.enc})
		if err != nil {
			t.Fatalf("%v %s: %v", tc.enc, tc.path, err)
		}
		got := map[string]any{}
		for _, u := range resp.GetNotification()[0].GetUpdate() {
			b := u.GetVal().GetJsonIetfVal()
			if tc.enc == gpb.Encoding_JSON {
				b = u.GetVal().GetJsonVal()
			}
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			got[pathString(u.GetPath().GetElem())] = v
		}
		want := map[string]any{}
		for k, js := range tc.want {
			var v any
			if err := json.Unmarshal([]byte(js), &v); err != nil {
				t.Fatal(err)
			}
			want[k] = v
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%v %s:\n got %v\nwant %v", tc.enc, tc.path, got, want)
		}
	}
}

func TestSubscribeOnceAndPoll(t *testing.T) {
	s, addr := startServer(t)
	s.Update("r1", nbr("default", "192.0.2.1", "ESTABLISHED", 10))
	s.Update("r2", nbr("default", "192.0.2.7", "IDLE", 0))
	c := dial(t, addr)

	once := streamList("*", gpb.SubscriptionMode_TARGET_DEFINED, "/network-instances/network-instance/protocols/protocol/bgp/neighbors/neighbor/state/session-state")
	once.Mode = gpb.SubscriptionList_ONCE
	r := subscribe(t, c, once)
	got := r.untilSync(t, 5*time.Second)
	want := map[string]string{
		nkey("r1", "default", "192.0.2.1", "state", "session-state"): "ESTABLISHED",
		nkey("r2", "default", "192.0.2.7", "state", "session-state"): "IDLE",
	}
	if !reflect.DeepEqual(got.vals, want) {
		t.Errorf("ONCE = %v, want %v", got.vals, want)
	}
	select {
	case _, ok := <-r.ch:
		if ok {
			t.Error("ONCE stream sent more after sync_response")
		}
	case <-time.After(5 * time.Second):
		t.Error("ONCE stream not closed after sync_response")
	}

	poll := streamList("r1", gpb.SubscriptionMode_TARGET_DEFINED, "/")
	poll.Mode = gpb.SubscriptionList_POLL
	r = subscribe(t, c, poll)
	if got := r.untilSync(t, 5*time.Second); len(got.vals) != 4 {
		t.Errorf("POLL initial = %v", got.vals)
	}
	s.Update("r1", []change.Update{leafUp(change.NeighborPath("default", "192.0.2.1", "state", "session-state"), change.String("IDLE"), t0.Add(time.Minute))})
	r.quiet(t, 200*time.Millisecond) // POLL sends only when polled
	if err := r.stream.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Poll{Poll: &gpb.Poll{}}}); err != nil {
		t.Fatal(err)
	}
	got = r.untilSync(t, 5*time.Second)
	if v := got.vals[nkey("r1", "default", "192.0.2.1", "state", "session-state")]; v != "IDLE" || len(got.vals) != 4 {
		t.Errorf("POLL after change = %v", got.vals)
	}
}

func TestStreamOnChange(t *testing.T) {
	s, addr := startServer(t)
	s.Update("r1", nbr("default", "192.0.2.1", "ESTABLISHED", 10))
	c := dial(t, addr)
	r := subscribe(t, c, streamList("*", gpb.SubscriptionMode_ON_CHANGE, "/network-instances/network-instance/protocols/protocol/bgp/neighbors/neighbor/state"))
	init := r.untilSync(t, 5*time.Second)
	if len(init.vals) != 3 {
		t.Fatalf("initial sync = %v", init.keys())
	}

	// A change arrives promptly, with its own timestamp; an unchanged
	// value and a leaf outside the path do not arrive.
	at := t0.Add(time.Hour)
	s.Update("r1", []change.Update{
		leafUp(change.NeighborPath("default", "192.0.2.1", "state", "session-state"), change.String("IDLE"), at),
		leafUp(change.NeighborPath("default", "192.0.2.1", "state", "peer-as"), change.Uint(65001), at),
		leafUp(change.NeighborPath("default", "192.0.2.1", "config", "peer-as"), change.Uint(65002), at),
	})
	resp := r.next(t, 2*time.Second)
	n := resp.GetUpdate()
	if n.GetTimestamp() != at.UnixNano() || len(n.GetUpdate()) != 1 || n.GetUpdate()[0].GetVal().GetStringVal() != "IDLE" || n.GetPrefix().GetTarget() != "r1" {
		t.Fatalf("update = %v", resp)
	}
	r.quiet(t, 200*time.Millisecond)

	// A new target appears for a "*" subscription.
	s.Update("r9", nbr("default", "198.51.100.1", "ACTIVE", 0))
	got := newLeaves()
	for len(got.vals) < 3 {
		got.add(r.next(t, 2*time.Second).GetUpdate())
	}
	if hasPrefix(got.keys(), "r9|") != 3 {
		t.Errorf("new target: %v", got.keys())
	}

	// A neighbor going away is one delete per leaf under the path.
	s.Update("r1", []change.Update{{Path: change.NeighborPath("default", "192.0.2.1"), Time: at}})
	got = newLeaves()
	for len(got.deletes) < 3 {
		got.add(r.next(t, 2*time.Second).GetUpdate())
	}
	if hasPrefix(got.deletes, "r1|") != 3 {
		t.Errorf("deletes = %v", got.deletes)
	}
	// A target going away likewise.
	s.DeleteTarget("r9")
	got = newLeaves()
	for len(got.deletes) < 3 {
		got.add(r.next(t, 2*time.Second).GetUpdate())
	}
	if hasPrefix(got.deletes, "r9|") != 3 {
		t.Errorf("target deletes = %v", got.deletes)
	}
	if len(s.Targets()) != 0 {
		t.Errorf("targets left: %v", s.Targets())
	}
	r.quiet(t, 200*time.Millisecond)
}

func TestStreamUpdatesOnlyAndTargetFilter(t *testing.T) {
	s, addr := startServer(t)
	s.Update("r1", nbr("default", "192.0.2.1", "ESTABLISHED", 10))
	s.Update("r2", nbr("default", "192.0.2.2", "ESTABLISHED", 10))
	c := dial(t, addr)
	sl := streamList("r1", gpb.SubscriptionMode_ON_CHANGE, "/")
	sl.UpdatesOnly = true
	r := subscribe(t, c, sl)
	if got := r.untilSync(t, 5*time.Second); len(got.vals) != 0 {
		t.Fatalf("updates_only sent initial values: %v", got.keys())
	}
	p := change.NeighborPath("default", "192.0.2.2", "state", "messages", "received", "UPDATE")
	s.Update("r2", []change.Update{leafUp(p, change.Uint(11), t0.Add(time.Hour))})
	r.quiet(t, 200*time.Millisecond) // other target
	s.Update("r1", []change.Update{leafUp(change.NeighborPath("default", "192.0.2.1", "state", "messages", "received", "UPDATE"), change.Uint(11), t0.Add(time.Hour))})
	n := r.next(t, 2*time.Second).GetUpdate()
	if len(n.GetUpdate()) != 1 || n.GetUpdate()[0].GetVal().GetUintVal() != 11 {
		t.Errorf("update = %v", n)
	}
}

// sampleTimes reads notifications for d and returns when each arrived and
// how many updates it had.
func sampleTimes(t *testing.T, r *reader, d time.Duration) (at []time.Time, counts []int) {
	t.Helper()
	end := time.After(d)
	for {
		select {
		case resp, ok := <-r.ch:
			if !ok {
				t.Fatalf("stream ended: %v", <-r.err)
			}
			if n := resp.GetUpdate(); n != nil {
				at = append(at, time.Now())
				counts = append(counts, len(n.GetUpdate()))
			}
		case <-end:
			return at, counts
		}
	}
}

// A SAMPLE stream sends every leaf once per interval, each sample stamped
// with the time it was taken (gNMI §3.5.2.3: the time the value "was
// collected"), not with the leaves' last change (t0, hours before).
// Samples are judged by their timestamps, which the server sets, rather
// than by when they reach the client, which a busy machine delays.
func TestStreamSample(t *testing.T) {
	s, addr := startServer(t, WithMinSampleInterval(50*time.Millisecond))
	// All leaves with one timestamp so a sample is one notification.
	ups := nbr("default", "192.0.2.1", "ESTABLISHED", 10)
	for i := range ups {
		ups[i].Time = t0
	}
	s.Update("r1", ups)
	c := dial(t, addr)
	const interval = 200 * time.Millisecond
	sl := streamList("r1", gpb.SubscriptionMode_SAMPLE, "/network-instances")
	sl.Subscription[0].SampleInterval = uint64(interval)
	start := time.Now()
	r := subscribe(t, c, sl)
	var stamps []int64
	for synced := false; !synced; {
		resp := r.next(t, 5*time.Second)
		if n := resp.GetUpdate(); n != nil {
			stamps = append(stamps, n.GetTimestamp())
		}
		synced = resp.GetSyncResponse()
	}
	const samples = 10
	deadline := time.Now().Add(10 * time.Second)
	for k := 0; k < samples; k++ {
		n := r.next(t, time.Until(deadline)).GetUpdate()
		if len(n.GetUpdate()) != 4 {
			t.Errorf("sample %d had %d leaves, want all 4", k, len(n.GetUpdate()))
		}
		stamps = append(stamps, n.GetTimestamp())
	}
	end := time.Now()
	for k, ts := range stamps {
		if ts < start.UnixNano() || ts > end.UnixNano() {
			t.Errorf("notification %d stamped %v, want the sample's time, between %v and %v (the leaves changed at %v)",
				k, time.Unix(0, ts).UTC(), start.UTC(), end.UTC(), t0)
		}
	}
	// The interval is judged by the median gap: a sample the server's
	// timer fires late is followed by one on time, which moves two gaps
	// but not the median.
	gaps := make([]time.Duration, 0, len(stamps)-1)
	for k := 1; k < len(stamps); k++ {
		gaps = append(gaps, time.Duration(stamps[k]-stamps[k-1]))
	}
	slices.Sort(gaps)
	if med := gaps[len(gaps)/2]; med < interval*3/4 || med > interval*5/4 {
		t.Errorf("median gap between samples %v, want %v±25%% (gaps %v)", med, interval, gaps)
	}
}

func TestStreamSampleSuppressRedundantAndHeartbeat(t *testing.T) {
	s, addr := startServer(t, WithMinSampleInterval(50*time.Millisecond))
	ups := nbr("default", "192.0.2.1", "ESTABLISHED", 10)
	s.Update("r1", ups)
	c := dial(t, addr)
	// The heartbeat is 2 s: the quiet half second and the changed
	// leaf's sample come before it however late a loaded machine
	// delivers the sync (1 s left a run 0.5 s of margin).
	const heartbeat = 2 * time.Second
	sl := streamList("r1", gpb.SubscriptionMode_SAMPLE, "/")
	sl.Subscription[0].SampleInterval = uint64(100 * time.Millisecond)
	sl.Subscription[0].SuppressRedundant = true
	sl.Subscription[0].HeartbeatInterval = uint64(heartbeat)
	// Before the subscription: the server's heartbeat timer starts when
	// the request arrives, after this.
	start := time.Now()
	r := subscribe(t, c, sl)
	r.untilSync(t, 5*time.Second)
	r.quiet(t, 500*time.Millisecond) // nothing changed: nothing sampled

	p := change.NeighborPath("default", "192.0.2.1", "state", "messages", "received", "UPDATE")
	s.Update("r1", []change.Update{leafUp(p, change.Uint(12), t0.Add(time.Hour))})
	n := r.next(t, 5*time.Second).GetUpdate()
	if len(n.GetUpdate()) != 1 || n.GetUpdate()[0].GetVal().GetUintVal() != 12 {
		t.Fatalf("suppressed sample = %v", n)
	}
	// The heartbeat (2 s after the subscription) resends every leaf.
	got := newLeaves()
	for len(got.vals) < 4 {
		got.add(r.next(t, 2*heartbeat).GetUpdate())
	}
	// Not before the interval (a protocol fact: the timer starts after
	// start), and before a second one would be due (liveness: a loaded
	// machine delivers it late, not twice as late as its interval).
	if e := time.Since(start); e < heartbeat || e > 2*heartbeat {
		t.Errorf("heartbeat after %v, want %v-%v", e, heartbeat, 2*heartbeat)
	}
	if got.vals[nkey("r1", "default", "192.0.2.1", "state", "messages", "received", "UPDATE")] != "12" {
		t.Errorf("heartbeat values = %v", got.vals)
	}
}

func TestStreamOnChangeHeartbeat(t *testing.T) {
	s, addr := startServer(t, WithMinSampleInterval(50*time.Millisecond))
	s.Update("r1", nbr("default", "192.0.2.1", "ESTABLISHED", 10))
	c := dial(t, addr)
	sl := streamList("r1", gpb.SubscriptionMode_ON_CHANGE, "/network-instances/network-instance/protocols/protocol/bgp/neighbors/neighbor/state/session-state")
	sl.Subscription[0].HeartbeatInterval = uint64(300 * time.Millisecond)
	r := subscribe(t, c, sl)
	r.untilSync(t, 5*time.Second)
	at, counts := sampleTimes(t, r, 1000*time.Millisecond)
	if len(at) < 2 || len(at) > 4 {
		t.Fatalf("%d heartbeats in 1s at 300ms, want 3±1", len(at))
	}
	for i, c := range counts {
		if c != 1 {
			t.Errorf("heartbeat %d had %d updates, want 1", i, c)
		}
	}
}

func TestSubscriptionLimitAndErrors(t *testing.T) {
	_, addr := startServer(t, WithMaxSubscriptionsPerClient(2))
	c := dial(t, addr)
	r1 := subscribe(t, c, streamList("*", gpb.SubscriptionMode_ON_CHANGE, "/"))
	r1.untilSync(t, 5*time.Second)
	r2 := subscribe(t, c, streamList("*", gpb.SubscriptionMode_ON_CHANGE, "/"))
	r2.untilSync(t, 5*time.Second)
	r3 := subscribe(t, c, streamList("*", gpb.SubscriptionMode_ON_CHANGE, "/"))
	if _, ok := <-r3.ch; ok {
		t.Fatal("third subscription accepted")
	}
	if err := <-r3.err; status.Code(err) != codes.ResourceExhausted {
		t.Errorf("third subscription: %v, want ResourceExhausted", err)
	}
	// Closing one frees a slot.
	r1.cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r4 := subscribe(t, c, streamList("*", gpb.SubscriptionMode_ON_CHANGE, "/"))
		resp, ok := <-r4.ch
		if ok && resp.GetSyncResponse() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slot not freed after a subscription ended")
		}
		time.Sleep(50 * time.Millisecond)
	}

	bad := streamList("*", gpb.SubscriptionMode_ON_CHANGE, "/")
	bad.Encoding = gpb.Encoding_ASCII
	_, addr2 := startServer(t)
	r := subscribe(t, dial(t, addr2), bad)
	if _, ok := <-r.ch; ok || status.Code(<-r.err) != codes.Unimplemented {
		t.Error("ASCII encoding accepted")
	}
}

func TestGracefulStopEndsStreams(t *testing.T) {
	s, addr := startServer(t)
	r := subscribe(t, dial(t, addr), streamList("*", gpb.SubscriptionMode_ON_CHANGE, "/"))
	r.untilSync(t, 5*time.Second)
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("GracefulStop hung on a live stream")
	}
	if _, ok := <-r.ch; ok {
		t.Fatal("stream went on")
	}
	if err := <-r.err; status.Code(err) != codes.Unavailable {
		t.Errorf("stream ended with %v, want Unavailable", err)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, addr := startServer(t, WithRegisterer(reg))
	s.Update("r1", nbr("default", "192.0.2.1", "ESTABLISHED", 10))
	c := dial(t, addr)
	if _, err := c.Get(context.Background(), &gpb.GetRequest{Prefix: &gpb.Path{Target: "r1"}, Encoding: gpb.Encoding_PROTO}); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(s.m.leaves); v != 4 {
		t.Errorf("leaves gauge = %v", v)
	}
	if v := testutil.ToFloat64(s.m.rpcs.WithLabelValues("Get", "OK")); v != 1 {
		t.Errorf("Get OK = %v", v)
	}
	s.DeleteTarget("r1")
	if v := testutil.ToFloat64(s.m.leaves); v != 0 {
		t.Errorf("leaves gauge after delete = %v", v)
	}
}
