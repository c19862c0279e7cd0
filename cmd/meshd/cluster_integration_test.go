//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/meshd/meshd/bench/gnmisim"
	"github.com/meshd/meshd/bmpbridge/bmpgen"
	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/cluster"
	"github.com/meshd/meshd/gnmiclient"
	"github.com/meshd/meshd/internal/testenv"
)

// replica is one `meshd run` of the cluster.
type replica struct {
	name string
	cfg  string
	log  string // its stdout and stderr
	bin  string
	http int
	bmp  int
	gnmi int
	cmd  *exec.Cmd
}

func (r *replica) synced(t *testing.T) map[string]bool {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/api/gnmi/targets", r.http))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var ts []gnmiclient.TargetStatus
	if json.NewDecoder(resp.Body).Decode(&ts) != nil {
		return nil
	}
	out := map[string]bool{}
	for _, s := range ts {
		out[s.Name] = s.State == gnmiclient.StateSynced
	}
	return out
}

// startFleet starts a simulated fleet on loopback ports below the
// ephemeral range, trying other bases if one is taken.
func startFleet(t *testing.T, targets int) *gnmisim.Sim {
	t.Helper()
	var err error
	for range 10 {
		var sim *gnmisim.Sim
		ctx, cancel := context.WithCancel(context.Background())
		sim, err = gnmisim.Start(ctx, gnmisim.Config{Targets: targets, Neighbors: 2, Rate: 20, BasePort: 25000 + rand.IntN(7000), Prefix: "router"})
		if err == nil {
			t.Cleanup(func() { cancel(); sim.Wait() })
			return sim
		}
		cancel()
	}
	t.Fatalf("fleet: %v", err)
	return nil
}

