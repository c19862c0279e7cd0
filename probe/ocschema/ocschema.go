// Package ocschema is the part of the OpenConfig schema the probe agent
// serves with --bgp (the BGP neighbor leaves probe/bgpstate publishes),
// built by hand from a small table so that meshd-probe does not link the
// whole generated OpenConfig binding.
//
// Why by hand: gnmitarget needs schema entries only to write JSON_IETF
// right (module-qualified names, identityrefs as "module:NAME", 64-bit
// numbers as strings, list key leaves typed). Taking them from
// github.com/openconfig/ondatra/gnmi/oc made meshd-probe 44.4 MB (go1.26,
// linux/amd64, `go build -o`); with this table it is 27.0 MB, the same
// gNMI answers for every path it publishes. The binding's init unpacked
// the whole schema in every run: `meshd-probe version` peaked at 123 MB
// RSS and 0.71-0.80 CPU-s with it, 25.6 MB and 0.10-0.12 CPU-s without
// (getrusage, 3 runs each). The table holds facts only
// (node names, list keys, leaf types, identity names and their modules),
// written here. The tests hold it to the generated binding: each fact,
// and a gnmitarget server's answers to Get (every encoding), Subscribe
// ONCE and Capabilities, byte for byte against one built with the whole
// schema, for the leaves of recorded and live FRR and gobgpd sessions.
//
// The tree is read-only: gnmitarget caches by entry.
package ocschema

import (
	"strings"
	"sync"

	"github.com/openconfig/goyang/pkg/yang"

	"github.com/meshd/meshd/gnmitarget"
)

// Module is the module ygot's schema paths name for every node of the
// tree: openconfig-bgp's neighbors are used inside
// openconfig-network-instance, under its protocols.
const Module = "openconfig-network-instance"

// Schema paths (no module prefixes, no keys) of the lists on the way.
const (
	niPath    = "/network-instances/network-instance"
	protoPath = niPath + "/protocols/protocol"
	nbrPath   = protoPath + "/bgp/neighbors/neighbor"
	afiPath   = nbrPath + "/afi-safis/afi-safi"
)

// lists are the lists on the way to the leaves, with their keys in the
// order the schema gives them.
var lists = map[string]string{
	niPath:    "name",
	protoPath: "identifier name",
	nbrPath:   "neighbor-address",
	afiPath:   "afi-safi-name",
}

// leafType is what gnmitarget reads of a leaf's type.
type leafType struct {
	kind  yang.TypeKind
	ref   string          // leafref: the relative path it points along
	union []yang.TypeKind // union: its members' kinds
	ids   identitySet     // identityref: the identities it may name
}

// identitySet is the identities derived from one base, with the module
// that defines each.
type identitySet map[string]string

// leaves are every leaf of the tree: the ones bgpstate publishes, and the
// key leaves of the lists with the state leaves their leafrefs point at.
var leaves = map[string]leafType{
	niPath + "/name":       {kind: yang.Yleafref, ref: "../state/name"},
	niPath + "/state/name": {kind: yang.Ystring},

	protoPath + "/identifier":       {kind: yang.Yleafref, ref: "../state/identifier"},
	protoPath + "/state/identifier": {kind: yang.Yidentityref, ids: installProtocolTypes},
	protoPath + "/name":             {kind: yang.Yleafref, ref: "../state/name"},
	protoPath + "/state/name":       {kind: yang.Ystring},

	nbrPath + "/neighbor-address":       {kind: yang.Yleafref, ref: "../state/neighbor-address"},
	nbrPath + "/state/neighbor-address": {kind: yang.Yunion, union: []yang.TypeKind{yang.Ystring, yang.Ystring}},
	// An enumeration: RFC 7951 writes its values bare.
	nbrPath + "/state/session-state":                  {kind: yang.Yenum},
	nbrPath + "/state/peer-as":                        {kind: yang.Yuint32},
	nbrPath + "/state/local-as":                       {kind: yang.Yuint32},
	nbrPath + "/state/established-transitions":        {kind: yang.Yuint64},
	nbrPath + "/state/last-established":               {kind: yang.Yuint64},
	nbrPath + "/state/messages/sent/UPDATE":           {kind: yang.Yuint64},
	nbrPath + "/state/messages/sent/NOTIFICATION":     {kind: yang.Yuint64},
	nbrPath + "/state/messages/received/UPDATE":       {kind: yang.Yuint64},
	nbrPath + "/state/messages/received/NOTIFICATION": {kind: yang.Yuint64},
	nbrPath + "/timers/state/negotiated-hold-time":    {kind: yang.Yuint16},

	afiPath + "/afi-safi-name":                      {kind: yang.Yleafref, ref: "../state/afi-safi-name"},
	afiPath + "/state/afi-safi-name":                {kind: yang.Yidentityref, ids: afiSafiTypes},
	afiPath + "/state/prefixes/received":            {kind: yang.Yuint32},
	afiPath + "/state/prefixes/received-pre-policy": {kind: yang.Yuint32},
	afiPath + "/state/prefixes/sent":                {kind: yang.Yuint32},
	afiPath + "/state/prefixes/installed":           {kind: yang.Yuint32},
}

