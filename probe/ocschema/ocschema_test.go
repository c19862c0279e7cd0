package ocschema

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/goyang/pkg/yang"
	"github.com/openconfig/ondatra/gnmi/oc"
	"github.com/openconfig/ygot/ygot"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/gnmitarget"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/probe/bgpstate"
	mygot "github.com/meshd/meshd/ygot"
)

// The oracle is ygot's generated OpenConfig binding, the schema the probe
// served with before this package: its tree, its ΛEnumTypes, and a
// gnmitarget server built with them as the probe built it.

// full is the generated binding's schema root.
func full() *yang.Entry { return oc.SchemaTree["Root"] }

// facts is what gnmitarget reads of an entry, as text.
func facts(e *yang.Entry) string {
	if e == nil {
		return "<none>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "kind=%v list=%v key=%q choice=%v case=%v", e.Kind, e.IsList(), e.Key, e.IsChoice(), e.IsCase())
	if sp, ok := e.Annotation["schemapath"]; ok {
		fmt.Fprintf(&b, " schemapath=%v", sp)
	}
	if t := e.Type; t != nil {
		fmt.Fprintf(&b, " type=%v", t.Kind)
		if t.Path != "" {
			fmt.Fprintf(&b, " leafref=%q", t.Path)
		}
		for _, u := range t.Type {
			fmt.Fprintf(&b, " member=%v", u.Kind)
		}
	}
	return b.String()
}

// walk calls f for each entry below e with its schema path.
func walk(e *yang.Entry, path string, f func(string, *yang.Entry)) {
	for _, name := range slices.Sorted(maps.Keys(e.Dir)) {
		c := e.Dir[name]
		f(path+"/"+name, c)
		walk(c, path+"/"+name, f)
	}
}

// lookup finds the entry at a schema path.
func lookup(root *yang.Entry, path string) *yang.Entry {
	e := root
	for _, name := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		if e = e.Dir[name]; e == nil {
			return nil
		}
	}
	return e
}

// ocIdentityModules is what gnmitarget makes of oc.ΛEnumTypes for a schema
// path: identity → defining module; nil for enumerations and non-enums.
func ocIdentityModules(path string) map[string]string {
	var out map[string]string
	for _, t := range oc.ΛEnumTypes[path] {
		e, ok := reflect.Zero(t).Interface().(ygot.GoEnum)
		if !ok {
			continue
		}
		for _, d := range e.ΛMap()[t.Name()] {
			if d.DefiningModule != "" {
				if out == nil {
					out = map[string]string{}
				}
				out[d.Name] = d.DefiningModule
			}
		}
	}
	return out
}

// diffSchema lists every fact in which the tree and identity map differ
// from the generated binding, for every node of the tree.
func diffSchema(root *yang.Entry, ids map[string]map[string]string) []string {
	var diffs []string
	walk(root, "", func(p string, e *yang.Entry) {
		if got, want := facts(e), facts(lookup(full(), p)); got != want {
			diffs = append(diffs, fmt.Sprintf("%s: %s, generated %s", p, got, want))
		}
		if e.Kind != yang.LeafEntry {
			return
		}
		if got, want := ids[p], ocIdentityModules(p); !maps.Equal(got, want) {
			diffs = append(diffs, fmt.Sprintf("%s: identities %v, generated %v", p, got, want))
		}
	})
	for p := range ids {
		if e := lookup(root, p); e == nil || e.Kind != yang.LeafEntry {
			diffs = append(diffs, fmt.Sprintf("%s: identities for a path that is no leaf of the tree", p))
		}
	}
	return diffs
}

func TestTableMatchesOpenConfig(t *testing.T) {
	n := 0
	walk(Root(), "", func(string, *yang.Entry) { n++ })
	if n < len(leaves) {
		t.Fatalf("the tree has %d nodes for %d leaves", n, len(leaves))
	}
	for _, d := range diffSchema(Root(), IdentityModules()) {
		t.Error(d)
	}
}