// TestClusterSharesTheFleet runs three real meshd replicas on a real
// etcd with one shared targets file: every target is collected by
// exactly one replica, `meshd cluster status` shows the members and the
// ownership, and after kill -9 of one replica its targets are collected
// again by the others, each still by one.
func TestClusterSharesTheFleet(t *testing.T) {
	e := testenv.StartEtcd(t)
	const fleet = 30
	sim := startFleet(t, fleet)
	rs := startReplicas(t, e, sim, 3, with{})
	// once checks that every target is synced on exactly one live
	// replica and on none other, and says how they are spread.
	once := func(live []*replica) (bool, string) {
		count := map[string]int{}
		synced := 0
		spread := ""
		for _, r := range live {
			ts := r.synced(t)
			spread += fmt.Sprintf(" %s:%d", r.name, len(ts))
			for name, ok := range ts {
				count[name]++
				if ok {
					synced++
				}
			}
		}
		for _, n := range count {
			if n > 1 {
				return false, "a target on two replicas:" + spread
			}
		}
		return len(count) == fleet && synced == fleet, spread
	}
	var spread string
	testenv.WaitFor(t, 30*time.Second, "every target synced on exactly one replica", func() bool {
		ok, s := once(rs)
		spread = s
		return ok
	})
	t.Logf("targets per replica:%s", spread)
	limit := cluster.Capacity(fleet, 3, cluster.DefaultLoadFactor)
	ownedSum := 0.0
	for _, r := range rs {
		if n := len(r.synced(t)); n > limit {
			t.Errorf("%s collects %d targets, over the bound %d", r.name, n, limit)
		}
		ownedSum += metric(t, r, "meshd_cluster_owned_targets ")
	}
	if ownedSum != fleet {
		t.Errorf("the replicas' meshd_cluster_owned_targets add up to %v, want %d", ownedSum, fleet)
	}

	out, err := exec.Command(rs[0].bin, "cluster", "status", "--json", "-c", rs[0].cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("meshd cluster status: %v\n%s", err, out)
	}
	var st cluster.Status
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("meshd cluster status --json: %v\n%s", err, out)
	}
	if len(st.Members) != 3 || len(st.Owners) != fleet {
		t.Errorf("cluster status: %d members and %d targets owned, want 3 and %d:\n%s", len(st.Members), len(st.Owners), fleet, out)
	}
	for i, m := range st.Members {
		if got := len(rs[0].synced(t)); m.Name == rs[0].name && m.Owns != got {
			t.Errorf("cluster status says %s owns %d, its /api/gnmi/targets has %d", m.Name, m.Owns, got)
		}
		if want := fmt.Sprintf("127.0.0.1:%d", rs[i].http); m.Name != rs[i].name || m.Advertise.HTTP != want {
			t.Errorf("cluster status member %d: %s advertising http %q, want %s advertising %s", i, m.Name, m.Advertise.HTTP, rs[i].name, want)
		}
	}

	// kill -9 one replica: the others take its targets once its lease
	// (2 s) is gone.
	_ = rs[2].cmd.Process.Signal(syscall.SIGKILL)
	_ = rs[2].cmd.Wait()
	killed := time.Now()
	testenv.WaitFor(t, 30*time.Second, "the killed replica's targets synced on exactly one live replica", func() bool {
		ok, s := once(rs[:2])
		spread = s
		return ok
	})
	t.Logf("all %d targets synced again %v after kill -9 of one replica (lease TTL 2 s); targets per replica:%s",
		fleet, time.Since(killed).Round(100*time.Millisecond), spread)

	// SIGSTOP meshd-1 for three lease TTLs: meshd-0 takes its targets;
	// once resumed, meshd-1 applies none of what its routers sent
	// meanwhile (its sockets hold seconds of it), before it may own
	// anything again (not before settle, 1 s).
	p := rs[1]
	owned := len(p.synced(t))
	before := notifications(t, p)
	_ = p.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(6 * time.Second)
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	time.Sleep(800 * time.Millisecond)
	applied := notifications(t, p) - before
	t.Logf("meshd-1 held %d targets when paused 6 s; it applied %.0f notifications in the 0.8 s after it resumed (its routers sent about %d meanwhile)",
		owned, applied, owned*2*20*6/3)
	if applied > float64(owned) {
		t.Errorf("meshd-1 applied %.0f notifications after its lease had ended: a paused replica must apply nothing it received for targets it may no longer own", applied)
	}
	if n := metric(t, p, "meshd_cluster_fenced_total "); n != 1 {
		t.Errorf("meshd-1 counted %v fencings after its pause, want 1", n)
	}
	testenv.WaitFor(t, 30*time.Second, "every target synced on exactly one replica after the pause, meshd-1 with its share again", func() bool {
		ok, s := once(rs[:2])
		spread = s
		return ok && len(p.synced(t)) >= fleet/4
	})
	t.Logf("after the pause, targets per replica:%s", spread)
}

// with is what replicas serve beyond gNMI collection: BMP, a gNMI target,
// each advertised.
type with struct{ bmp, gnmi bool }