// identities builds an identitySet of names all defined in module.
func identities(module string, names ...string) identitySet {
	s := identitySet{}
	for _, n := range names {
		s[n] = module
	}
	return s
}

// installProtocolTypes name a network instance's protocols (the
// protocol list's identifier key; the probe's is BGP).
var installProtocolTypes = identities("openconfig-policy-types",
	"BGP", "DIRECTLY_CONNECTED", "GRIBI", "IGMP", "ISIS", "LOCAL", "LOCAL_AGGREGATE",
	"OSPF", "OSPF3", "PCEP", "PIM", "STATIC")

// afiSafiTypes name address families (the afi-safi list's key).
var afiSafiTypes = identities("openconfig-bgp-types",
	"IPV4_FLOWSPEC", "IPV4_LABELED_UNICAST", "IPV4_UNICAST", "IPV6_LABELED_UNICAST", "IPV6_UNICAST",
	"L2VPN_EVPN", "L2VPN_VPLS", "L3VPN_IPV4_MULTICAST", "L3VPN_IPV4_UNICAST", "L3VPN_IPV6_MULTICAST",
	"L3VPN_IPV6_UNICAST", "LINKSTATE", "LINKSTATE_SPF", "LINKSTATE_VPN", "SRTE_POLICY_IPV4",
	"SRTE_POLICY_IPV6", "VPNV4_FLOWSPEC")

// Root returns the schema root for gnmitarget.WithSchema: a fake root (as
// ygot's generated one) holding /network-instances and, below it, only
// the nodes that lead to the table's leaves.
var Root = sync.OnceValue(func() *yang.Entry { return build(Module, lists, leaves) })

// Options are the gnmitarget options that type the OpenConfig leaves the
// probe serves: the tree and its identities. meshd-probe serves with
// them, and the tests compare a server built with them with one built
// with the generated binding.
func Options() []gnmitarget.Option {
	return []gnmitarget.Option{gnmitarget.WithSchema(Root()), gnmitarget.WithIdentityModules(IdentityModules())}
}

// IdentityModules returns, for gnmitarget.WithIdentityModules, each
// identityref leaf's schema path with identity name → defining module.
func IdentityModules() map[string]map[string]string {
	return identityModules(leaves)
}

func identityModules(leaves map[string]leafType) map[string]map[string]string {
	out := map[string]map[string]string{}
	for p, t := range leaves {
		if len(t.ids) > 0 {
			m := make(map[string]string, len(t.ids))
			for id, mod := range t.ids {
				m[id] = mod
			}
			out[p] = m
		}
	}
	return out
}

// build makes the tree of the leaves, every directory annotated with its
// schema path below module, as ygot annotates the generated schema (what
// gnmitarget reads a top-level node's module from).
func build(module string, lists map[string]string, leaves map[string]leafType) *yang.Entry {
	root := &yang.Entry{Name: "root", Kind: yang.DirectoryEntry, Dir: map[string]*yang.Entry{},
		Annotation: map[string]any{"schemapath": "/", "isFakeRoot": true}}
	for p, t := range leaves {
		parent := root
		names := strings.Split(strings.TrimPrefix(p, "/"), "/")
		for i, name := range names[:len(names)-1] {
			dp := "/" + strings.Join(names[:i+1], "/")
			d := parent.Dir[name]
			if d == nil {
				d = &yang.Entry{Name: name, Kind: yang.DirectoryEntry, Parent: parent, Dir: map[string]*yang.Entry{},
					Annotation: map[string]any{"schemapath": "/" + module + dp}}
				if keys, ok := lists[dp]; ok {
					d.ListAttr = yang.NewDefaultListAttr()
					d.Key = keys
				}
				parent.Dir[name] = d
			}
			parent = d
		}
		name := names[len(names)-1]
		typ := &yang.YangType{Name: t.kind.String(), Kind: t.kind, Path: t.ref}
		for _, k := range t.union {
			typ.Type = append(typ.Type, &yang.YangType{Name: k.String(), Kind: k})
		}
		parent.Dir[name] = &yang.Entry{Name: name, Kind: yang.LeafEntry, Parent: parent, Type: typ}
	}
	return root
}
