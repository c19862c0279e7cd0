package gnmiclient

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/gnmi/proto/gnmi_ext"
	"github.com/openconfig/ondatra/gnmi/oc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/metadata"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/stage"
	mygot "github.com/meshd/meshd/ygot"
)

// fast makes reconnects and stall detection quick for tests.
func fast(t *Target) *Target {
	t.RetryTimer = 50 * time.Millisecond
	t.MaxRetryTimer = 200 * time.Millisecond
	t.SyncTimeout = 2 * time.Second
	t.Timeout = 2 * time.Second
	if t.Insecure == nil && t.TLSCA == "" && t.SkipVerify == nil {
		t.Insecure = ptr(true)
	}
	return t
}

func runClient(t *testing.T, cfg Config, m stage.Applier) (*Client, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, err := New(cfg, m, WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("client did not stop within 10s")
		}
	})
	return c, reg
}

func statusOf(c *Client, name string) TargetStatus {
	for _, s := range c.Status() {
		if s.Name == name {
			return s
		}
	}
	return TargetStatus{}
}

func leafVal(core *recordingMerger, router string, p *gpb.Path) *gpb.TypedValue {
	v, _, _, _ := core.Leaf(router, p)
	return v
}

// A target streams neighbor state; it lands in the merge core, deletes
// remove the neighbor, the state goes synced.
func TestStreamIntoMergeCore(t *testing.T) {
	release := make(chan struct{})
	contentType := make(chan []string, 1)
	f := startFake(t, func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
		md, _ := metadata.FromIncomingContext(ctx)
		contentType <- md.Get("content-type")
		// An extension sends this one through protobuf's generic decoder.
		withExt := nbrUpdate("default", "10.0.0.1", "session-state", change.String("ESTABLISHED"))
		withExt.Extension = []*gnmi_ext.Extension{{Ext: &gnmi_ext.Extension_History{History: &gnmi_ext.History{}}}}
		send(withExt)
		send(nbrUpdate("default", "10.0.0.1", "peer-as", &gpb.TypedValue{Value: &gpb.TypedValue_IntVal{IntVal: 65001}}))
		send(nbrUpdate("default", "10.0.0.2", "session-state", change.String("IDLE")))
		send(syncResp)
		<-release
		send(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: &gpb.Notification{
			Timestamp: time.Now().UnixNano(),
			Delete:    []*gpb.Path{change.NeighborPath("default", "10.0.0.2")},
		}}})
		<-ctx.Done()
		return nil
	})
	core := newCore(t)
	c, reg := runClient(t, Config{Targets: map[string]*Target{"r1": fast(&Target{Address: f.addr})}}, core)
	waitFor(t, 5*time.Second, "synced", func() bool { return statusOf(c, "r1").State == StateSynced })
	if v := leafVal(core, "r1", change.NeighborPath("default", "10.0.0.1", "state", "peer-as")); v.GetUintVal() != 65001 {
		t.Errorf("peer-as = %v, want uint 65001", v)
	}
	core.View("r1", func(r *oc.Root, m *mygot.Root) {
		if r.GetNetworkInstance("default").GetProtocol(oc.PolicyTypes_INSTALL_PROTOCOL_TYPE_BGP, "BGP").GetBgp().GetNeighbor("10.0.0.2") == nil {
			t.Error("neighbor 10.0.0.2 missing before its delete")
		}
		if got := m.GetMeshd().GetRouter().GetGnmiState(); got != "synced" {
			t.Errorf("meshd router gnmi-state = %q", got)
		}
	})
	close(release)
	waitFor(t, 5*time.Second, "neighbor 10.0.0.2 deleted", func() bool {
		gone := true
		core.View("r1", func(r *oc.Root, _ *mygot.Root) {
			gone = r.GetNetworkInstance("default").GetProtocol(oc.PolicyTypes_INSTALL_PROTOCOL_TYPE_BGP, "BGP").GetBgp().GetNeighbor("10.0.0.2") == nil
		})
		return gone
	})
	if got := testutil.ToFloat64(c.m.state.WithLabelValues("r1", "synced")); got != 1 {
		t.Errorf("meshd_gnmi_target_state{synced} = %v", got)
	}
	if got := testutil.ToFloat64(c.m.generic); got != 1 {
		t.Errorf("meshd_gnmi_generic_decodes_total = %v, want 1 (the response with an extension)", got)
	}
	// meshd's stream decoder leaves the wire as gRPC's default has it.
	if ct := <-contentType; len(ct) != 1 || ct[0] != "application/grpc" {
		t.Errorf("content-type %q, want application/grpc", ct)
	}
	if n, err := testutil.GatherAndCount(reg, "meshd_gnmi_leaves_total"); err != nil || n != 1 {
		t.Errorf("leaves metric: %d series, %v", n, err)
	}
	// The request carries the default subscription.
	f.mu.Lock()
	req := f.reqs[0]
	f.mu.Unlock()
	l := req.GetSubscribe()
	if l.GetMode() != gpb.SubscriptionList_STREAM || l.GetEncoding() != gpb.Encoding_JSON_IETF || len(l.GetSubscription()) != 3 {
		t.Errorf("request = %v", l)
	}
	if l.GetSubscription()[0].GetMode() != gpb.SubscriptionMode_TARGET_DEFINED || l.GetSubscription()[0].GetSampleInterval() != uint64(10*time.Second) {
		t.Errorf("subscription = %v", l.GetSubscription()[0])
	}
}