// startReplicas builds meshd and starts n replicas on etcd e sharing
// sim's fleet.
func startReplicas(t *testing.T, e *testenv.Etcd, sim *gnmisim.Sim, n int, w with) []*replica {
	t.Helper()
	dir := t.TempDir()
	bin := meshdBinary(t)
	targetsFile := filepath.Join(dir, "targets.yaml")
	if err := sim.WriteTargetsFile(targetsFile); err != nil {
		t.Fatal(err)
	}
	var rs []*replica
	for i := range n {
		r := &replica{name: fmt.Sprintf("meshd-%d", i), http: testenv.FreePort(t), bin: bin}
		r.cfg = filepath.Join(dir, r.name+".yaml")
		cfg := fmt.Sprintf("log:\n  level: info\nhttp:\n  listen: 127.0.0.1:%d\ntargets-file: %s\ncluster:\n  endpoints: [%s]\n  name: %s\n  lease-ttl: 2s\n  settle: 1s\n  advertise:\n    http: 127.0.0.1:%d\n",
			r.http, targetsFile, e.Endpoint, r.name, r.http)
		if w.bmp {
			r.bmp = testenv.FreePort(t)
			cfg += fmt.Sprintf("    bmp: 127.0.0.1:%d\n", r.bmp)
		}
		if w.gnmi {
			r.gnmi = testenv.FreePort(t)
			cfg += fmt.Sprintf("    gnmi: 127.0.0.1:%d\ngnmi-server:\n  listen: 127.0.0.1:%d\n", r.gnmi, r.gnmi)
		}
		if w.bmp {
			cfg += fmt.Sprintf("bmp:\n  listen: [\"127.0.0.1:%d\"]\n", r.bmp)
		}
		if err := os.WriteFile(r.cfg, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		r.log = filepath.Join(dir, r.name+".log")
		logf, err := os.Create(r.log)
		if err != nil {
			t.Fatal(err)
		}
		r.cmd = exec.Command(bin, "run", "-c", r.cfg)
		r.cmd.Stdout, r.cmd.Stderr = logf, logf
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		logf.Close()
		t.Cleanup(func() {
			_ = r.cmd.Process.Kill()
			_ = r.cmd.Wait()
			// A failed test says what each replica logged last (its
			// directory goes with the test).
			if b, err := os.ReadFile(r.log); err == nil && t.Failed() {
				t.Logf("%s's log ends:\n%s", r.name, b[max(0, len(b)-4000):])
			}
		})
		rs = append(rs, r)
	}
	return rs
}

// notifications is a replica's meshd_gnmi_notifications_total, summed.
func notifications(t *testing.T, r *replica) float64 {
	t.Helper()
	return metric(t, r, "meshd_gnmi_notifications_total{")
}

// metric sums a replica's series whose line starts with prefix.
func metric(t *testing.T, r *replica, prefix string) float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", r.http))
	if err != nil {
		t.Fatalf("%s metrics: %v", r.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var n float64
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			n += v
		}
	}
	return n
}

// TestClusterRelaysBMPToTheOwner: a router sends BMP to a replica that
// does not own it; that replica relays the session, in BMP, to the
// owner, which takes every message; the first holds nothing of it.
func TestClusterRelaysBMPToTheOwner(t *testing.T) {
	e := testenv.StartEtcd(t)
	sim := startFleet(t, 4)
	rs := startReplicas(t, e, sim, 2, with{bmp: true})
	owner, other, router := splitPair(t, rs)
	var buf bytes.Buffer
	msgs, routes, err := bmpgen.WriteTable(&buf, bmpgen.TableConfig{SysName: router, Peers: 2, Routes: 500, NewAttrShare: 0.35, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	// The replica that relays may learn of the owner's claim a settle
	// period after the owner has synced the target: a session it took
	// meanwhile it ends when it learns (handed_over), and the router
	// connects again, as a BMP router does.
	c, conns := bmpRouter(t, other.bmp, buf.Bytes(), 60*time.Second, fmt.Sprintf("the owner %s counting the %d messages of %s", owner.name, msgs, router), func() bool {
		return metric(t, owner, "meshd_bmp_messages_total") >= float64(msgs)
	})
	if n := metric(t, other, `meshd_bmp_relays_total{result="relayed"}`); n < 1 {
		t.Errorf("%s relayed %v sessions, want at least 1", other.name, n)
	}
	if n := metric(t, other, "meshd_bmp_messages_total"); n != 0 && conns == 1 {
		t.Errorf("%s took %v BMP messages itself, want 0: it should only relay", other.name, n)
	}
	testenv.WaitFor(t, 10*time.Second, "the owner holding every route", func() bool {
		return metric(t, owner, "meshd_bmp_routes ") == float64(routes)
	})
	testenv.WaitFor(t, 10*time.Second, other.name+" holding none of the routes it relays", func() bool {
		return metric(t, other, "meshd_bmp_routes ") == 0
	})
	t.Logf("%d messages (%d routes) of %s sent to %s in %d connections, taken by its owner %s", msgs, routes, router, other.name, conns, owner.name)

	// The owner dies: the relay ends the router's session (a router then
	// connects again), and the router's next session is served where
	// its new owner is, here.
	_ = owner.cmd.Process.Kill()
	_ = owner.cmd.Wait()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the relay sent the router data")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the relay kept the router's session 30 s after its owner died")
	}
	bmpRouter(t, other.bmp, buf.Bytes(), 60*time.Second, other.name+" taking the router's next session itself", func() bool {
		return metric(t, other, "meshd_bmp_routes ") == float64(routes)
	})
}

