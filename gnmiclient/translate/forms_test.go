package translate

import (
	"slices"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/meshd/meshd/change"
)

// The same leaf reaches the same OpenConfig path however a router spells
// it: origin openconfig or none, on the prefix or the update; module
// prefixes on any element; the path split anywhere between prefix and
// update; identity key values with their module; SR Linux's native paths
// with or without their modules.
func TestPathForms(t *testing.T) {
	nbr := func(leaf ...string) string {
		return change.PathKey(change.NeighborPath("default", "10.0.0.1", leaf...))
	}
	afiRecv := change.PathKey(change.AfiSafiPath("default", "10.0.0.1", "IPV4_UNICAST", "state", "prefixes", "received"))
	const ocNbr = `elem { name: "network-instances" } elem { name: "network-instance" key { key: "name" value: "default" } } elem { name: "protocols" } elem { name: "protocol" key { key: "identifier" value: "BGP" } key { key: "name" value: "BGP" } } elem { name: "bgp" } elem { name: "neighbors" } elem { name: "neighbor" key { key: "neighbor-address" value: "10.0.0.1" } }`
	const ocNbrModules = `elem { name: "openconfig-network-instance:network-instances" } elem { name: "openconfig-network-instance:network-instance" key { key: "name" value: "default" } } elem { name: "openconfig-network-instance:protocols" } elem { name: "openconfig-network-instance:protocol" key { key: "identifier" value: "openconfig-policy-types:BGP" } key { key: "name" value: "BGP" } } elem { name: "openconfig-network-instance:bgp" } elem { name: "openconfig-network-instance:neighbors" } elem { name: "openconfig-network-instance:neighbor" key { key: "neighbor-address" value: "10.0.0.1" } }`
	const srlNbr = `elem { name: "network-instance" key { key: "name" value: "default" } } elem { name: "protocols" } elem { name: "bgp" } elem { name: "neighbor" key { key: "peer-address" value: "10.0.0.1" } }`
	const srlNbrModules = `elem { name: "srl_nokia-network-instance:network-instance" key { key: "name" value: "default" } } elem { name: "srl_nokia-network-instance:protocols" } elem { name: "srl_nokia-bgp:bgp" } elem { name: "srl_nokia-bgp:neighbor" key { key: "peer-address" value: "10.0.0.1" } }`
	const peerAS = `val { uint_val: 65001 }`
	cases := []struct {
		name string
		note string // a Notification in prototext
		want []string
	}{
		{"no origin, whole path in the update",
			`update { path { ` + ocNbr + ` elem { name: "state" } elem { name: "peer-as" } } ` + peerAS + ` }`,
			[]string{nbr("state", "peer-as") + " = uint 65001"}},
		{"origin on the update",
			`update { path { origin: "openconfig" ` + ocNbr + ` elem { name: "state" } elem { name: "peer-as" } } ` + peerAS + ` }`,
			[]string{nbr("state", "peer-as") + " = uint 65001"}},
		{"origin on the prefix",
			`prefix { origin: "openconfig" ` + ocNbr + ` } update { path { elem { name: "state" } elem { name: "peer-as" } } ` + peerAS + ` }`,
			[]string{nbr("state", "peer-as") + " = uint 65001"}},
		{"module on every element, no origin",
			`update { path { ` + ocNbrModules + ` elem { name: "openconfig-network-instance:state" } elem { name: "openconfig-network-instance:peer-as" } } ` + peerAS + ` }`,
			[]string{nbr("state", "peer-as") + " = uint 65001"}},
		{"origin and modules on the prefix, modules on the update",
			`prefix { origin: "openconfig" ` + ocNbrModules + ` } update { path { elem { name: "openconfig-network-instance:state" } elem { name: "openconfig-network-instance:peer-as" } } ` + peerAS + ` }`,
			[]string{nbr("state", "peer-as") + " = uint 65001"}},
		{"origin on the prefix, modules on the update only",
			`prefix { origin: "openconfig" elem { name: "network-instances" } } update { path { elem { name: "openconfig-network-instance:network-instance" key { key: "name" value: "default" } } elem { name: "protocols" } elem { name: "protocol" key { key: "identifier" value: "BGP" } key { key: "name" value: "BGP" } } elem { name: "bgp" } elem { name: "neighbors" } elem { name: "neighbor" key { key: "neighbor-address" value: "10.0.0.1" } } elem { name: "state" } elem { name: "peer-as" } } ` + peerAS + ` }`,
			[]string{nbr("state", "peer-as") + " = uint 65001"}},
		{"the leaf itself in the prefix",
			`prefix { origin: "openconfig" ` + ocNbr + ` elem { name: "state" } elem { name: "peer-as" } } update { path { } ` + peerAS + ` }`,
			[]string{nbr("state", "peer-as") + " = uint 65001"}},
		{"identity key value with its module",
			`prefix { ` + ocNbr + ` } update { path { elem { name: "afi-safis" } elem { name: "afi-safi" key { key: "afi-safi-name" value: "openconfig-bgp-types:IPV4_UNICAST" } } elem { name: "state" } elem { name: "prefixes" } elem { name: "received" } } val { uint_val: 7 } }`,
			[]string{afiRecv + " = uint 7"}},
		{"JSON_IETF container with module-qualified members",
			`prefix { origin: "openconfig" ` + ocNbrModules + ` } update { path { elem { name: "openconfig-network-instance:state" } } val { json_ietf_val: "{\"openconfig-network-instance:peer-as\":65001,\"openconfig-network-instance:session-state\":\"openconfig-bgp-types:ESTABLISHED\"}" } }`,
			[]string{nbr("state", "peer-as") + " = uint 65001", nbr("state", "session-state") + ` = string "ESTABLISHED"`}},
		{"delete with origin and modules",
			`prefix { origin: "openconfig" elem { name: "openconfig-network-instance:network-instances" } } delete { elem { name: "openconfig-network-instance:network-instance" key { key: "name" value: "default" } } elem { name: "protocols" } elem { name: "protocol" key { key: "identifier" value: "openconfig-policy-types:BGP" } key { key: "name" value: "bgp" } } elem { name: "bgp" } elem { name: "neighbors" } elem { name: "neighbor" key { key: "neighbor-address" value: "10.0.0.1" } } }`,
			[]string{nbr() + " = deleted"}},
		{"SR Linux native",
			`prefix { ` + srlNbr + ` } update { path { elem { name: "peer-as" } } ` + peerAS + ` }`,
			[]string{nbr("state", "peer-as") + " = uint 65001"}},
		{"SR Linux native, modules on every element",
			`update { path { ` + srlNbrModules + ` elem { name: "srl_nokia-bgp:peer-as" } } ` + peerAS + ` }`,
			[]string{nbr("state", "peer-as") + " = uint 65001"}},
		{"SR Linux native afi-safi keyed with its module",
			`prefix { ` + srlNbrModules + ` } update { path { elem { name: "srl_nokia-bgp:afi-safi" key { key: "afi-safi-name" value: "srl_nokia-common:ipv4-unicast" } } elem { name: "received-routes" } } val { uint_val: 7 } }`,
			[]string{afiRecv + " = uint 7"}},
		{"SR Linux native session-state, JSON_IETF identity",
			`prefix { ` + srlNbr + ` } update { path { elem { name: "session-state" } } val { json_ietf_val: "\"srl_nokia-bgp:established\"" } }`,
			[]string{nbr("state", "session-state") + ` = string "ESTABLISHED"`}},
		{"SR Linux native neighbor withdrawn, modules on the path",
			`delete { ` + srlNbrModules + ` }`,
			[]string{nbr() + " = deleted"}},
	}
	tr := newTranslator(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := &gpb.Notification{}
			if err := prototext.Unmarshal([]byte(tc.note), n); err != nil {
				t.Fatalf("fixture: %v", err)
			}
			var res Result
			tr.Notification("r1", n, change.SourceGNMI, time.Unix(1, 0), &res)
			var got []string
			for _, c := range res.Changes {
				v := "deleted"
				if c.Value != nil {
					v = fmtValue(c.Value)
				}
				got = append(got, change.PathKey(c.Path)+" = "+v)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) || len(res.Unknown) != 0 || res.Invalid != 0 {
				t.Errorf("got %q (unknown %v, invalid %d: %v)\nwant %q", got, res.Unknown, res.Invalid, res.Err, want)
			}
		})
	}
}
