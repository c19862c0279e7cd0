package gnmitarget

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshd/meshd/change"
)

// Get's data type filter applies to the JSON encodings (a rendered
// subtree) as it does to PROTO leaves, several paths are answered
// together, and whatever matches nothing is a NotFound naming it.
func TestGetTypesPathsAndNotFound(t *testing.T) {
	s, addr := startServer(t)
	s.Update("r1", nbr("default", "192.0.2.1", "ESTABLISHED", 10))
	s.Update("r2", nbr("default", "192.0.2.2", "IDLE", 0))
	c := dial(t, addr)
	const nb = "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=192.0.2.1]"

	tests := []struct {
		name   string
		target string
		paths  []string
		enc    gpb.Encoding
		typ    gpb.GetRequest_DataType
		want   map[string]string // "target|path" → JSON, for the JSON encodings
		leaves int               // updates expected, for PROTO
		code   codes.Code
		msg    string // in the error, for a code other than OK
	}{
		{name: "JSON, state only", target: "r1", paths: []string{nb}, enc: gpb.Encoding_JSON, typ: gpb.GetRequest_STATE,
			want: map[string]string{"r1|" + nb: `{"neighbor-address":"192.0.2.1","state":{"messages":{"received":{"UPDATE":10}},"peer-as":65001,"session-state":"ESTABLISHED"}}`}},
		{name: "JSON_IETF, config only", target: "r1", paths: []string{nb}, enc: gpb.Encoding_JSON_IETF, typ: gpb.GetRequest_CONFIG,
			want: map[string]string{"r1|" + nb: `{"config":{"peer-as":65001},"neighbor-address":"192.0.2.1"}`}},
		{name: "JSON, all", target: "r1", paths: []string{nb + "/config", nb + "/state/peer-as"}, enc: gpb.Encoding_JSON, typ: gpb.GetRequest_ALL,
			want: map[string]string{"r1|" + nb + "/config": `{"peer-as":65001}`, "r1|" + nb + "/state/peer-as": `65001`}},
		{name: "operational is state", target: "r1", paths: []string{nb + "/state/peer-as", nb + "/config/peer-as"}, enc: gpb.Encoding_PROTO,
			typ: gpb.GetRequest_OPERATIONAL, code: codes.NotFound, msg: "config/peer-as"},
		{name: "two paths, all targets", target: "*", paths: []string{"/network-instances/network-instance/protocols/protocol/bgp/neighbors/neighbor/state/session-state",
			"/network-instances/network-instance/protocols/protocol/bgp/neighbors/neighbor/config"}, enc: gpb.Encoding_PROTO, leaves: 4},
		{name: "second path missing", target: "r1", paths: []string{nb + "/state", nb + "/timers"}, enc: gpb.Encoding_PROTO,
			code: codes.NotFound, msg: "timers"},
		{name: "state of config only", target: "r1", paths: []string{nb + "/config"}, enc: gpb.Encoding_JSON, typ: gpb.GetRequest_STATE,
			code: codes.NotFound, msg: "config"},
		{name: "all targets, nothing there", target: "*", paths: []string{"/system"}, enc: gpb.Encoding_PROTO, code: codes.NotFound, msg: "/system"},
		{name: "unknown target named", target: "r9", paths: []string{"/"}, enc: gpb.Encoding_JSON, code: codes.NotFound, msg: `"r9"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := &gpb.GetRequest{Prefix: &gpb.Path{Target: tc.target}, Encoding: tc.enc, Type: tc.typ}
			for _, p := range tc.paths {
				req.Path = append(req.Path, mustPath(t, p))
			}
			resp, err := c.Get(context.Background(), req)
			if status.Code(err) != tc.code {
				t.Fatalf("Get: %v, want code %v", err, tc.code)
			}
			if tc.code != codes.OK {
				if !strings.Contains(status.Convert(err).Message(), tc.msg) {
					t.Errorf("error %q does not name %q", status.Convert(err).Message(), tc.msg)
				}
				return
			}
			if tc.enc == gpb.Encoding_PROTO {
				l := newLeaves()
				for _, n := range resp.GetNotification() {
					l.add(n)
				}
				if l.n != tc.leaves {
					t.Errorf("%d leaves, want %d: %q", l.n, tc.leaves, l.keys())
				}
				return
			}
			got, want := map[string]any{}, map[string]any{}
			for _, n := range resp.GetNotification() {
				for _, u := range n.GetUpdate() {
					b := u.GetVal().GetJsonVal()
					if tc.enc == gpb.Encoding_JSON_IETF {
						b = u.GetVal().GetJsonIetfVal()
					}
					var v any
					if err := json.Unmarshal(b, &v); err != nil {
						t.Fatalf("%s: %v", b, err)
					}
					got[n.GetPrefix().GetTarget()+"|"+change.PathKey(u.GetPath())] = v
				}
			}
			for k, js := range tc.want {
				var v any
				if err := json.Unmarshal([]byte(js), &v); err != nil {
					t.Fatal(err)
				}
				want[pathKey(t, k)] = v
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %v\nwant %v", got, want)
			}
		})
	}

	// No target at all: a NotFound, not an empty answer.
	_, addr2 := startServer(t)
	_, err := dial(t, addr2).Get(context.Background(), &gpb.GetRequest{Encoding: gpb.Encoding_PROTO})
	if status.Code(err) != codes.NotFound {
		t.Errorf("Get of an empty store: %v, want NotFound", err)
	}
}

// pathKey canonicalises "target|path" the way the test compares paths.
func pathKey(t *testing.T, k string) string {
	t.Helper()
	tg, p, _ := strings.Cut(k, "|")
	return tg + "|" + pathString(mustPath(t, p).GetElem())
}

// A Get that panics (a bug) is answered INTERNAL, counted and logged; the
// server and its other RPCs go on.
func TestGetPanicRecovered(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, addr := startServer(t, WithRegisterer(reg), WithRenderer(func(string, *gpb.Path, bool, gpb.GetRequest_DataType) ([]byte, bool, error) {
		panic("renderer bug")
	}))
	s.Update("r1", nbr("default", "192.0.2.1", "ESTABLISHED", 10))
	c := dial(t, addr)
	p := change.NeighborPath("default", "192.0.2.1", "state")
	_, err := c.Get(context.Background(), &gpb.GetRequest{Prefix: &gpb.Path{Target: "r1"}, Path: []*gpb.Path{p}, Encoding: gpb.Encoding_JSON_IETF})
	if status.Code(err) != codes.Internal {
		t.Fatalf("Get with a panicking renderer: %v, want INTERNAL", err)
	}
	resp, err := c.Get(context.Background(), &gpb.GetRequest{Prefix: &gpb.Path{Target: "r1"}, Path: []*gpb.Path{p}, Encoding: gpb.Encoding_PROTO})
	if err != nil || len(resp.GetNotification()) != 1 {
		t.Fatalf("Get after the panic: %v, %v", resp, err)
	}
	// The target's lock was let go: a write still goes through.
	s.Update("r1", nbr("default", "192.0.2.1", "IDLE", 11))
	if got := testutil.ToFloat64(s.m.panics.WithLabelValues("Get")); got != 1 {
		t.Errorf("meshd_gnmitarget_panics_total{rpc=Get} = %v, want 1", got)
	}
}
