package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ondatra/gnmi/oc"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/merge"
	mygot "github.com/meshd/meshd/ygot"
)

var update = flag.Bool("update", false, "rewrite golden files")

type replay struct {
	core    *merge.Core
	unknown map[string]int
	invalid int
	errs    []string
}

// play runs a recording through a translator into a real merge core, one
// Apply per notification as the client does.
func play(t *testing.T, tr *Translator, router, file string) *replay {
	t.Helper()
	core, err := merge.New(merge.WithoutVerdict())
	if err != nil {
		t.Fatal(err)
	}
	rp := &replay{core: core, unknown: map[string]int{}}
	var res Result
	for _, m := range testenv.ReadRecording(t, file) {
		n := m.GetUpdate()
		if n == nil {
			continue
		}
		res.Reset()
		tr.Notification(router, n, change.SourceGNMI, time.Unix(0, 0), &res)
		for _, u := range res.Unknown {
			rp.unknown[u]++
		}
		rp.invalid += res.Invalid
		if res.Err != nil {
			rp.errs = append(rp.errs, res.Err.Error())
		}
		r := core.Apply(res.Changes)
		if r.Invalid > 0 {
			t.Errorf("merge core refused %d translated changes: %v", r.Invalid, r.Err)
		}
	}
	return rp
}