// TestOracleCatchesBrokenTable: the comparison is not one that cannot
// fail. Each broken table must be reported.
func TestOracleCatchesBrokenTable(t *testing.T) {
	broken := func(edit func(map[string]string, map[string]leafType)) (map[string]string, map[string]leafType) {
		ls, lv := maps.Clone(lists), maps.Clone(leaves)
		edit(ls, lv)
		return ls, lv
	}
	for _, tc := range []struct {
		name   string
		module string
		edit   func(map[string]string, map[string]leafType)
	}{
		{"module", "openconfig-bgp", func(map[string]string, map[string]leafType) {}},
		{"key order", Module, func(ls map[string]string, _ map[string]leafType) { ls[protoPath] = "name identifier" }},
		{"uint64 as uint32", Module, func(_ map[string]string, lv map[string]leafType) {
			lv[nbrPath+"/state/established-transitions"] = leafType{kind: yang.Yuint32}
		}},
		{"enumeration as identityref", Module, func(_ map[string]string, lv map[string]leafType) {
			lv[nbrPath+"/state/session-state"] = leafType{kind: yang.Yidentityref}
		}},
		{"identity module", Module, func(_ map[string]string, lv map[string]leafType) {
			ids := maps.Clone(afiSafiTypes)
			ids["IPV4_UNICAST"] = "openconfig-bgp"
			lv[afiPath+"/state/afi-safi-name"] = leafType{kind: yang.Yidentityref, ids: ids}
		}},
		{"missing identity", Module, func(_ map[string]string, lv map[string]leafType) {
			ids := maps.Clone(installProtocolTypes)
			delete(ids, "STATIC")
			lv[protoPath+"/state/identifier"] = leafType{kind: yang.Yidentityref, ids: ids}
		}},
		{"leafref", Module, func(_ map[string]string, lv map[string]leafType) {
			lv[afiPath+"/afi-safi-name"] = leafType{kind: yang.Yleafref, ref: "../config/afi-safi-name"}
		}},
		{"a leaf the binding does not have", Module, func(_ map[string]string, lv map[string]leafType) {
			lv[nbrPath+"/state/uptime"] = leafType{kind: yang.Yuint64}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls, lv := broken(tc.edit)
			if d := diffSchema(build(tc.module, ls, lv), identityModules(lv)); len(d) == 0 {
				t.Error("no difference found")
			} else {
				t.Logf("found: %s", d[0])
			}
		})
	}
}

