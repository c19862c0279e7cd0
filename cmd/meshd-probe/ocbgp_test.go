package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ondatra/gnmi/oc"
	"github.com/openconfig/ygot/ygot"
	"github.com/openconfig/ygot/ytypes"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/gnmitarget"
	"github.com/meshd/meshd/probe/bgpstate"
	"github.com/meshd/meshd/schema"
	mygot "github.com/meshd/meshd/ygot"
	"github.com/meshd/meshd/ygot/ocbgp"
)

func p32(v uint32) *uint32 { return &v }

// ocLeaves are the OpenConfig leaves the agent publishes with --bgp: every
// leaf Neighbor.Leaves can produce, for every AFI-SAFI name the FRR and
// gobgp readers map to, in the default and a named instance, over IPv4
// and IPv6; and what the readers make of their recorded fixtures.
func ocLeaves(t *testing.T) []bgpstate.Leaf {
	t.Helper()
	var ns []bgpstate.Neighbor
	afs := []string{"IPV4_UNICAST", "IPV6_UNICAST", "IPV4_LABELED_UNICAST", "IPV6_LABELED_UNICAST",
		"L3VPN_IPV4_UNICAST", "L3VPN_IPV6_UNICAST", "L2VPN_EVPN", "IPV4_FLOWSPEC"}
	for i, ni := range []string{"default", "blue"} {
		for j, addr := range []string{"10.9.0.2", "fd00:9::2"} {
			n := bgpstate.Neighbor{NetworkInstance: ni, Address: addr, State: "ESTABLISHED",
				PeerAS: 65002, LocalAS: 4200000003, EstablishedTransitions: 3, HasTransitions: true,
				LastEstablished: time.Unix(1795293205, 0), Sent: bgpstate.Messages{Update: 4, Notification: 1},
				Received: bgpstate.Messages{Update: 2, Notification: 2}, NegotiatedHoldTime: 9}
			if i+j == 1 {
				n.State = "OPENCONFIRM"
			}
			for k, af := range afs {
				v := uint32(k)
				n.AfiSafis = append(n.AfiSafis, bgpstate.AfiSafi{Name: af, Received: p32(v), ReceivedPrePolicy: p32(v + 1), Sent: p32(v + 2), Installed: p32(v + 3)})
			}
			ns = append(ns, n)
		}
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "probe", "bgpstate", "testdata", "frr-8.4-neighbors.json"))
	if err != nil {
		t.Fatal(err)
	}
	frr, _, err := bgpstate.ParseFRRNeighbors(b, "red")
	if err != nil {
		t.Fatal(err)
	}
	if len(frr) == 0 {
		t.Fatal("no neighbor in FRR's fixture")
	}
	ns = append(ns, frr...)
	var ls []bgpstate.Leaf
	for i := range ns {
		ls = append(ls, ns[i].Leaves()...)
	}
	return ls
}

// The agent types its OpenConfig leaves by ygot/ocbgp, the collector by
// ondatra's whole OpenConfig binding: every leaf the agent publishes, and
// the subtrees above them, must read the same from both in every
// encoding (JSON_IETF is where the schema shows: uint64 as a string,
// identityrefs and the keys' leafrefs qualified with their module).
func TestOCBindingMatchesCollector(t *testing.T) {
	opts, err := schemaOptions(true)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := gnmitarget.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	ocs, ms, err := schema.Schemas()
	if err != nil {
		t.Fatal(err)
	}
	collector, err := gnmitarget.New(gnmitarget.WithSchema(ocs.RootSchema(), ms.RootSchema()),
		gnmitarget.WithEnumTypes(oc.ΛEnumTypes, mygot.ΛEnumTypes))
	if err != nil {
		t.Fatal(err)
	}
	const router = "r1"
	ls := ocLeaves(t)
	ups := make([]change.Update, len(ls))
	for i, l := range ls {
		ups[i] = change.Update{Router: router, Path: l.Path, Key: change.PathKey(l.Path), Value: l.Value, Time: time.Unix(1795293205, 0)}
	}
	agent.Update(router, ups)
	collector.Update(router, ups)

	paths := []*gpb.Path{
		{Elem: []*gpb.PathElem{{Name: "network-instances"}}},
		change.NeighborPath("default", "10.9.0.2"),
		change.AfiSafiPath("blue", "fd00:9::2", "L2VPN_EVPN"),
	}
	for _, l := range ls {
		paths = append(paths, l.Path)
	}
	get := func(s *gnmitarget.Server, p *gpb.Path, enc gpb.Encoding) string {
		resp, err := s.Get(context.Background(), &gpb.GetRequest{Prefix: &gpb.Path{Target: router}, Path: []*gpb.Path{p}, Encoding: enc})
		if err != nil {
			return "error: " + err.Error()
		}
		for _, n := range resp.GetNotification() {
			n.Timestamp = 0
		}
		return prototext.Format(resp)
	}
	checked := 0
	for _, p := range paths {
		for _, enc := range []gpb.Encoding{gpb.Encoding_JSON_IETF, gpb.Encoding_JSON, gpb.Encoding_PROTO} {
			a, c := get(agent, p, enc), get(collector, p, enc)
			if a != c {
				t.Errorf("%s %v:\nagent:     %s\ncollector: %s", change.PathKey(p), enc, a, c)
			}
			if strings.HasPrefix(c, "error") {
				t.Errorf("%s %v: the collector refuses it: %s", change.PathKey(p), enc, c)
			}
			checked++
		}
	}
	if checked < 3*100 {
		t.Errorf("checked only %d leaf readings", checked)
	}
}