// TLS with server verification, mTLS, skip-verify, and credentials as
// metadata; a wrong CA or wrong password fails and says why.
func TestTLS(t *testing.T) {
	pki := testenv.NewPKI(t)
	ok := func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
		send(nbrUpdate("default", "10.0.0.1", "session-state", change.String("ESTABLISHED")))
		send(syncResp)
		<-ctx.Done()
		return nil
	}
	tlsSrv := startFake(t, ok, serverOpt(pki, false))
	tlsSrv.user, tlsSrv.pass = "admin", "s3cret"
	mtlsSrv := startFake(t, ok, serverOpt(pki, true))
	cases := []struct {
		name    string
		target  *Target
		synced  bool
		errPart string
	}{
		{"verified", &Target{Address: tlsSrv.addr, TLSCA: pki.CAFile, Username: "admin", Password: "s3cret"}, true, ""},
		{"skip-verify", &Target{Address: tlsSrv.addr, SkipVerify: ptr(true), Username: "admin", Password: "s3cret"}, true, ""},
		{"wrong-ca", &Target{Address: tlsSrv.addr, TLSCA: pki.OtherCAFile, Username: "admin", Password: "s3cret"}, false, "certificate"},
		{"wrong-password", &Target{Address: tlsSrv.addr, TLSCA: pki.CAFile, Username: "admin", Password: "nope"}, false, "Unauthenticated"},
		{"mtls", &Target{Address: mtlsSrv.addr, TLSCA: pki.CAFile, TLSCert: pki.ClientCert, TLSKey: pki.ClientKey}, true, ""},
		{"mtls-no-client-cert", &Target{Address: mtlsSrv.addr, TLSCA: pki.CAFile}, false, ""},
		{"plaintext-to-tls", &Target{Address: tlsSrv.addr, Insecure: ptr(true)}, false, ""},
	}
	targets := map[string]*Target{}
	for _, tc := range cases {
		targets[tc.name] = fast(tc.target)
	}
	core := newCore(t)
	c, _ := runClient(t, Config{Targets: targets}, core)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.synced {
				waitFor(t, 5*time.Second, tc.name+" synced", func() bool { return statusOf(c, tc.name).State == StateSynced })
				if v := leafVal(core, tc.name, change.NeighborPath("default", "10.0.0.1", "state", "session-state")); v.GetStringVal() != "ESTABLISHED" {
					t.Errorf("session-state = %v", v)
				}
				return
			}
			waitFor(t, 5*time.Second, tc.name+" failed", func() bool { return statusOf(c, tc.name).Failures > 0 })
			st := statusOf(c, tc.name)
			if st.State == StateSynced || st.LastError == "" || !strings.Contains(st.LastError, tc.errPart) {
				t.Errorf("status = %+v, want a failure mentioning %q", st, tc.errPart)
			}
		})
	}
}