func snapshot(core *merge.Core, router string) string {
	var b strings.Builder
	for _, u := range core.Snapshot(router) {
		fmt.Fprintf(&b, "%s = %s\n", u.Key, fmtValue(u.Value))
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(bytes.TrimSpace(want), bytes.TrimSpace([]byte(got))) {
		t.Errorf("%s differs; got:\n%s", path, got)
	}
}

func newTranslator(t testing.TB) *Translator {
	t.Helper()
	tr, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func bgpNeighbor(r *oc.Root, ni, addr string) *oc.NetworkInstance_Protocol_Bgp_Neighbor {
	return r.GetNetworkInstance(ni).GetProtocol(oc.PolicyTypes_INSTALL_PROTOCOL_TYPE_BGP, "BGP").GetBgp().GetNeighbor(addr)
}

func TestSRLinuxRecording(t *testing.T) {
	tr := newTranslator(t)
	rp := play(t, tr, "srl1", "testdata/srlinux/neighbors.textproto")
	golden(t, "srlinux/neighbors.golden", snapshot(rp.core, "srl1"))

	ok := rp.core.View("srl1", func(r *oc.Root, _ *mygot.Root) {
		n := bgpNeighbor(r, "default", "10.0.0.2")
		if n == nil {
			t.Fatal("neighbor 10.0.0.2 missing from the OpenConfig tree")
		}
		if got := n.GetSessionState(); got != oc.Bgp_Neighbor_SessionState_ESTABLISHED {
			t.Errorf("session-state = %v, want ESTABLISHED", got)
		}
		if got := n.GetPeerAs(); got != 65002 {
			t.Errorf("peer-as = %d", got)
		}
		if got := n.GetLocalAs(); got != 65001 {
			t.Errorf("local-as = %d", got)
		}
		if got, want := n.GetLastEstablished(), uint64(time.Date(2024, 5, 1, 9, 58, 0, 0, time.UTC).UnixNano()); got != want {
			t.Errorf("last-established = %d, want %d", got, want)
		}
		if got := n.GetMessages().GetReceived().GetUPDATE(); got != 45 {
			t.Errorf("messages/received/UPDATE = %d, want 45 (the later change)", got)
		}
		if got := n.GetMessages().GetSent().GetNOTIFICATION(); got != 1 {
			t.Errorf("messages/sent/NOTIFICATION = %d", got)
		}
		if got := n.GetTimers().GetNegotiatedHoldTime(); got != 90 {
			t.Errorf("negotiated-hold-time = %d", got)
		}
		af := n.GetAfiSafi(oc.BgpTypes_AFI_SAFI_TYPE_IPV4_UNICAST)
		if got := af.GetPrefixes().GetReceived(); got != 121 {
			t.Errorf("ipv4 prefixes received = %d, want 121", got)
		}
		if got := af.GetPrefixes().GetInstalled(); got != 118 {
			t.Errorf("ipv4 prefixes installed = %d", got)
		}
		if got := n.GetAfiSafi(oc.BgpTypes_AFI_SAFI_TYPE_IPV6_UNICAST).GetPrefixes().GetSent(); got != 2 {
			t.Errorf("ipv6 prefixes sent = %d", got)
		}
		v6 := bgpNeighbor(r, "default", "2001:db8::3")
		if v6.GetSessionState() != oc.Bgp_Neighbor_SessionState_ACTIVE || v6.GetPeerAs() != 4200000001 {
			t.Errorf("2001:db8::3: state %v peer-as %d", v6.GetSessionState(), v6.GetPeerAs())
		}
		if gone := bgpNeighbor(r, "red", "192.0.2.9"); gone != nil {
			t.Errorf("withdrawn neighbor 192.0.2.9 still in the tree: %+v", gone)
		}
	})
	if !ok {
		t.Fatal("router srl1 not in the merge core")
	}
	if v, _, src, ok := rp.core.Leaf("srl1", change.NeighborPath("default", "10.0.0.2", "state", "session-state")); !ok || v.GetStringVal() != "ESTABLISHED" || src != change.SourceGNMI {
		t.Errorf("Leaf(session-state) = %v %v %v", v, src, ok)
	}
	// Leaves SR Linux has and OpenConfig has not are counted by path
	// without keys, not dropped silently.
	for _, want := range []string{
		"/network-instance/protocols/bgp/neighbor/peer-router-id",
		"/network-instance/protocols/bgp/neighbor/last-state",
		"/network-instance/protocols/bgp/neighbor/received-messages/total-messages",
		"/network-instance/protocols/bgp/neighbor/afi-safi/admin-state",
	} {
		if rp.unknown[want] == 0 {
			t.Errorf("unknown path %s not counted; counted: %v", want, rp.unknown)
		}
	}
	if rp.invalid != 0 {
		t.Errorf("%d invalid values: %v", rp.invalid, rp.errs)
	}
}

func TestOpenConfigRecording(t *testing.T) {
	tr := newTranslator(t)
	rp := play(t, tr, "r1", "testdata/openconfig/neighbors.textproto")
	golden(t, "openconfig/neighbors.golden", snapshot(rp.core, "r1"))
	rp.core.View("r1", func(r *oc.Root, m *mygot.Root) {
		n := bgpNeighbor(r, "default", "10.1.0.2")
		if n.GetSessionState() != oc.Bgp_Neighbor_SessionState_ACTIVE {
			t.Errorf("session-state = %v, want ACTIVE", n.GetSessionState())
		}
		if n.GetMessages().GetSent().GetLastNotificationErrorCode() != oc.BgpTypes_BGP_ERROR_CODE_CEASE {
			t.Errorf("last-notification-error-code = %v", n.GetMessages().GetSent().GetLastNotificationErrorCode())
		}
		if len(n.GetSupportedCapabilities()) != 2 {
			t.Errorf("supported-capabilities = %v", n.GetSupportedCapabilities())
		}
		if got := n.GetAfiSafi(oc.BgpTypes_AFI_SAFI_TYPE_IPV4_UNICAST).GetPrefixes().GetInstalled(); got != 99 {
			t.Errorf("installed = %d", got)
		}
		if n.GetTimers().GetHoldTime() != 90 {
			t.Errorf("hold-time = %d", n.GetTimers().GetHoldTime())
		}
		if gone := bgpNeighbor(r, "default", "10.1.0.3"); gone != nil {
			t.Errorf("deleted neighbor 10.1.0.3 still present")
		}
		p := m.GetMeshd().GetNetworkInstance("default").GetNeighbor("10.1.0.2").GetProbe()
		if p.GetRttLast() != 1234.5 || p.GetSamples() != 12 || p.GetHops() != 1 {
			t.Errorf("probe state = last %v samples %d hops %d", p.GetRttLast(), p.GetSamples(), p.GetHops())
		}
	})
	want := map[string]int{
		"/network-instances/network-instance/protocols/protocol/bgp/neighbors/neighbor/state/vendor-extension-counter": 1,
		"/network-instances/network-instance/protocols/protocol/bgp/neighbors/neighbor/state/no-such-leaf":             1,
		"/acme-native/bgp": 1,
	}
	for k, n := range want {
		if rp.unknown[k] != n {
			t.Errorf("unknown[%s] = %d, want %d (all: %v)", k, rp.unknown[k], n, rp.unknown)
		}
	}
	if rp.invalid != 1 || !strings.Contains(strings.Join(rp.errs, ";"), "not-a-number") {
		t.Errorf("invalid = %d (%v), want the one peer-as string", rp.invalid, rp.errs)
	}
}

func TestBGPKeyNormalised(t *testing.T) {
	tr := newTranslator(t)
	for _, keys := range []map[string]string{
		{"identifier": "openconfig-policy-types:BGP", "name": "bgp"},
		{"identifier": "BGP", "name": "default"},
		{"identifier": "oc-pol-types:BGP", "name": "BGP"},
		{"name": "bgp"},
	} {
		n := &gpb.Notification{Update: []*gpb.Update{{
			Path: &gpb.Path{Elem: []*gpb.PathElem{
				{Name: "network-instances"}, {Name: "network-instance", Key: map[string]string{"name": "default"}},
				{Name: "protocols"}, {Name: "protocol", Key: keys}, {Name: "bgp"}, {Name: "neighbors"},
				{Name: "neighbor", Key: map[string]string{"neighbor-address": "192.0.2.1"}}, {Name: "state"}, {Name: "peer-as"},
			}},
			Val: &gpb.TypedValue{Value: &gpb.TypedValue_UintVal{UintVal: 1}},
		}}}
		var res Result
		tr.Notification("r", n, change.SourceGNMI, time.Now(), &res)
		if len(res.Changes) != 1 {
			t.Fatalf("%v: %d changes, unknown %v", keys, len(res.Changes), res.Unknown)
		}
		if got, want := change.PathKey(res.Changes[0].Path), change.PathKey(change.NeighborPath("default", "192.0.2.1", "state", "peer-as")); got != want {
			t.Errorf("%v: path %s, want %s", keys, got, want)
		}
	}
}

func TestTableRejectsBadTables(t *testing.T) {
	tr := newTranslator(t)
	for name, tbl := range map[string]string{
		"unknown OC leaf": "bases: {n: {native: /a[k=$x], openconfig: '/network-instances/network-instance[name=$x]'}}\nrules: [{base: n, native: b, openconfig: state/nope}]",
		"unknown base":    "rules: [{base: zz, native: b, openconfig: state/name}]",
		"bad transform":   "bases: {n: {native: /a[k=$x], openconfig: '/network-instances/network-instance[name=$x]'}}\nrules: [{base: n, native: b, openconfig: state/name, transform: rot13}]",
		"base not a list": "bases: {n: {native: /a, openconfig: /network-instances}}",
	} {
		if _, err := ParseTable([]byte(tbl), tr.ocRoot); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestUnknownLabelsAreBounded(t *testing.T) {
	tr := newTranslator(t)
	var res Result
	for i := 0; i < 50; i++ {
		n := &gpb.Notification{Update: []*gpb.Update{{
			Path: &gpb.Path{Elem: []*gpb.PathElem{{Name: "vendor"}, {Name: "peer", Key: map[string]string{"addr": fmt.Sprint("10.0.0.", i)}}, {Name: "x"}}},
			Val:  &gpb.TypedValue{Value: &gpb.TypedValue_UintVal{UintVal: 1}},
		}}}
		tr.Notification("r", n, change.SourceGNMI, time.Now(), &res)
	}
	seen := map[string]bool{}
	for _, u := range res.Unknown {
		seen[u] = true
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) != 1 || keys[0] != "/vendor/peer/x" {
		t.Errorf("labels = %v, want one key-free label", keys)
	}
}

// fmtValue prints a value stably (prototext's output varies on purpose).
func fmtValue(v *gpb.TypedValue) string {
	switch x := v.GetValue().(type) {
	case *gpb.TypedValue_StringVal:
		return fmt.Sprintf("string %q", x.StringVal)
	case *gpb.TypedValue_UintVal:
		return fmt.Sprintf("uint %d", x.UintVal)
	case *gpb.TypedValue_IntVal:
		return fmt.Sprintf("int %d", x.IntVal)
	case *gpb.TypedValue_BoolVal:
		return fmt.Sprintf("bool %t", x.BoolVal)
	case *gpb.TypedValue_DecimalVal: //nolint:staticcheck // decimal64 is the YANG type
		return fmt.Sprintf("decimal %d/10^%d", x.DecimalVal.GetDigits(), x.DecimalVal.GetPrecision())
	case *gpb.TypedValue_LeaflistVal:
		var parts []string
		for _, e := range x.LeaflistVal.GetElement() {
			parts = append(parts, fmtValue(e))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprintf("%T", v.GetValue())
}

// Leaves under meshd's probe container are the probe's measurements, even
// collected over gNMI; everything else a target sends is its gNMI data.
func TestProbeLeavesAreTheProbes(t *testing.T) {
	tr := newTranslator(t)
	for _, tc := range []struct {
		path *gpb.Path
		want change.Source
	}{
		{change.MeshdNeighborPath("default", "192.0.2.1", "probe", "state", "rtt-last"), change.SourceProbe},
		{&gpb.Path{Origin: "meshd", Elem: change.MeshdNeighborPath("default", "192.0.2.1", "probe", "state", "hops").GetElem()}, change.SourceProbe},
		{change.MeshdNeighborPath("default", "192.0.2.1", "bmp", "state", "up-count"), change.SourceGNMI},
		{change.NeighborPath("default", "192.0.2.1", "state", "peer-as"), change.SourceGNMI},
	} {
		var res Result
		n := &gpb.Notification{Update: []*gpb.Update{{Path: tc.path, Val: change.Uint(1)}}}
		tr.Notification("r", n, change.SourceGNMI, time.Now(), &res)
		if len(res.Changes) != 1 {
			t.Fatalf("%s: %d changes (unknown %v, err %v)", change.PathKey(tc.path), len(res.Changes), res.Unknown, res.Err)
		}
		if got := res.Changes[0].Source; got != tc.want {
			t.Errorf("%s: source %v, want %v", change.PathKey(tc.path), got, tc.want)
		}
	}
}

// A Result reused across notifications remembers where update paths led
// below each prefix: the same update path below another kind of prefix,
// or one that fits nowhere, comes out as a fresh translation would.
func TestWalksRemembered(t *testing.T) {
	tr := newTranslator(t)
	received := &gpb.Path{Elem: []*gpb.PathElem{{Name: "state"}, {Name: "prefixes"}, {Name: "received"}}}
	peerAS := &gpb.Path{Elem: []*gpb.PathElem{{Name: "state"}, {Name: "peer-as"}}}
	nbr := change.NeighborPath("default", "10.0.0.1")
	afi := change.NeighborPath("default", "10.0.0.1", "afi-safis")
	afi.Elem = append(afi.Elem, &gpb.PathElem{Name: "afi-safi", Key: map[string]string{"afi-safi-name": "IPV4_UNICAST"}})
	notes := []*gpb.Notification{
		{Prefix: nbr, Update: []*gpb.Update{{Path: peerAS, Val: change.Uint(1)}, {Path: received, Val: change.Uint(2)}}},
		{Prefix: afi, Update: []*gpb.Update{{Path: received, Val: change.Uint(3)}, {Path: peerAS, Val: change.Uint(4)}}},
		{Prefix: nbr, Update: []*gpb.Update{{Path: received, Val: change.Uint(5)}, {Path: peerAS, Val: change.Uint(6)}}},
	}
	describe := func(res *Result) []string {
		var out []string
		for _, c := range res.Changes {
			out = append(out, change.PathKey(c.Path)+" "+fmtValue(c.Value))
		}
		return append(out, res.Unknown...)
	}
	var reused Result
	for i := 0; i < 3; i++ { // three rounds: the later ones from memory
		for _, n := range notes {
			var fresh Result
			reused.Reset()
			tr.Notification("r", n, change.SourceGNMI, time.Now(), &reused)
			tr.Notification("r", n, change.SourceGNMI, time.Now(), &fresh)
			if got, want := describe(&reused), describe(&fresh); !slices.Equal(got, want) || len(want) != 2 {
				t.Fatalf("round %d: reused result gave\n%v\nfresh\n%v", i, got, want)
			}
		}
	}
	if len(reused.walks) != 4 {
		t.Errorf("%d walks remembered, want 4 (two paths below two prefixes)", len(reused.walks))
	}
}

// TestBadJSONKeepsCause: errJSON wraps the JSON decoder's error, so its
// offset stays readable.
func TestBadJSONKeepsCause(t *testing.T) {
	_, err := decodeJSON([]byte(`{"a":}`))
	var se *json.SyntaxError
	if !errors.Is(err, errJSON) || !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want errJSON wrapping *json.SyntaxError", err, err)
	}
}
