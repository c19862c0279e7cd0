package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/spf13/cobra"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/gnmiclient"
	"github.com/meshd/meshd/gnmitarget"
	"github.com/meshd/meshd/internal/sessions"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/merge"
)

// testTarget is a gNMI server on loopback: Subscribe from openconfig/gnmi's
// cache (target dev1, two neighbors' peer-as), Get answered with an SR
// Linux native neighbor and a path nothing maps.
type testTarget struct {
	gpb.UnimplementedGNMIServer
	*testenv.CacheTarget
	addr string

	mu     sync.Mutex
	getReq *gpb.GetRequest
}

func (s *testTarget) Subscribe(stream gpb.GNMI_SubscribeServer) error { return s.Sub.Subscribe(stream) }

func (s *testTarget) Get(_ context.Context, req *gpb.GetRequest) (*gpb.GetResponse, error) {
	s.mu.Lock()
	s.getReq = req
	s.mu.Unlock()
	native := &gpb.Path{Elem: []*gpb.PathElem{
		{Name: "network-instance", Key: map[string]string{"name": "default"}}, {Name: "protocols"}, {Name: "bgp"},
		{Name: "neighbor", Key: map[string]string{"peer-address": "10.0.0.2"}},
	}}
	return &gpb.GetResponse{Notification: []*gpb.Notification{{
		Timestamp: time.Now().UnixNano(),
		Update: []*gpb.Update{
			{Path: native, Val: &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: []byte(`{"session-state":"established","peer-as":65002}`)}}},
			{Path: &gpb.Path{Elem: []*gpb.PathElem{{Name: "acme"}, {Name: "thing"}}}, Val: change.Uint(1)},
		},
	}}}, nil
}

func (s *testTarget) setPeerAS(t *testing.T, addr string, as uint64) {
	t.Helper()
	s.Put(t, &gpb.Update{Path: change.NeighborPath("default", addr, "state", "peer-as"), Val: change.Uint(as)})
}

func startTestTarget(t *testing.T) *testTarget {
	t.Helper()
	s := &testTarget{CacheTarget: testenv.NewCacheTarget(t, "dev1")}
	s.setPeerAS(t, "10.0.0.1", 65001)
	s.setPeerAS(t, "10.0.0.2", 65002)
	s.Sync()
	s.addr = testenv.ServeGNMI(t, s)
	return s
}

// runCmd runs a subcommand as the binary would and returns what it printed.
func runCmd(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

// jsonLines parses every output line as a JSON object.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("output line %q is not JSON: %v\nall output:\n%s", l, err, out)
		}
		recs = append(recs, m)
	}
	return recs
}

