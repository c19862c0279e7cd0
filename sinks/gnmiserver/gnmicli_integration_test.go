//go:build integration

package gnmiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/merge"
)

// These tests hold meshd's gNMI target to openconfig/gnmi's reference
// client, gnmi_cli (scripts/install-tools.sh pins it; gnmic cannot be
// built from the module proxy), reading what the client prints rather
// than what meshd's own client code decodes.

// gnmiCLI runs gnmi_cli against the fixture and returns what it printed.
func (f *fixture) gnmiCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := testenv.Binary(t, "gnmi_cli")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args = append([]string{"-address", f.sink.Addr().String(), "-insecure", "-timeout", "10s"}, args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// cliGet sends req with gnmi_cli -get and parses the response it prints.
func (f *fixture) cliGet(t *testing.T, req *gpb.GetRequest) (*gpb.GetResponse, string, error) {
	t.Helper()
	out, err := f.gnmiCLI(t, "-get", "-proto", prototext.Format(req))
	if err != nil {
		return nil, out, err
	}
	resp := &gpb.GetResponse{}
	if err := prototext.Unmarshal([]byte(out), resp); err != nil {
		t.Fatalf("gnmi_cli printed no GetResponse (%v):\n%s", err, out)
	}
	return resp, out, nil
}

// cliSubscribe sends req with gnmi_cli (one short proto a line) and parses
// every response it prints; d > 0 ends a STREAM after d.
func (f *fixture) cliSubscribe(t *testing.T, req *gpb.SubscribeRequest, d time.Duration) ([]*gpb.SubscribeResponse, string, error) {
	t.Helper()
	args := []string{"-display_type", "shortproto", "-proto", prototext.Format(req)}
	if d > 0 {
		args = append(args, "-streaming_duration", d.String())
	}
	out, err := f.gnmiCLI(t, args...)
	var resps []*gpb.SubscribeResponse
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		r := &gpb.SubscribeResponse{}
		if l == "" || prototext.Unmarshal([]byte(l), r) != nil {
			continue // gnmi_cli's own messages (the end of a stream's duration)
		}
		resps = append(resps, r)
	}
	return resps, out, err
}

func getReq(target string, enc gpb.Encoding, paths ...string) *gpb.GetRequest {
	req := &gpb.GetRequest{Prefix: &gpb.Path{Target: target}, Encoding: enc}
	for _, p := range paths {
		req.Path = append(req.Path, change.MustPath(p))
	}
	return req
}

func subReq(target string, mode gpb.SubscriptionList_Mode, enc gpb.Encoding, subs ...*gpb.Subscription) *gpb.SubscribeRequest {
	return &gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: &gpb.SubscriptionList{
		Prefix: &gpb.Path{Target: target}, Mode: mode, Encoding: enc, Subscription: subs,
	}}}
}

const (
	cliNI  = "/network-instances/network-instance[name=default]"
	cliNbr = cliNI + "/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor"
	cliAfi = cliNbr + "[neighbor-address=192.0.2.1]/afi-safis/afi-safi[afi-safi-name=IPV4_UNICAST]"
)

// startCLI runs the sink with r1's neighbor 192.0.2.1 (IPv4 unicast, 3
// prefixes received) and 192.0.2.2, all changed an hour ago.
func startCLI(t *testing.T) (*fixture, time.Time) {
	t.Helper()
	f := start(t, 1024)
	at := time.Now().Add(-time.Hour)
	if res := f.core.Apply(append(afiSafiPrefixes("r1", "192.0.2.1", 3, at), bmpPeerUp("r1", "default", "192.0.2.2", 64513, at)...)); res.Err != nil {
		t.Fatalf("Apply: %+v", res)
	}
	f.waitGet(t, "r1", cliAfi+"/state/prefixes/received", gpb.Encoding_PROTO, "the data in the target", func(r *gpb.GetResponse, err error) bool { return err == nil })
	return f, at
}