// subscribeAll sends sl (for every router, in PROTO) on a new Subscribe.
func subscribeAll(t *testing.T, ctx context.Context, cc *grpc.ClientConn, sl *gpb.SubscriptionList) gpb.GNMI_SubscribeClient {
	t.Helper()
	st, err := gpb.NewGNMIClient(cc).Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sl.Prefix, sl.Encoding = &gpb.Path{Target: "*"}, gpb.Encoding_PROTO
	if err := st.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: sl}}); err != nil {
		t.Fatal(err)
	}
	return st
}

// splitPair waits until both of two replicas own some of a 4-router
// fleet, and returns one router, its owner and the other replica.
func splitPair(t *testing.T, rs []*replica) (owner, other *replica, router string) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, "both replicas owning targets", func() bool {
		a, b := rs[0].synced(t), rs[1].synced(t)
		if len(a)+len(b) != 4 || len(a) == 0 || len(b) == 0 {
			return false
		}
		for name := range b {
			owner, other, router = rs[1], rs[0], name
		}
		return true
	})
	return owner, other, router
}

// bmpRouter acts as a BMP router sending stream to a replica's BMP port
// until done: when the replica ends the session (a replica still
// settling, a session handed over to the owner), it connects again a
// second later and sends the stream afresh. It returns the last
// connection and how many it made.
func bmpRouter(t *testing.T, port int, stream []byte, timeout time.Duration, what string, done func() bool) (net.Conn, int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	conns := 0
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns++
		if _, err := c.Write(stream); err != nil {
			t.Logf("connection %d: %v; connecting again", conns, err)
			time.Sleep(time.Second)
			continue
		}
		for time.Now().Before(deadline) {
			if done() {
				return c, conns
			}
			// A replica never sends a router data: a read ends with the
			// session, or times out while it lasts.
			_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Logf("connection %d ended by the replica (%v); connecting again", conns, err)
				time.Sleep(time.Second)
				break
			}
		}
	}
	t.Fatalf("timed out after %v waiting for %s (%d connections)", timeout, what, conns)
	return nil, conns
}