// `meshd get` prints what a router sends as meshd would store it (an SR
// Linux native neighbor as its OpenConfig leaves), an unknown path apart,
// or, with --raw, the notifications as received.
func TestGetCommand(t *testing.T) {
	s := startTestTarget(t)
	const native = "/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.0.2]"
	out, err := runCmd(t, newGetCmd(), "-a", s.addr, "--insecure", "--name", "srl1", "-e", "json_ietf", native)
	if err != nil {
		t.Fatalf("meshd get: %v\n%s", err, out)
	}
	got := map[string]any{}
	var unknown []any
	for _, r := range jsonLines(t, out) {
		if u, ok := r["unknown-path"]; ok {
			unknown = append(unknown, u)
			continue
		}
		if r["router"] != "srl1" {
			t.Errorf("line %v: router is not srl1", r)
		}
		if _, err := time.Parse(time.RFC3339Nano, r["time"].(string)); err != nil {
			t.Errorf("line %v: time: %v", r, err)
		}
		got[r["path"].(string)] = r["value"]
	}
	want := map[string]any{
		change.PathKey(change.NeighborPath("default", "10.0.0.2", "state", "session-state")): "ESTABLISHED",
		change.PathKey(change.NeighborPath("default", "10.0.0.2", "state", "peer-as")):       float64(65002),
	}
	if len(got) != len(want) {
		t.Errorf("leaves printed: %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(unknown) != 1 || unknown[0] != "/acme/thing" {
		t.Errorf("unknown paths printed: %v, want /acme/thing", unknown)
	}
	s.mu.Lock()
	req := s.getReq
	s.mu.Unlock()
	if req.GetEncoding() != gpb.Encoding_JSON_IETF || len(req.GetPath()) != 1 || req.GetPath()[0].GetElem()[3].GetKey()["peer-address"] != "10.0.0.2" {
		t.Errorf("get request = %v", req)
	}

	out, err = runCmd(t, newGetCmd(), "-a", s.addr, "--insecure", "--raw", native)
	if err != nil {
		t.Fatalf("meshd get --raw: %v\n%s", err, out)
	}
	raw := jsonLines(t, out)
	if len(raw) != 1 || len(raw[0]["update"].([]any)) != 2 {
		t.Errorf("--raw printed %v, want the one notification with its two updates", raw)
	}
	if _, err := runCmd(t, newGetCmd(), "--insecure", native); err == nil {
		t.Error("meshd get without --address succeeded")
	}
}

// `meshd subscribe` in each mode prints one JSON line per leaf and
// returns: once at the sync, poll after --count polls, stream after
// --count notifications.
func TestSubscribeCommand(t *testing.T) {
	s := startTestTarget(t)
	const path = "/network-instances/network-instance[name=*]/protocols/protocol[identifier=*][name=*]/bgp/neighbors/neighbor[neighbor-address=*]/state/peer-as"
	peerAS := func(addr string) string {
		return change.PathKey(change.NeighborPath("default", addr, "state", "peer-as"))
	}
	cases := []struct {
		name  string
		args  []string
		lines int
	}{
		{"once", []string{"--mode", "once"}, 2},
		{"poll", []string{"--mode", "poll", "--count", "3", "--interval", "50ms"}, 6},
		{"stream", []string{"--mode", "stream", "--stream-mode", "on-change", "--count", "2"}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-a", s.addr, "--insecure", "--name", "dev1", "--target", "dev1", "-e", "proto"}, tc.args...)
			out, err := runCmd(t, newSubscribeCmd(), append(args, path)...)
			if err != nil {
				t.Fatalf("meshd subscribe: %v\n%s", err, out)
			}
			recs := jsonLines(t, out)
			if len(recs) != tc.lines {
				t.Errorf("%d lines, want %d:\n%s", len(recs), tc.lines, out)
			}
			seen := map[string]any{}
			for _, r := range recs {
				if r["router"] != "dev1" {
					t.Errorf("line %v: router", r)
				}
				seen[r["path"].(string)] = r["value"]
			}
			if seen[peerAS("10.0.0.1")] != float64(65001) || seen[peerAS("10.0.0.2")] != float64(65002) {
				t.Errorf("leaves %v, want both neighbors' peer-as", seen)
			}
		})
	}
	if out, err := runCmd(t, newSubscribeCmd(), "-a", s.addr, "--insecure", "--mode", "often", path); err == nil || !strings.Contains(err.Error(), "mode") {
		t.Errorf("--mode often: err %v\n%s", err, out)
	}
}