// gnmi_cli's Get of a list key leaf gets the key's value, in PROTO and in
// JSON_IETF (an identity qualified with its module).
func TestGNMICLIGetKeyLeaf(t *testing.T) {
	f, _ := startCLI(t)
	tests := []struct {
		path string
		enc  gpb.Encoding
		want map[string]*gpb.TypedValue // full path → value
	}{
		{cliNI + "/name", gpb.Encoding_PROTO, map[string]*gpb.TypedValue{cliNI + "/name": change.String("default")}},
		{cliNbr + "/neighbor-address", gpb.Encoding_PROTO, map[string]*gpb.TypedValue{
			cliNbr + "[neighbor-address=192.0.2.1]/neighbor-address": change.String("192.0.2.1"),
			cliNbr + "[neighbor-address=192.0.2.2]/neighbor-address": change.String("192.0.2.2")}},
		{cliNbr + "[neighbor-address=192.0.2.2]/neighbor-address", gpb.Encoding_JSON_IETF, map[string]*gpb.TypedValue{
			cliNbr + "[neighbor-address=192.0.2.2]/neighbor-address": {Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: []byte(`"192.0.2.2"`)}}}},
		{cliAfi + "/afi-safi-name", gpb.Encoding_JSON_IETF, map[string]*gpb.TypedValue{
			cliAfi + "/afi-safi-name": {Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: []byte(`"openconfig-bgp-types:IPV4_UNICAST"`)}}}},
	}
	for _, tc := range tests {
		t.Run(tc.path+" "+tc.enc.String(), func(t *testing.T) {
			resp, out, err := f.cliGet(t, getReq("r1", tc.enc, tc.path))
			if err != nil {
				t.Fatalf("gnmi_cli -get %s: %v\n%s", tc.path, err, out)
			}
			got := map[string]*gpb.TypedValue{}
			for _, n := range resp.GetNotification() {
				if n.GetPrefix().GetTarget() != "r1" {
					t.Errorf("notification for target %q, want r1", n.GetPrefix().GetTarget())
				}
				for _, u := range n.GetUpdate() {
					got[change.PathKey(u.GetPath())] = u.GetVal()
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("gnmi_cli printed %d leaves, want %d:\n%s", len(got), len(tc.want), out)
			}
			for p, v := range tc.want {
				if g := got[change.PathKey(change.MustPath(p))]; !proto.Equal(g, v) {
					t.Errorf("%s = %v, want %v\n%s", p, g, v, out)
				}
			}
		})
	}
}

// gnmi_cli's JSON_IETF Get of a subtree shows identityref values (the
// afi-safi-name leaf and the afi-safi list key) as "module:NAME", RFC 7951
// §6.8, and an enumeration (session-state) bare; the subtree's top-level
// members are qualified with their module (§4).
func TestGNMICLIJSONIETFIdentity(t *testing.T) {
	f, _ := startCLI(t)
	resp, out, err := f.cliGet(t, getReq("r1", gpb.Encoding_JSON_IETF, cliNbr+"[neighbor-address=192.0.2.1]"))
	if err != nil {
		t.Fatalf("gnmi_cli -get: %v\n%s", err, out)
	}
	var nb struct {
		State struct {
			SessionState string `json:"session-state"`
		} `json:"openconfig-network-instance:state"`
		AfiSafis struct {
			AfiSafi []struct {
				Name  string `json:"afi-safi-name"`
				State struct {
					Name string `json:"afi-safi-name"`
				} `json:"state"`
			} `json:"afi-safi"`
		} `json:"openconfig-network-instance:afi-safis"`
	}
	ups := resp.GetNotification()[0].GetUpdate()
	if len(ups) != 1 {
		t.Fatalf("gnmi_cli printed %d updates, want 1:\n%s", len(ups), out)
	}
	if err := json.Unmarshal(ups[0].GetVal().GetJsonIetfVal(), &nb); err != nil {
		t.Fatalf("json_ietf_val: %v\n%s", err, out)
	}
	const want = "openconfig-bgp-types:IPV4_UNICAST"
	if len(nb.AfiSafis.AfiSafi) != 1 || nb.AfiSafis.AfiSafi[0].Name != want || nb.AfiSafis.AfiSafi[0].State.Name != want {
		t.Errorf("afi-safi key and state/afi-safi-name = %+v, want both %s\n%s", nb.AfiSafis.AfiSafi, want, out)
	}
	if nb.State.SessionState != "ESTABLISHED" {
		t.Errorf("session-state = %q, want ESTABLISHED (an enumeration: no module)\n%s", nb.State.SessionState, out)
	}
}