// schemaPathOf is a data path's schema path: names only.
func schemaPathOf(p *gpb.Path) string {
	var b strings.Builder
	for _, e := range p.GetElem() {
		b.WriteString("/" + e.GetName())
	}
	return b.String()
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "bgpstate", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recorded returns the neighbors bgpstate makes of the daemons' answers
// recorded in its fixtures (FRR 8.4, gobgpd v4.8.0).
func recorded(t *testing.T) map[string][]bgpstate.Neighbor {
	frr, _, err := bgpstate.ParseFRRNeighbors(readFixture(t, "frr-8.4-neighbors.json"), "default")
	if err != nil {
		t.Fatal(err)
	}
	peers := testenv.GoBGPPeers(t, readFixture(t, "gobgp-v4.8.0-listpeer.jsonl"))
	if len(frr) == 0 || len(peers) == 0 {
		t.Fatalf("fixtures hold %d FRR neighbors and %d gobgpd peers", len(frr), len(peers))
	}
	return map[string][]bgpstate.Neighbor{"frr": frr, "gobgp": (&bgpstate.GoBGP{}).Convert(peers)}
}

// everything is a neighbor with every leaf bgpstate can publish, in every
// address family the table names, with 64-bit values beyond 2^53.
func everything() []bgpstate.Neighbor {
	u := func(v uint32) *uint32 { return &v }
	n := bgpstate.Neighbor{NetworkInstance: "blue", Address: "2001:db8::7", State: "OPENCONFIRM", PeerAS: 4200000001, LocalAS: 65001,
		EstablishedTransitions: 1<<63 + 5, HasTransitions: true, LastEstablished: time.Date(2026, 11, 21, 20, 33, 25, 7, time.UTC),
		Sent: bgpstate.Messages{Update: 1 << 60, Notification: 2}, Received: bgpstate.Messages{Update: 3, Notification: 4}, NegotiatedHoldTime: 90}
	for _, name := range slices.Sorted(maps.Keys(afiSafiTypes)) {
		n.AfiSafis = append(n.AfiSafis, bgpstate.AfiSafi{Name: name, Received: u(1), ReceivedPrePolicy: u(2), Sent: u(3), Installed: u(4294967295)})
	}
	return []bgpstate.Neighbor{n}
}

// TestPublishedLeavesInTable: every leaf bgpstate publishes, from the
// recorded daemons' answers and from a neighbor with every field set, is
// a leaf of the table; and every leaf of the table that is no list key
// (nor a leafref's target) is one bgpstate publishes.
func TestPublishedLeavesInTable(t *testing.T) {
	published := map[string]bool{}
	sets := recorded(t)
	sets["everything"] = everything()
	for name, ns := range sets {
		for _, n := range ns {
			for _, l := range n.Leaves() {
				p := schemaPathOf(l.Path)
				published[p] = true
				if e := lookup(Root(), p); e == nil || e.Kind != yang.LeafEntry {
					t.Errorf("%s: %s is published but is no leaf of the table", name, p)
				}
				if e := lookup(full(), p); e == nil || e.Kind != yang.LeafEntry {
					t.Errorf("%s: %s is published but is no leaf of the generated binding", name, p)
				}
			}
		}
	}
	keys := map[string]bool{}
	for lp, ks := range lists {
		for _, k := range strings.Fields(ks) {
			keys[lp+"/"+k] = true
			keys[lp+"/state/"+k] = true
		}
	}
	for p := range leaves {
		if !published[p] && !keys[p] {
			t.Errorf("%s is in the table but bgpstate publishes no such leaf", p)
		}
	}
}

// updates are what the probe hands its gNMI target, per target name: the
// leaves of the recorded neighbors, of the everything neighbor, and a few
// of meshd's own model (served by the same server with its own schema).
func updates(t *testing.T) map[string][]change.Update {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	out := map[string][]change.Update{}
	sets := recorded(t)
	sets["everything"] = everything()
	for name, ns := range sets {
		var ups []change.Update
		for i, n := range ns {
			for j, l := range n.Leaves() {
				ups = append(ups, change.Update{Router: name, Path: l.Path, Key: change.PathKey(l.Path), Value: l.Value,
					Time: t0.Add(time.Duration(i*100+j) * time.Millisecond), Source: change.SourceGNMI})
			}
			mp := change.MeshdNeighborPath(n.NetworkInstance, n.Address, "probe", "state", "samples")
			ups = append(ups, change.Update{Router: name, Path: mp, Key: change.PathKey(mp), Value: change.Uint(1 << 62), Time: t0, Source: change.SourceProbe})
		}
		out[name] = ups
	}
	return out
}

// pair is the probe's gNMI target twice, on loopback: as served with this
// package, and as it was served with the generated binding.
type pair struct {
	sub, gen *gnmitarget.Server
	subC     gpb.GNMIClient
	genC     gpb.GNMIClient
}

func newPair(t *testing.T) *pair {
	t.Helper()
	ms, err := mygot.Schema()
	if err != nil {
		t.Fatal(err)
	}
	models := []*gpb.ModelData{{Name: "openconfig-network-instance", Organization: "OpenConfig working group"}}
	base := []gnmitarget.Option{gnmitarget.WithModels(mygot.ΓModelData...), gnmitarget.WithSchema(ms.RootSchema()), gnmitarget.WithModels(models...)}
	start := func(opts ...gnmitarget.Option) (*gnmitarget.Server, gpb.GNMIClient) {
		s, err := gnmitarget.New(append(slices.Clone(base), opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = s.Serve(lis) }()
		t.Cleanup(s.Stop)
		cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cc.Close() })
		return s, gpb.NewGNMIClient(cc)
	}
	p := &pair{}
	// As cmd/meshd-probe/probe.go builds it, and as it did before.
	p.sub, p.subC = start(Options()...)
	p.gen, p.genC = start(gnmitarget.WithSchema(full()), gnmitarget.WithEnumTypes(oc.ΛEnumTypes))
	return p
}