// TestClusterGetAnswersForTheFleet: a Get on any replica's gNMI target
// answers for every router of the fleet, each once, though each replica
// collects a third; a Get for one router answers from its owner.
func TestClusterGetAnswersForTheFleet(t *testing.T) {
	e := testenv.StartEtcd(t)
	const fleet = 12
	sim := startFleet(t, fleet)
	rs := startReplicas(t, e, sim, 3, with{gnmi: true})
	testenv.WaitFor(t, 30*time.Second, "every target synced on one replica", func() bool {
		n := 0
		for _, r := range rs {
			for _, ok := range r.synced(t) {
				if ok {
					n++
				}
			}
		}
		return n == fleet
	})
	path := &gpb.Path{Elem: []*gpb.PathElem{{Name: "network-instances"}}}
	// openconfig/gnmi's own client asks (the project's reference client).
	cli := testenv.Binary(t, "gnmi_cli")
	get := func(r *replica, target string) (map[string]int, error) {
		req := &gpb.GetRequest{Prefix: &gpb.Path{Target: target}, Path: []*gpb.Path{path}, Encoding: gpb.Encoding_JSON_IETF}
		out, err := exec.Command(cli, "-address", fmt.Sprintf("127.0.0.1:%d", r.gnmi), "-insecure", "-timeout", "10s",
			"-get", "-proto", prototext.Format(req)).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("gnmi_cli: %v: %s", err, out)
		}
		resp := &gpb.GetResponse{}
		if err := prototext.Unmarshal(out, resp); err != nil {
			return nil, fmt.Errorf("gnmi_cli printed no GetResponse: %v: %s", err, out)
		}
		seen := map[string]int{}
		for _, n := range resp.GetNotification() {
			seen[n.GetPrefix().GetTarget()]++
		}
		return seen, nil
	}
	// The routers' state reaches each owner's tree a moment after sync.
	for _, r := range rs {
		var seen map[string]int
		var err error
		testenv.WaitFor(t, 15*time.Second, r.name+" answering for the whole fleet", func() bool {
			seen, err = get(r, "*")
			return err == nil && len(seen) == fleet
		})
		for target, n := range seen {
			if n != 1 {
				t.Errorf("%s answered for %s %d times", r.name, target, n)
			}
		}
		t.Logf("%s (collecting %d) answered a Get of * for %d routers", r.name, len(r.synced(t)), len(seen))
	}
	for name := range rs[1].synced(t) {
		seen, err := get(rs[0], name)
		if err != nil || seen[name] != 1 {
			t.Errorf("%s answering for %s, owned by %s: %v %v", rs[0].name, name, rs[1].name, seen, err)
		}
		break
	}

	// Subscribe on one replica: ONCE gives every router's state and one
	// sync_response; STREAM goes on with changes of routers the others
	// collect.
	cc, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", rs[0].gnmi), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	local := rs[0].synced(t)
	for _, mode := range []gpb.SubscriptionList_Mode{gpb.SubscriptionList_ONCE, gpb.SubscriptionList_STREAM} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		st, err := gpb.NewGNMIClient(cc).Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: &gpb.SubscriptionList{
			Prefix: &gpb.Path{Target: "*"}, Mode: mode, Encoding: gpb.Encoding_PROTO,
			Subscription: []*gpb.Subscription{{Path: path, Mode: gpb.SubscriptionMode_ON_CHANGE}}}}}); err != nil {
			t.Fatal(err)
		}
		before, after, syncs := map[string]bool{}, map[string]bool{}, 0
		for {
			r, err := st.Recv()
			if err != nil {
				if mode == gpb.SubscriptionList_ONCE && errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("%v: %v", mode, err)
			}
			if r.GetSyncResponse() {
				syncs++
				if mode == gpb.SubscriptionList_ONCE {
					continue
				}
			}
			if n := r.GetUpdate(); n != nil {
				if syncs == 0 {
					before[n.GetPrefix().GetTarget()] = true
				} else {
					after[n.GetPrefix().GetTarget()] = true
				}
			}
			remote := 0
			for name := range after {
				if !local[name] {
					remote++
				}
			}
			if mode == gpb.SubscriptionList_STREAM && remote >= 3 {
				break
			}
		}
		cancel()
		if len(before) != fleet || syncs != 1 {
			t.Errorf("%v on %s: %d routers before one sync_response (%d sync_responses), want %d", mode, rs[0].name, len(before), syncs, fleet)
		}
		t.Logf("%v on %s: %d routers in the initial state, %d sync_response; after it, changes of %d routers", mode, rs[0].name, len(before), syncs, len(after))
	}

	// A replica dies under a STREAM of every router: the subscription
	// spans replicas that no longer answer for the fleet, and ends with
	// Unavailable, so that its client subscribes again.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := subscribeAll(t, ctx, cc, &gpb.SubscriptionList{Mode: gpb.SubscriptionList_STREAM, UpdatesOnly: true,
		Subscription: []*gpb.Subscription{{Path: path, Mode: gpb.SubscriptionMode_ON_CHANGE}}})
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_ = rs[2].cmd.Process.Kill()
	_ = rs[2].cmd.Wait()
	for {
		_, err := st.Recv()
		if err == nil {
			continue
		}
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("a STREAM of * after a replica died ended with %v, want Unavailable", err)
		}
		t.Logf("a STREAM of * ended %v after a replica's kill -9: %v", time.Since(killed).Round(100*time.Millisecond), err)
		break
	}
}

