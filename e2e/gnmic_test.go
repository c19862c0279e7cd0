//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/gnmic/pkg/api"
	"github.com/openconfig/gnmic/pkg/api/target"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/bmpbridge"
	"github.com/meshd/meshd/internal/netns"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/merge"
	"github.com/meshd/meshd/sinks/gnmiserver"
)

// TestGnmicSubscribesToMeshd: gnmic's own client code (pkg/api: its
// target, its gRPC dial, its Subscribe) subscribes to meshd's gNMI target,
// which is fed by a real gobgpd over BMP; what gnmic receives for the
// neighbor is what gobgpd itself says about it (its CLI's JSON), while
// the session is up and after the peer goes away.
func TestGnmicSubscribesToMeshd(t *testing.T) {
	testenv.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	core, err := merge.New(merge.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	sink := startSink(t, ctx, core, gnmiserver.Config{}, prometheus.NewRegistry())

	// gnmic subscribes before any router exists, as an operator's
	// gnmic would: the router appears under its own target name.
	tg := gnmicTarget(t, ctx, "meshd", sink.Addr().String())
	const nbr = "/network-instances/network-instance[name=*]/protocols/protocol[identifier=*][name=*]/bgp/neighbors/neighbor[neighbor-address=*]/state"
	req, err := api.NewSubscribeRequest(
		api.Target("*"), api.SubscriptionListModeSTREAM(), api.EncodingPROTO(),
		api.Subscription(api.Path(nbr), api.SubscriptionModeON_CHANGE()),
	)
	if err != nil {
		t.Fatal(err)
	}
	rsps, errs := tg.SubscribeStreamChan(ctx, req, "e2e")
	got := newLeafLog()
	go func() {
		for {
			select {
			case r, ok := <-rsps:
				if !ok {
					return
				}
				got.add(r)
			case err, ok := <-errs:
				if !ok {
					return
				}
				got.fail(err)
			case <-ctx.Done():
				return
			}
		}
	}()

	r1, r2 := startGobgpPair(t, ctx, core)

	// Up: session-state and the ASes as gobgpd in r1 has them.
	testenv.WaitFor(t, 60*time.Second, "gnmic to see r1's neighbor 10.90.0.2 ESTABLISHED", func() bool {
		return got.leaf("r1", "10.90.0.2", "session-state") == "ESTABLISHED"
	})
	gb := gobgpNeighbor(t, r1, "10.90.0.2")
	if gb.state != "ESTABLISHED" {
		t.Fatalf("gobgpd in r1 says %s toward 10.90.0.2, gnmic saw ESTABLISHED", gb.state)
	}
	t.Logf("gobgpd in r1: %s, peer-as %s, local-as %s", gb.state, gb.peerAS, gb.localAS)
	for leaf, want := range map[string]string{"peer-as": gb.peerAS, "local-as": gb.localAS} {
		testenv.WaitFor(t, 10*time.Second, "gnmic to see "+leaf+" "+want, func() bool {
			return got.leaf("r1", "10.90.0.2", leaf) == want
		})
	}

	// Down: r2 goes away; gobgpd in r1 and gnmic both see the session
	// leave ESTABLISHED.
	r2.Stop()
	testenv.WaitFor(t, 60*time.Second, "gnmic to see r1's neighbor leave ESTABLISHED", func() bool {
		s := got.leaf("r1", "10.90.0.2", "session-state")
		return s != "" && s != "ESTABLISHED"
	})
	testenv.WaitFor(t, 30*time.Second, "gobgpd in r1 to agree", func() bool {
		return gobgpNeighbor(t, r1, "10.90.0.2").state != "ESTABLISHED"
	})
	if err := got.err(); err != nil {
		t.Errorf("gnmic's subscription: %v", err)
	}
	t.Logf("gnmic saw %d notifications; r1's neighbor now %s", got.count(), got.leaf("r1", "10.90.0.2", "session-state"))
}

// gnmicTarget is gnmic's client (pkg/api) of meshd's gNMI target at
// addr, named name in gnmic, closed with the test.
func gnmicTarget(t *testing.T, ctx context.Context, name, addr string) *target.Target {
	t.Helper()
	tg, err := api.NewTarget(api.Name(name), api.Address(addr), api.Insecure(true), api.Timeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.CreateGNMIClient(ctx); err != nil {
		t.Fatalf("gnmic CreateGNMIClient: %v", err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

// startGobgpPair runs two gobgpd speakers in namespaces with eBGP
// between them; r1 exports BMP to meshd's listener in a collector
// namespace.
func startGobgpPair(t *testing.T, ctx context.Context, core *merge.Core, opts ...bmpbridge.Option) (r1d, r2d *testenv.Daemon) {
	t.Helper()
	r1 := testenv.NewNetns(t, "r1")
	r2 := testenv.NewNetns(t, "r2")
	col := testenv.NewNetns(t, "col")
	testenv.Veth(t, r1, r2, []string{"10.90.0.1/30"}, []string{"10.90.0.2/30"})
	testenv.Veth(t, r1, col, []string{"10.91.0.1/30"}, []string{"10.91.0.2/30"})
	br, err := bmpbridge.New(core, append([]bmpbridge.Option{bmpbridge.WithRegisterer(prometheus.NewRegistry())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := netns.Listen(col.Name, "10.91.0.2:11019")
	if err != nil {
		t.Fatalf("BMP listener in %s: %v", col.Name, err)
	}
	go func() { _ = br.Serve(ctx, ln) }()
	t.Cleanup(func() { _ = br.Close() })
	r2d = testenv.StartGobgpd(t, r2, gobgpConf(asn2, asn1, "10.255.0.2", "10.90.0.1", ""))
	r1d = testenv.StartGobgpd(t, r1, gobgpConf(asn1, asn2, "10.255.0.1", "10.90.0.2", "10.91.0.2"))
	return r1d, r2d
}

type gobgpView struct{ state, peerAS, localAS string }

// gobgpNeighbor asks gobgpd itself (its CLI's JSON) about a neighbor.
func gobgpNeighbor(t *testing.T, d *testenv.Daemon, addr string) gobgpView {
	t.Helper()
	out := d.Gobgp(t, "neighbor", addr, "-j")
	var n struct {
		Conf struct {
			PeerASN  json.Number `json:"peer_asn"`
			LocalASN json.Number `json:"local_asn"`
		} `json:"conf"`
		State struct {
			SessionState json.RawMessage `json:"session_state"`
			PeerASN      json.Number     `json:"peer_asn"`
		} `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &n); err != nil {
		t.Fatalf("gobgp neighbor %s -j: %v: %s", addr, err, out)
	}
	s := strings.Trim(string(n.State.SessionState), `"`)
	// gobgp's CLI prints its API enum (api.PeerState_SessionState) as a
	// number.
	states := []string{"UNKNOWN", "IDLE", "CONNECT", "ACTIVE", "OPENSENT", "OPENCONFIRM", "ESTABLISHED"}
	if i, err := strconv.Atoi(s); err == nil && i >= 0 && i < len(states) {
		s = states[i]
	}
	v := gobgpView{state: strings.ToUpper(s), peerAS: n.State.PeerASN.String(), localAS: n.Conf.LocalASN.String()}
	if v.peerAS == "" {
		v.peerAS = n.Conf.PeerASN.String()
	}
	if v.peerAS == "" || v.localAS == "" {
		t.Fatalf("gobgp neighbor %s -j: no peer_asn or local_asn in %s", addr, out)
	}
	return v
}

// leafLog keeps the last value gnmic received for each neighbor leaf.
type leafLog struct {
	mu    sync.Mutex
	vals  map[string]string // "router neighbor leaf" -> value
	n     int
	first error
}

func newLeafLog() *leafLog { return &leafLog{vals: map[string]string{}} }

func (l *leafLog) add(r *gpb.SubscribeResponse) {
	n := r.GetUpdate()
	if n == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	router := n.GetPrefix().GetTarget()
	for _, u := range n.GetUpdate() {
		elems := append(append([]*gpb.PathElem(nil), n.GetPrefix().GetElem()...), u.GetPath().GetElem()...)
		var addr string
		for _, e := range elems {
			if e.GetName() == "neighbor" {
				addr = e.GetKey()["neighbor-address"]
			}
		}
		if len(elems) == 0 || addr == "" {
			continue
		}
		l.vals[router+" "+addr+" "+elems[len(elems)-1].GetName()] = typedString(u.GetVal())
	}
}

func (l *leafLog) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.first == nil {
		l.first = err
	}
}

func (l *leafLog) leaf(router, addr, leaf string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.vals[router+" "+addr+" "+leaf]
}

func (l *leafLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func (l *leafLog) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}

// typedString renders a scalar TypedValue as gobgp's JSON prints it.
func typedString(v *gpb.TypedValue) string {
	switch x := v.GetValue().(type) {
	case *gpb.TypedValue_StringVal:
		return x.StringVal
	case *gpb.TypedValue_UintVal:
		return strconv.FormatUint(x.UintVal, 10)
	case *gpb.TypedValue_IntVal:
		return strconv.FormatInt(x.IntVal, 10)
	case *gpb.TypedValue_BoolVal:
		return strconv.FormatBool(x.BoolVal)
	}
	return fmt.Sprint(v.GetValue())
}