// A path that matches nothing: gnmi_cli's ONCE subscription ends normally
// with the sync_response alone, and its Get fails with NotFound, as the
// gNMI specification's tables have it (§3.5.2.4, §3.3.4).
func TestGNMICLINothingThere(t *testing.T) {
	f, _ := startCLI(t)
	const nothing = cliNbr + "[neighbor-address=198.51.100.7]/state/peer-as"
	resps, out, err := f.cliSubscribe(t, subReq("r1", gpb.SubscriptionList_ONCE, gpb.Encoding_PROTO,
		&gpb.Subscription{Path: change.MustPath(nothing)}), 0)
	if err != nil {
		t.Fatalf("gnmi_cli ONCE %s: %v\n%s", nothing, err, out)
	}
	if len(resps) != 1 || !resps[0].GetSyncResponse() {
		t.Errorf("ONCE on nothing printed %v, want the sync_response alone\n%s", resps, out)
	}
	_, out, err = f.cliGet(t, getReq("r1", gpb.Encoding_PROTO, nothing))
	if err == nil || !strings.Contains(out, "NotFound") {
		t.Errorf("gnmi_cli -get %s: err %v, want a failure with NotFound\n%s", nothing, err, out)
	}
	// And where there is something, ONCE sends it before the sync.
	resps, out, err = f.cliSubscribe(t, subReq("r1", gpb.SubscriptionList_ONCE, gpb.Encoding_PROTO,
		&gpb.Subscription{Path: change.MustPath(cliNbr + "[neighbor-address=192.0.2.2]/state/peer-as")}), 0)
	if err != nil || len(resps) != 2 || resps[0].GetUpdate().GetUpdate()[0].GetVal().GetUintVal() != 64513 || !resps[1].GetSyncResponse() {
		t.Errorf("ONCE on peer-as: err %v, printed %v, want 64513 then the sync\n%s", err, resps, out)
	}
}

// A SAMPLE stream as gnmi_cli prints it: every sample is stamped with the
// time it was taken, which moves on by the interval, not with the leaves'
// last change an hour before.
func TestGNMICLISampleTimestamps(t *testing.T) {
	f, changed := startCLI(t)
	const interval = 200 * time.Millisecond
	start := time.Now()
	resps, out, _ := f.cliSubscribe(t, subReq("r1", gpb.SubscriptionList_STREAM, gpb.Encoding_PROTO, &gpb.Subscription{
		Path: change.MustPath(cliNbr + "[neighbor-address=192.0.2.2]/state/peer-as"), Mode: gpb.SubscriptionMode_SAMPLE, SampleInterval: uint64(interval),
	}), 1500*time.Millisecond)
	end := time.Now()
	// The stream ends when gnmi_cli's duration runs out, which it reports
	// as an error; what matters is what it printed.
	var stamps []int64
	for _, r := range resps {
		if n := r.GetUpdate(); n != nil {
			stamps = append(stamps, n.GetTimestamp())
		}
	}
	if len(stamps) < 4 {
		t.Fatalf("gnmi_cli printed %d samples in 1.5s at %v, want at least 4\n%s", len(stamps), interval, out)
	}
	for i, ts := range stamps {
		if ts < start.UnixNano() || ts > end.UnixNano() {
			t.Errorf("sample %d stamped %v, want its sample time, between %v and %v (last change %v)",
				i, time.Unix(0, ts).UTC(), start.UTC(), end.UTC(), changed.UTC())
		}
		if i > 0 && ts <= stamps[i-1] {
			t.Errorf("sample %d stamped %v, not after the one before (%v)", i, time.Unix(0, ts).UTC(), time.Unix(0, stamps[i-1]).UTC())
		}
	}
}