// A target that drops its stream, one that stalls before sync, one that
// sends garbage paths and wrong types: each reconnects or counts, and a
// healthy target next to them keeps flowing.
func TestMisbehavingTargets(t *testing.T) {
	dropper := startFake(t, func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
		send(nbrUpdate("default", "10.0.0.1", "established-transitions", change.Uint(uint64(conn))))
		send(syncResp)
		if conn < 3 {
			return fmt.Errorf("dropped")
		}
		<-ctx.Done()
		return nil
	})
	staller := startFake(t, func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
		<-ctx.Done() // never syncs, never sends
		return nil
	})
	garbage := startFake(t, func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
		for i := 0; i < 5; i++ {
			send(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: &gpb.Notification{
				Update: []*gpb.Update{
					{Path: &gpb.Path{Elem: []*gpb.PathElem{{Name: "junk"}, {Name: "leaf", Key: map[string]string{"id": fmt.Sprint(i)}}}}, Val: change.Uint(1)},
					{Path: change.NeighborPath("default", "10.9.9.9", "state", "peer-as"), Val: change.String("sixty-five")},
					{Path: change.NeighborPath("default", "10.9.9.9", "state", "session-state"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: []byte("{not json")}}},
					{Path: change.NeighborPath("default", "10.9.9.9", "state", "session-state"), Val: change.String("NOT_A_STATE")},
					{Path: change.NeighborPath("default", "10.9.9.9", "state", "peer-as"), Val: change.Uint(65009)},
				},
			}}})
		}
		send(syncResp)
		<-ctx.Done()
		return nil
	})
	healthy := startHealthy(t)
	stallT := fast(&Target{Address: staller.addr})
	stallT.SyncTimeout = 500 * time.Millisecond
	core := newCore(t)
	c, reg := runClient(t, Config{Targets: map[string]*Target{
		"dropper": fast(&Target{Address: dropper.addr}),
		"staller": stallT,
		"garbage": fast(&Target{Address: garbage.addr}),
		"healthy": fast(&Target{Address: healthy.addr}),
	}}, core)

	waitFor(t, 10*time.Second, "dropper's third session", func() bool {
		return statusOf(c, "dropper").State == StateSynced && dropper.streams.Load() >= 3
	})
	if v := leafVal(core, "dropper", change.NeighborPath("default", "10.0.0.1", "state", "established-transitions")); v.GetUintVal() != 3 {
		t.Errorf("dropper transitions = %v, want 3 (from the third session)", v)
	}
	if st := statusOf(c, "dropper"); st.Failures < 2 || st.Connects < 3 {
		t.Errorf("dropper status = %+v", st)
	}
	waitFor(t, 10*time.Second, "staller declared stalled twice", func() bool { return statusOf(c, "staller").Failures >= 2 })
	if st := statusOf(c, "staller"); !strings.Contains(st.LastError, "stalled") {
		t.Errorf("staller last error = %q", st.LastError)
	}
	waitFor(t, 5*time.Second, "garbage synced", func() bool { return statusOf(c, "garbage").State == StateSynced })
	if got := testutil.ToFloat64(c.m.unknown.WithLabelValues("garbage", "/junk/leaf")); got != 5 {
		t.Errorf("unknown /junk/leaf = %v, want 5 (one label for all keys)", got)
	}
	if got := testutil.ToFloat64(c.m.invalid.WithLabelValues("garbage")); got != 15 {
		t.Errorf("invalid values = %v, want 15 (string peer-as, bad JSON, bad enum, x5)", got)
	}
	if v := leafVal(core, "garbage", change.NeighborPath("default", "10.9.9.9", "state", "peer-as")); v.GetUintVal() != 65009 {
		t.Errorf("the good value next to the garbage = %v", v)
	}
	if n, _ := testutil.GatherAndCount(reg, "meshd_gnmi_session_failures_total"); n < 2 {
		t.Errorf("failure series = %d", n)
	}
	// The healthy target streamed all along, on one session.
	before := leafVal(core, "healthy", change.NeighborPath("default", "10.0.0.1", "state", "established-transitions")).GetUintVal()
	waitFor(t, 5*time.Second, "healthy still flowing", func() bool {
		return leafVal(core, "healthy", change.NeighborPath("default", "10.0.0.1", "state", "established-transitions")).GetUintVal() > before+3
	})
	if st := statusOf(c, "healthy"); st.Connects != 1 || st.Failures != 0 {
		t.Errorf("healthy target was disturbed: %+v", st)
	}
	if core.released.Load() < 4 {
		t.Errorf("ReleaseSource called %d times, want one per ended session", core.released.Load())
	}
}