var built struct {
	once sync.Once
	dir  string
	err  error
}

// meshdBinary builds meshd once for the package's cluster tests.
func meshdBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "meshd-cluster-test"); built.err != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(built.dir, "meshd"), ".").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return filepath.Join(built.dir, "meshd")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// TestClusterServesRIBs: a router's BMP, relayed to its owner, is in that
// replica's RIBs; the other replica's gNMI target serves them all the
// same: a Get for the router, and a ONCE of every router's RIB, hold its
// routes, each once.
func TestClusterServesRIBs(t *testing.T) {
	e := testenv.StartEtcd(t)
	sim := startFleet(t, 4)
	rs := startReplicas(t, e, sim, 2, with{bmp: true, gnmi: true})
	owner, other, router := splitPair(t, rs)
	var buf bytes.Buffer
	_, routes, err := bmpgen.WriteTable(&buf, bmpgen.TableConfig{SysName: router, Peers: 2, Routes: 300, NewAttrShare: 0.35, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	bmpRouter(t, other.bmp, buf.Bytes(), 60*time.Second, fmt.Sprintf("the owner %s holding the %d routes of %s", owner.name, routes, router), func() bool {
		return metric(t, owner, "meshd_bmp_routes ") == float64(routes)
	})
	testenv.WaitFor(t, 10*time.Second, other.name+" holding none of the routes: they are its peer's to serve", func() bool {
		return metric(t, other, "meshd_bmp_routes ") == 0
	})
	cc, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", other.gnmi), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ribPath, err := change.ParsePath("/network-instances/network-instance[name=*]/protocols/protocol[identifier=BGP][name=BGP]/bgp/rib/afi-safis")
	if err != nil {
		t.Fatal(err)
	}
	// countRoutes counts the route entries of target's notifications.
	countRoutes := func(ns []*gpb.Notification) map[string]int {
		seen := map[string]map[string]bool{}
		for _, n := range ns {
			tg := n.GetPrefix().GetTarget()
			if seen[tg] == nil {
				seen[tg] = map[string]bool{}
			}
			for _, u := range n.GetUpdate() {
				if el := u.GetPath().GetElem(); len(el) > 0 && el[0].GetName() == "route" {
					seen[tg][change.PathKey(&gpb.Path{Elem: append(append([]*gpb.PathElem{}, n.GetPrefix().GetElem()...), el[0])})] = true
				}
			}
		}
		out := map[string]int{}
		for tg, rs := range seen {
			out[tg] = len(rs)
		}
		return out
	}
	resp, err := gpb.NewGNMIClient(cc).Get(context.Background(), &gpb.GetRequest{Prefix: &gpb.Path{Target: router}, Path: []*gpb.Path{ribPath}, Encoding: gpb.Encoding_PROTO})
	if err != nil {
		t.Fatalf("Get of %s's RIB on %s: %v", router, other.name, err)
	}
	if got := countRoutes(resp.GetNotification()); got[router] != routes || len(got) != 1 {
		t.Errorf("Get of %s's RIB on %s: routes by router %v, want %d of %s", router, other.name, got, routes, router)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := subscribeAll(t, ctx, cc, &gpb.SubscriptionList{Mode: gpb.SubscriptionList_ONCE, Subscription: []*gpb.Subscription{{Path: ribPath}}})
	var ns []*gpb.Notification
	syncs := 0
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.GetSyncResponse() {
			syncs++
		}
		if n := r.GetUpdate(); n != nil {
			ns = append(ns, n)
		}
	}
	if got := countRoutes(ns); got[router] != routes || len(got) != 1 || syncs != 1 {
		t.Errorf("ONCE of every router's RIB on %s: routes by router %v and %d sync_responses, want %d of %s and one", other.name, got, syncs, routes, router)
	}
}
