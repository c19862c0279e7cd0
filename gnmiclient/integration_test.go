//go:build integration

package gnmiclient

import (
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/openconfig/ondatra/gnmi/oc"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/gnmitarget"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/merge"
	"github.com/meshd/meshd/probe"
	"github.com/meshd/meshd/probe/capture"
	mygot "github.com/meshd/meshd/ygot"
)

func serveTarget(t *testing.T, opts ...gnmitarget.Option) (*gnmitarget.Server, string) {
	t.Helper()
	srv, err := gnmitarget.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return srv, lis.Addr().String()
}

func publisher(srv *gnmitarget.Server, router string) func([]change.Change) {
	return func(chs []change.Change) {
		ups := make([]change.Update, len(chs))
		for i, c := range chs {
			ups[i] = change.Update{Router: c.Router, Path: c.Path, Key: change.PathKey(c.Path), Value: c.Value, Time: c.Time, Source: c.Source}
		}
		srv.Update(router, ups)
	}
}

// meshd's probe agent, measuring a recorded session, serves its results
// through meshd's gNMI target; the client collects them with the built-in
// meshd-probe subscription into the merge core.
func TestIntegrationProbeAgent(t *testing.T) {
	srv, addr := serveTarget(t, gnmitarget.WithModels(mygot.ΓModelData...))
	a := probe.New(probe.Config{Router: "r1", LocalAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, Publish: publisher(srv, "r1")}, false)
	r, err := capture.OpenFile(filepath.Join("..", "probe", "testdata", "ethernet-v4-ts.pcap"))
	if err != nil {
		t.Fatalf("probe fixture: %v", err)
	}
	defer r.Close()
	for {
		f, err := r.Next()
		if err != nil {
			break
		}
		f.Data = append([]byte(nil), f.Data...)
		a.Handle(&f)
	}
	sub := BuiltinSubscriptions()["meshd-probe"]
	sub.Target = "r1"
	core := newCore(t)
	c, _ := runClient(t, Config{
		Targets:       map[string]*Target{"r1": fast(&Target{Address: addr, Subscriptions: []string{"probe"}})},
		Subscriptions: map[string]*Subscription{"probe": sub},
	}, core)
	waitFor(t, 10*time.Second, "probe leaves in the merge core", func() bool {
		v, _, src, ok := core.Leaf("r1", change.MeshdNeighborPath("default", "192.0.2.2", "probe", "state", "samples"))
		return ok && v.GetUintVal() > 0 && src == change.SourceProbe // the probe's, though collected over gNMI
	})
	core.View("r1", func(_ *oc.Root, m *mygot.Root) {
		p := m.GetMeshd().GetNetworkInstance("default").GetNeighbor("192.0.2.2").GetProbe()
		if p.GetRttLast() <= 0 || p.GetHops() == 0 {
			t.Errorf("probe state rtt-last %v hops %d", p.GetRttLast(), p.GetHops())
		}
	})
	if st := statusOf(c, "r1"); st.State != StateSynced || st.Unknown != 0 || st.Invalid != 0 {
		t.Errorf("status = %+v", st)
	}
}

// meshd's own gNMI target with TLS and credentials, serving OpenConfig
// neighbor state, read with the default BGP subscription.
func TestIntegrationMeshdTarget(t *testing.T) {
	pki := testenv.NewPKI(t)
	ocs, _, err := merge.Schemas()
	if err != nil {
		t.Fatal(err)
	}
	srv, addr := serveTarget(t, gnmitarget.WithTLS(pki.ServerCert, pki.ServerKey, ""), gnmitarget.WithCredentials("meshd", "pw"),
		gnmitarget.WithSchema(ocs.RootSchema()))
	pub := publisher(srv, "edge1")
	now := time.Now()
	pub([]change.Change{
		{Router: "edge1", Path: change.NeighborPath("default", "10.0.0.1", "state", "session-state"), Value: change.String("ESTABLISHED"), Time: now},
		{Router: "edge1", Path: change.NeighborPath("default", "10.0.0.1", "state", "peer-as"), Value: change.Uint(65001), Time: now},
		{Router: "edge1", Path: change.AfiSafiPath("default", "10.0.0.1", "IPV4_UNICAST", "state", "prefixes", "received"), Value: change.Uint(42), Time: now},
	})
	sub := BuiltinSubscriptions()["bgp-neighbors"]
	sub.Target = "edge1"
	core := newCore(t)
	c, _ := runClient(t, Config{
		Targets:       map[string]*Target{"edge1": fast(&Target{Address: addr, TLSCA: pki.CAFile, Username: "meshd", Password: "pw", Subscriptions: []string{"bgp"}})},
		Subscriptions: map[string]*Subscription{"bgp": sub},
	}, core)
	waitFor(t, 10*time.Second, "neighbor state from meshd's target", func() bool {
		v, _, _, ok := core.Leaf("edge1", change.AfiSafiPath("default", "10.0.0.1", "IPV4_UNICAST", "state", "prefixes", "received"))
		return ok && v.GetUintVal() == 42
	})
	pub([]change.Change{{Router: "edge1", Path: change.NeighborPath("default", "10.0.0.1", "state", "session-state"), Value: change.String("IDLE"), Time: time.Now()}})
	waitFor(t, 10*time.Second, "a live change", func() bool {
		v, _, _, _ := core.Leaf("edge1", change.NeighborPath("default", "10.0.0.1", "state", "session-state"))
		return v.GetStringVal() == "IDLE"
	})
	if st := statusOf(c, "edge1"); st.State != StateSynced || st.Invalid != 0 {
		t.Errorf("status = %+v", st)
	}
}