// update hands both servers the same updates.
func (p *pair) update(target string, ups []change.Update) {
	p.sub.Update(target, ups)
	p.gen.Update(target, ups)
}

// queryPaths are the paths asked for: the root, every node on the way to
// every published leaf (with its keys), and the lists with wildcard keys
// (last).
func queryPaths(ups map[string][]change.Update) []*gpb.Path {
	seen := map[string]bool{}
	var out []*gpb.Path
	add := func(p *gpb.Path) {
		if k := change.PathKey(p); !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	add(&gpb.Path{})
	for _, name := range slices.Sorted(maps.Keys(ups)) {
		for _, u := range ups[name] {
			for i := 1; i <= len(u.Path.GetElem()); i++ {
				add(&gpb.Path{Elem: u.Path.GetElem()[:i]})
			}
		}
	}
	wild := func(elems ...string) *gpb.Path {
		p := change.AfiSafiPath("*", "*", "*", elems...)
		p.Elem[3].Key = map[string]string{"identifier": "*", "name": "*"}
		return p
	}
	add(&gpb.Path{Elem: wild().Elem[:7]})
	add(&gpb.Path{Elem: append(slices.Clone(wild().Elem[:7]), &gpb.PathElem{Name: "state"})})
	add(wild())
	add(wild("state", "prefixes"))
	return out
}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// compare asks both servers the same Gets (every encoding, every target
// and "*", every path), the same Subscribe ONCE (every encoding, up to
// maxSubs paths and the wildcards) and Capabilities, and reports each
// answer that is not the same bytes. It returns every JSON_IETF answer.
func (p *pair) compare(t *testing.T, targets []string, paths []*gpb.Path, maxSubs int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	encs := []gpb.Encoding{gpb.Encoding_JSON_IETF, gpb.Encoding_JSON, gpb.Encoding_PROTO}
	var ietf bytes.Buffer
	gets := 0
	for _, enc := range encs {
		for _, tg := range append(slices.Clone(targets), "*") {
			for _, path := range paths {
				req := &gpb.GetRequest{Prefix: &gpb.Path{Target: tg}, Path: []*gpb.Path{path}, Encoding: enc}
				// Called directly: the wire adds nothing the schema
				// shapes, and 2,000 Gets stay fast under -race.
				a, errA := p.sub.Get(ctx, req)
				b, errB := p.gen.Get(ctx, req)
				if fmt.Sprint(errA) != fmt.Sprint(errB) {
					t.Errorf("Get %v %s %s: error %v, generated %v", enc, tg, change.PathKey(path), errA, errB)
					continue
				}
				if errA != nil {
					continue
				}
				gets++
				sortUpdates(a)
				sortUpdates(b)
				if !bytes.Equal(marshal(t, a), marshal(t, b)) {
					t.Errorf("Get %v %s %s: %s", enc, tg, change.PathKey(path), firstDiff(a, b))
				}
				if enc == gpb.Encoding_JSON_IETF {
					for _, n := range a.GetNotification() {
						for _, u := range n.GetUpdate() {
							ietf.Write(u.GetVal().GetJsonIetfVal())
						}
					}
				}
			}
		}
	}
	if gets < len(paths) {
		t.Errorf("only %d Gets of %d paths had an answer", gets, len(paths))
	}
	t.Logf("%d Get answers compared", gets)

	subPaths := paths
	if len(paths) > maxSubs+4 {
		subPaths = append(slices.Clone(paths[:maxSubs]), paths[len(paths)-4:]...)
	}
	subs := 0
	for _, enc := range encs {
		for _, path := range subPaths {
			req := &gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: &gpb.SubscriptionList{
				Prefix: &gpb.Path{Target: "*"}, Mode: gpb.SubscriptionList_ONCE, Encoding: enc,
				Subscription: []*gpb.Subscription{{Path: path}},
			}}}
			// Sorted: like Get, a ONCE answer to a wildcard comes in
			// a map's order.
			a, b := once(t, p.subC, req), once(t, p.genC, req)
			slices.SortFunc(a, bytes.Compare)
			slices.SortFunc(b, bytes.Compare)
			subs++
			if len(a) != len(b) {
				t.Errorf("Subscribe ONCE %v %s: %d responses, generated %d", enc, change.PathKey(path), len(a), len(b))
				continue
			}
			for i := range a {
				if !bytes.Equal(a[i], b[i]) {
					t.Errorf("Subscribe ONCE %v %s: response %d differs", enc, change.PathKey(path), i)
				}
			}
		}
	}
	t.Logf("%d ONCE subscriptions compared", subs)

	ca, err := p.subC.Capabilities(ctx, &gpb.CapabilityRequest{})
	if err != nil {
		t.Fatal(err)
	}
	cb, err := p.genC.Capabilities(ctx, &gpb.CapabilityRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(marshal(t, ca), marshal(t, cb)) {
		t.Errorf("Capabilities:\n got %v\nwant %v", ca, cb)
	}
	return ietf.String()
}