// `meshd status` shows each target's session state and last error, and
// the BGP sessions, from a running meshd's HTTP listener.
func TestStatusCommand(t *testing.T) {
	s := startTestTarget(t)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	core, err := merge.New(merge.WithoutVerdict())
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	cfg := gnmiclient.Config{
		Targets: map[string]*gnmiclient.Target{
			"dev1": {Address: s.addr, Insecure: &yes, Subscriptions: []string{"nbr"}},
			"down": {Address: deadAddr, Insecure: &yes, RetryTimer: time.Minute, MaxRetryTimer: time.Minute},
		},
		Subscriptions: map[string]*gnmiclient.Subscription{"nbr": {
			Paths:  []string{"/network-instances/network-instance[name=*]/protocols/protocol[identifier=*][name=*]/bgp/neighbors/neighbor[neighbor-address=*]/state"},
			Target: "dev1", StreamMode: "on-change", Encoding: "proto",
		}},
	}
	gc, err := gnmiclient.New(cfg, core)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); gc.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("gnmi client did not stop")
		}
	}()
	mux := http.NewServeMux()
	mux.Handle("/api/gnmi/targets", jsonHandler(func() any { return gc.Status() }))
	mux.Handle("/api/sessions", sessions.Handler(core))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(lis)
	defer hs.Close()

	deadline := time.Now().Add(10 * time.Second)
	var out string
	dev1 := regexp.MustCompile(`(?m)^dev1\s+` + regexp.QuoteMeta(s.addr) + `\s+synced\s+\S+\s+1\s+0\s+2\s*$`)
	down := regexp.MustCompile(`(?m)^down\s+` + regexp.QuoteMeta(deadAddr) + `\s+failed\s+\S+\s+0\s+1\s+0\s+.*connection refused`)
	nbr := regexp.MustCompile(`(?m)^dev1\s+10\.0\.0\.2\s+65002\s`)
	for time.Now().Before(deadline) {
		out, err = runCmd(t, newStatusCmd(), "--http", lis.Addr().String())
		if err == nil && dev1.MatchString(out) && down.MatchString(out) && nbr.MatchString(out) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("meshd status never showed dev1 synced, down failed with its error, and dev1's neighbors (err %v):\n%s", err, out)
}

// startFleetTarget serves four routers from meshd's own gNMI target, each
// with one neighbor whose peer-as tells the routers apart (r1: 65001, …).
func startFleetTarget(t *testing.T) string {
	t.Helper()
	srv, err := gnmitarget.New()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		r := fmt.Sprintf("r%d", i)
		srv.Update(r, []change.Update{{
			Path:  change.NeighborPath("default", "10.0.0.9", "state", "peer-as"),
			Value: change.Uint(uint64(65000 + i)), Time: time.Now(),
		}})
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// Each router's leaves are labelled with the target its reply names, not
// with --name or the address; --target asks for one router; --path is
// taken as gnmic takes it (repeatable), next to positional paths.
func TestGetSubscribeRouterFromPrefixTarget(t *testing.T) {
	addr := startFleetTarget(t)
	const path = "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=10.0.0.9]/state/peer-as"
	all := map[string]float64{"r1": 65001, "r2": 65002, "r3": 65003, "r4": 65004}
	cases := []struct {
		name string
		cmd  func() *cobra.Command
		args []string
		want map[string]float64
	}{
		{"get positional", newGetCmd, []string{path}, all},
		{"get --path", newGetCmd, []string{"--path", path}, all},
		{"get --target", newGetCmd, []string{"--target", "r3", "--path", path}, map[string]float64{"r3": 65003}},
		{"get --path twice", newGetCmd, []string{"--target", "r2", "--path", path, "--path", path}, map[string]float64{"r2": 65002}},
		{"subscribe --path", newSubscribeCmd, []string{"--mode", "once", "--path", path}, all},
		{"subscribe --target", newSubscribeCmd, []string{"--mode", "once", "--target", "r4", path}, map[string]float64{"r4": 65004}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-a", addr, "--insecure", "--name", "fallback", "-e", "proto"}, tc.args...)
			out, err := runCmd(t, tc.cmd(), args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			got := map[string]float64{}
			for _, r := range jsonLines(t, out) {
				router, _ := r["router"].(string)
				v, _ := r["value"].(float64)
				got[router] = v
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("router → peer-as %v, want %v\n%s", got, tc.want, out)
			}
		})
	}
	if out, err := runCmd(t, newGetCmd(), "-a", addr, "--insecure"); err == nil || !strings.Contains(err.Error(), "--path") {
		t.Errorf("get without a path: err %v, want one naming --path\n%s", err, out)
	}
}