// The agent's trimmed schema has an entry for every leaf it publishes
// (gnmitarget types a leaf without one by its value alone, which the
// comparison with the collector would catch only for some kinds).
func TestOCBindingHasEveryLeaf(t *testing.T) {
	ocs, err := ocbgp.Schema()
	if err != nil {
		t.Fatal(err)
	}
	root := ocs.RootSchema()
	for _, l := range ocLeaves(t) {
		e := root
		for _, el := range l.Path.GetElem() {
			if e = e.Dir[el.GetName()]; e == nil {
				t.Errorf("%s: no schema entry for %q", change.PathKey(l.Path), el.GetName())
				break
			}
		}
		if e != nil && !e.IsLeaf() {
			t.Errorf("%s: schema entry is not a leaf", change.PathKey(l.Path))
		}
	}
}

// Every leaf the agent publishes is accepted by the collector's schema as
// by the agent's (ytypes.SetNode, as the merge core sets it), lands in the
// same typed field (the two trees emit the same RFC 7951 JSON), and a
// value either refuses, both refuse.
func TestOCBindingTypesLikeCollector(t *testing.T) {
	ocs, _, err := schema.Schemas()
	if err != nil {
		t.Fatal(err)
	}
	bgps, err := ocbgp.Schema()
	if err != nil {
		t.Fatal(err)
	}
	collector, agent := &oc.Root{}, &ocbgp.Root{}
	set := func(root ygot.GoStruct, sch *ytypes.Schema, p *gpb.Path, v *gpb.TypedValue) error {
		return ytypes.SetNode(sch.RootSchema(), root, p, v, &ytypes.InitMissingElements{})
	}
	for _, l := range ocLeaves(t) {
		if err := set(collector, ocs, l.Path, l.Value); err != nil {
			t.Errorf("%s: the collector's schema refuses %v: %v", change.PathKey(l.Path), l.Value, err)
		}
		if err := set(agent, bgps, l.Path, l.Value); err != nil {
			t.Errorf("%s: the agent's schema refuses %v: %v", change.PathKey(l.Path), l.Value, err)
		}
	}
	emit := func(root ygot.GoStruct) string {
		s, err := ygot.EmitJSON(root, &ygot.EmitJSONConfig{Format: ygot.RFC7951, Indent: " ", SkipValidation: true,
			RFC7951Config: &ygot.RFC7951JSONConfig{AppendModuleName: true, PrependModuleNameIdentityref: true}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if c, a := emit(collector), emit(agent); c != a {
		t.Errorf("the trees differ:\ncollector: %s\nagent:     %s", c, a)
	} else if !strings.Contains(a, `"openconfig-bgp-types:L2VPN_EVPN"`) || !strings.Contains(a, `"OPENCONFIRM"`) {
		t.Errorf("the tree lacks the typed values it was given: %s", a)
	}

	nb := change.NeighborPath("default", "10.9.0.2", "state")
	bad := []struct {
		name string
		path *gpb.Path
		v    *gpb.TypedValue
	}{
		{"session-state not in the enum", change.NeighborPath("default", "10.9.0.2", "state", "session-state"), change.String("UP")},
		{"peer-as as a string", change.NeighborPath("default", "10.9.0.2", "state", "peer-as"), change.String("65002")},
		{"unknown AFI-SAFI", change.AfiSafiPath("default", "10.9.0.2", "IPV5_UNICAST", "state", "prefixes", "received"), change.Uint(1)},
		{"prefix count beyond uint32", change.AfiSafiPath("default", "10.9.0.2", "IPV4_UNICAST", "state", "prefixes", "sent"), change.Uint(1 << 33)},
		{"no such leaf", &gpb.Path{Elem: append(nb.GetElem(), &gpb.PathElem{Name: "no-such-leaf"})}, change.Uint(1)},
	}
	for _, tc := range bad {
		ce := set(&oc.Root{}, ocs, tc.path, tc.v)
		ae := set(&ocbgp.Root{}, bgps, tc.path, tc.v)
		if ce == nil || ae == nil {
			t.Errorf("%s: collector's schema: %v, agent's: %v; want both to refuse", tc.name, ce, ae)
		}
	}
}