// gnmi_cli on an ON_CHANGE stream of a counter that its source moves on
// (and stamps) once a second: what it prints is the core's value at the
// start, then every later value in order, each with the timestamp its
// source gave it. The sink's queue (4 batches) overflowed before it read
// it, so this also holds the resync to the order of the source: before,
// the batches queued behind a resync took the counter back to a value
// from minutes before, and a loss made a resync whose re-sent values
// reached subscribers seconds late.
func TestGNMICLIStreamSourceOrderAndTimestamps(t *testing.T) {
	const before, after = 200, 400
	base := time.Unix(1_700_000_000, 0)
	upd := change.NeighborPath("default", "192.0.2.1", "state", "messages", "received", "UPDATE")
	count := func(i int) []change.Change {
		return []change.Change{{Router: "r1", Path: upd, Value: change.Uint(uint64(i)), Time: base.Add(time.Duration(i) * time.Second), Source: change.SourceBMP}}
	}
	f := startAfter(t, 4, func(core *merge.Core) {
		core.Apply(bmpPeerUp("r1", "default", "192.0.2.1", 64512, base))
		for i := 1; i <= before; i++ {
			core.Apply(count(i))
		}
	})
	if f.sub.Dropped() == 0 {
		t.Fatal("the queue of 4 did not overflow")
	}
	type out struct {
		resps []*gpb.SubscribeResponse
		text  string
	}
	done := make(chan out, 1)
	go func() {
		resps, text, _ := f.cliSubscribe(t, subReq("r1", gpb.SubscriptionList_STREAM, gpb.Encoding_PROTO, &gpb.Subscription{
			Path: change.MustPath(cliNbr + "[neighbor-address=192.0.2.1]/state/messages/received/UPDATE"), Mode: gpb.SubscriptionMode_ON_CHANGE,
		}), 3*time.Second)
		done <- out{resps, text}
	}()
	// Changes from now on: those before gnmi_cli's subscription took hold
	// reach it as its initial value, the others one by one.
	deadline := time.Now().Add(10 * time.Second)
	for f.streams(t) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("gnmi_cli did not subscribe within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := before + 1; i <= after; i++ {
		f.core.Apply(count(i))
	}
	o := <-done
	var vals []uint64
	for _, r := range o.resps {
		n := r.GetUpdate()
		for _, u := range n.GetUpdate() {
			v := u.GetVal().GetUintVal()
			if want := base.Add(time.Duration(v) * time.Second).UnixNano(); n.GetTimestamp() != want {
				t.Errorf("value %d stamped %v, want its source's %v", v, time.Unix(0, n.GetTimestamp()).UTC(), time.Unix(0, want).UTC())
			}
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		t.Fatalf("gnmi_cli printed no value:\n%s", o.text)
	}
	if vals[0] < before {
		t.Errorf("first value %d, want the core's value when gnmi_cli subscribed (%d or later)", vals[0], before)
	}
	for i := 1; i < len(vals); i++ {
		if vals[i] <= vals[i-1] {
			t.Errorf("value %d after %d: not in the source's order", vals[i], vals[i-1])
		}
	}
	if last := vals[len(vals)-1]; last != after {
		t.Errorf("last value %d, want %d", last, after)
	}
}

// streams is the number of STREAM subscriptions the target serves.
func (f *fixture) streams(t *testing.T) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "meshd_gnmitarget_subscriptions" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "mode" && l.GetValue() == "STREAM" {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}