// The targets file is followed live: an added target starts, a changed
// one restarts, a removed one stops, the untouched one keeps its session.
func TestTargetsFileWatch(t *testing.T) {
	serve := func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
		send(syncResp)
		<-ctx.Done()
		return nil
	}
	a, b, b2, d := startFake(t, serve), startFake(t, serve), startFake(t, serve), startFake(t, serve)
	dir := t.TempDir()
	file := filepath.Join(dir, "targets.yaml")
	write := func(s string) {
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("a:\n  address: %s\n  insecure: true\nb:\n  address: %s\n  insecure: true\n", a.addr, b.addr))
	core := newCore(t)
	cfg := Config{TargetsFile: file, Defaults: Target{RetryTimer: 50 * time.Millisecond, MaxRetryTimer: 100 * time.Millisecond}}
	c, _ := runClient(t, cfg, core)
	waitFor(t, 5*time.Second, "a and b synced", func() bool {
		return statusOf(c, "a").State == StateSynced && statusOf(c, "b").State == StateSynced
	})
	// b moves, d arrives.
	write(fmt.Sprintf("a:\n  address: %s\n  insecure: true\nb:\n  address: %s\n  insecure: true\nd:\n  address: %s\n  insecure: true\n", a.addr, b2.addr, d.addr))
	waitFor(t, 5*time.Second, "b on its new address, d synced", func() bool {
		return statusOf(c, "b").Address == b2.addr && statusOf(c, "b").State == StateSynced && statusOf(c, "d").State == StateSynced
	})
	// A broken file changes nothing.
	write("a: [not, a, target\n")
	time.Sleep(500 * time.Millisecond)
	if len(c.Status()) != 3 {
		t.Errorf("a broken file changed the targets: %v", c.Status())
	}
	// b goes.
	write(fmt.Sprintf("a:\n  address: %s\n  insecure: true\nd:\n  address: %s\n  insecure: true\n", a.addr, d.addr))
	waitFor(t, 5*time.Second, "b removed", func() bool { return statusOf(c, "b").Name == "" })
	if a.streams.Load() != 1 {
		t.Errorf("target a was reconnected %d times by unrelated file changes", a.streams.Load()-1)
	}
}

// openconfig/gnmi's own cache and subscribe server, over real gRPC: the
// client subscribes with a prefix target and gets the cached state.
func TestAgainstGNMICacheServer(t *testing.T) {
	tg := testenv.NewCacheTarget(t, "dev1")
	for i, addr := range []string{"10.0.0.1", "10.0.0.2"} {
		tg.Put(t, &gpb.Update{Path: change.NeighborPath("default", addr, "state", "peer-as"), Val: change.Uint(uint64(65001 + i))})
	}
	tg.Sync()
	addr := testenv.ServeGNMI(t, tg.Sub)

	core := newCore(t)
	cfg := Config{
		Targets: map[string]*Target{"dev1": fast(&Target{Address: addr, Subscriptions: []string{"nbr"}})},
		Subscriptions: map[string]*Subscription{"nbr": {
			Paths:  []string{"/network-instances/network-instance[name=*]/protocols/protocol[identifier=*][name=*]/bgp/neighbors/neighbor[neighbor-address=*]/state"},
			Target: "dev1", StreamMode: "on-change", Encoding: "proto",
		}},
	}
	c, _ := runClient(t, cfg, core)
	waitFor(t, 5*time.Second, "synced from the cache", func() bool { return statusOf(c, "dev1").State == StateSynced })
	if v := leafVal(core, "dev1", change.NeighborPath("default", "10.0.0.2", "state", "peer-as")); v.GetUintVal() != 65002 {
		t.Errorf("peer-as = %v", v)
	}
	// A live change flows through the cache to the client.
	tg.Put(t, &gpb.Update{Path: change.NeighborPath("default", "10.0.0.1", "state", "session-state"), Val: change.String("ESTABLISHED")})
	waitFor(t, 5*time.Second, "live change", func() bool {
		return leafVal(core, "dev1", change.NeighborPath("default", "10.0.0.1", "state", "session-state")).GetStringVal() == "ESTABLISHED"
	})
}