// TestServesSameAsOpenConfig: the probe's gNMI target answers Get (every
// encoding), Subscribe ONCE and Capabilities byte for byte as it did with
// the generated binding, for every node on the way to every leaf it
// publishes, from the recorded daemons and the everything neighbor.
func TestServesSameAsOpenConfig(t *testing.T) {
	p := newPair(t)
	ups := updates(t)
	for name, u := range ups {
		p.update(name, u)
	}
	paths := queryPaths(ups)
	if len(paths) < 100 {
		t.Fatalf("only %d paths to ask for", len(paths))
	}
	ietf := p.compare(t, slices.Sorted(maps.Keys(ups)), paths, 40)
	// The answers compared are ones the schema shapes: were the schema
	// missing on both sides, they would match too.
	for _, want := range []string{`"openconfig-bgp-types:IPV4_UNICAST"`, `"openconfig-bgp-types:VPNV4_FLOWSPEC"`,
		`"identifier":"openconfig-policy-types:BGP"`, `"established-transitions":"9223372036854775813"`,
		`"UPDATE":"1152921504606846976"`, `"session-state":"OPENCONFIRM"`, `"negotiated-hold-time":90`,
		`"openconfig-network-instance:network-instances":{`, `"openconfig-network-instance:session-state":"OPENCONFIRM"`} {
		if !strings.Contains(ietf, want) {
			t.Errorf("no JSON_IETF answer holds %s", want)
		}
	}
}

// once runs a ONCE subscription to its end and returns its responses,
// marshalled; the error status, if any, as the last.
func once(t *testing.T, c gpb.GNMIClient, req *gpb.SubscribeRequest) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(req); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		r, err := st.Recv()
		if err == io.EOF {
			return out
		}
		if err != nil {
			return append(out, []byte(err.Error()))
		}
		out = append(out, marshal(t, r))
	}
}

// firstDiff describes where two Get answers first differ.
func firstDiff(a, b *gpb.GetResponse) string {
	na, nb := a.GetNotification(), b.GetNotification()
	if len(na) != len(nb) {
		return fmt.Sprintf("%d notifications, generated %d", len(na), len(nb))
	}
	for i := range na {
		ua, ub := na[i].GetUpdate(), nb[i].GetUpdate()
		if len(ua) != len(ub) || na[i].GetTimestamp() != nb[i].GetTimestamp() {
			return fmt.Sprintf("notification %d: %d updates at %d, generated %d at %d", i, len(ua), na[i].GetTimestamp(), len(ub), nb[i].GetTimestamp())
		}
		for j := range ua {
			if !proto.Equal(ua[j], ub[j]) {
				return fmt.Sprintf("notification %d update %d:\n got %v\nwant %v", i, j, ua[j], ub[j])
			}
		}
	}
	return "same content, different bytes"
}

// sortUpdates puts a Get answer's updates in one order: gnmitarget gives
// the matches of a wildcard in the order of a map's iteration, which
// varies from one call to the next on the same server.
func sortUpdates(r *gpb.GetResponse) {
	for _, n := range r.GetNotification() {
		slices.SortFunc(n.Update, func(a, b *gpb.Update) int {
			ka, kb := change.PathKey(a.GetPath()), change.PathKey(b.GetPath())
			return strings.Compare(ka, kb)
		})
	}
}