func TestConfigValidate(t *testing.T) {
	cases := map[string]struct {
		cfg  Config
		want string
	}{
		"bad address":   {Config{Targets: map[string]*Target{"r": {Address: "127.0.0.1:1,127.0.0.1:2"}}}, "targets.r.address"},
		"unknown sub":   {Config{Targets: map[string]*Target{"r": {Address: "127.0.0.1:1", Subscriptions: []string{"zz"}}}}, "targets.r.subscriptions"},
		"cert w/o key":  {Config{Targets: map[string]*Target{"r": {Address: "127.0.0.1:1", TLSCert: "x"}}}, "targets.r.tls-key"},
		"bad encoding":  {Config{Subscriptions: map[string]*Subscription{"s": {Paths: []string{"/a"}, Encoding: "ascii"}}}, "subscriptions.s.encoding"},
		"sample w/o iv": {Config{Subscriptions: map[string]*Subscription{"s": {Paths: []string{"/a"}, StreamMode: "sample"}}}, "subscriptions.s.sample-interval"},
		"bad mode":      {Config{Subscriptions: map[string]*Subscription{"s": {Paths: []string{"/a"}, Mode: "often"}}}, "subscriptions.s.mode"},
		"no paths":      {Config{Subscriptions: map[string]*Subscription{"s": {}}}, "subscriptions.s.paths"},
		"once target":   {Config{Subscriptions: map[string]*Subscription{"s": {Paths: []string{"/a"}, Mode: "once"}}, Targets: map[string]*Target{"r": {Address: "127.0.0.1:1", Subscriptions: []string{"s"}}}}, "targets.r.subscriptions"},
		"tiny max msg":  {Config{Targets: map[string]*Target{"r": {Address: "127.0.0.1:1", MaxMsgSize: 100}}}, "targets.r.max-msg-size"},
		"negative msg":  {Config{Targets: map[string]*Target{"r": {Address: "127.0.0.1:1", MaxMsgSize: -1}}}, "targets.r.max-msg-size"},
	}
	for name, tc := range cases {
		tc.cfg.SetDefaults()
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %s", name, err, tc.want)
		}
	}
	good := Config{Targets: map[string]*Target{"127.0.0.1:57400": nil}}
	good.SetDefaults()
	if err := good.Validate(); err != nil {
		t.Errorf("a gnmic-style address-only target: %v", err)
	}
	// A host without a port means what it means to gnmic: its port 57400
	// (this was the "not host:port" error before targets were read as
	// gnmic's).
	host := Config{Targets: map[string]*Target{"r": {Address: "nohost"}}}
	host.SetDefaults()
	if err := host.Validate(); err != nil || host.Targets["r"].Address != "nohost:57400" {
		t.Errorf("a host without a port: err %v, address %q, want nohost:57400", err, host.Targets["r"].Address)
	}
}

func TestReadTargetsFileGnmicFormat(t *testing.T) {
	f := filepath.Join(t.TempDir(), "t.yaml")
	os.WriteFile(f, []byte(`
srl1:
  address: 172.20.20.2:57400
  username: admin
  password: NokiaSrl1!
  skip-verify: true
  subscriptions: [srl-bgp-neighbors]
10.0.0.9:57400:
`), 0o600)
	ts, _, err := ReadTargetsFile(f)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Targets: ts}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := cfg.Targets["srl1"]
	if s.Name != "srl1" || s.Username != "admin" || !isTrue(s.SkipVerify) || s.Subscriptions[0] != "srl-bgp-neighbors" {
		t.Errorf("srl1 = %+v", s)
	}
	if a := cfg.Targets["10.0.0.9:57400"]; a.Address != "10.0.0.9:57400" || a.Subscriptions[0] != "bgp-neighbors" {
		t.Errorf("address-only target = %+v", a)
	}
}
