package change

import (
	"fmt"
	"sort"
	"strings"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ygot/ygot"
)

// BGPProtocol is the key meshd uses for the BGP protocol instance in
// OpenConfig paths; sources normalise whatever a router calls it to this.
var BGPProtocol = map[string]string{"identifier": "BGP", "name": "BGP"}

// NeighborPath returns the OpenConfig path of a BGP neighbor in a network
// instance, with elems (e.g. "state", "session-state") appended.
func NeighborPath(ni, addr string, elems ...string) *gpb.Path {
	p := &gpb.Path{Elem: []*gpb.PathElem{
		{Name: "network-instances"},
		{Name: "network-instance", Key: map[string]string{"name": ni}},
		{Name: "protocols"},
		{Name: "protocol", Key: map[string]string{"identifier": "BGP", "name": "BGP"}},
		{Name: "bgp"},
		{Name: "neighbors"},
		{Name: "neighbor", Key: map[string]string{"neighbor-address": addr}},
	}}
	return appendElems(p, elems)
}

// AfiSafiPath returns the OpenConfig path of one AFI-SAFI of a neighbor.
func AfiSafiPath(ni, addr, afiSafi string, elems ...string) *gpb.Path {
	p := NeighborPath(ni, addr, "afi-safis")
	p.Elem = append(p.Elem, &gpb.PathElem{Name: "afi-safi", Key: map[string]string{"afi-safi-name": afiSafi}})
	return appendElems(p, elems)
}

// MeshdNeighborPath returns the path of a neighbor in meshd's own model,
// with elems (e.g. "probe", "state", "rtt-last") appended.
func MeshdNeighborPath(ni, addr string, elems ...string) *gpb.Path {
	p := &gpb.Path{Elem: []*gpb.PathElem{
		{Name: "meshd"},
		{Name: "network-instances"},
		{Name: "network-instance", Key: map[string]string{"name": ni}},
		{Name: "neighbors"},
		{Name: "neighbor", Key: map[string]string{"neighbor-address": addr}},
	}}
	return appendElems(p, elems)
}

// MeshdRouterPath returns the path of a leaf of meshd's router container.
func MeshdRouterPath(leaf string) *gpb.Path {
	return &gpb.Path{Elem: []*gpb.PathElem{{Name: "meshd"}, {Name: "router"}, {Name: "state"}, {Name: leaf}}}
}

func appendElems(p *gpb.Path, elems []string) *gpb.Path {
	for _, e := range elems {
		p.Elem = append(p.Elem, &gpb.PathElem{Name: e})
	}
	return p
}

// NeighborOf reports the network instance and neighbor address a path
// belongs to, in OpenConfig or meshd form, and the elements below the
// neighbor. ok is false for paths that are not below a neighbor.
func NeighborOf(p *gpb.Path) (ni, addr string, rest []*gpb.PathElem, ok bool) {
	elems := p.GetElem()
	for i, e := range elems {
		switch e.GetName() {
		case "network-instance":
			ni = e.GetKey()["name"]
		case "neighbor":
			if a, has := e.GetKey()["neighbor-address"]; has && ni != "" {
				return ni, a, elems[i+1:], true
			}
		}
	}
	return "", "", nil, false
}

// PathKey returns a canonical string for a path: elements joined by "/",
// keys sorted by name, so equal paths always give equal keys. The origin
// and target are not part of it.
func PathKey(p *gpb.Path) string {
	var b strings.Builder
	b.Grow(128)
	for _, e := range p.GetElem() {
		b.WriteByte('/')
		b.WriteString(e.GetName())
		switch len(e.GetKey()) {
		case 0:
		case 1:
			for k, v := range e.GetKey() {
				writeKey(&b, k, v)
			}
		default:
			ks := make([]string, 0, len(e.GetKey()))
			for k := range e.GetKey() {
				ks = append(ks, k)
			}
			sort.Strings(ks)
			for _, k := range ks {
				writeKey(&b, k, e.GetKey()[k])
			}
		}
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

func writeKey(b *strings.Builder, k, v string) {
	b.WriteByte('[')
	b.WriteString(k)
	b.WriteByte('=')
	// Escape what would make the key ambiguous, as gNMI path strings do.
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte(']')
}

// ParsePath parses a gNMI path string such as
// "/network-instances/network-instance[name=default]/state" into a path.
func ParsePath(s string) (*gpb.Path, error) {
	p, err := ygot.StringToStructuredPath(s)
	if err != nil {
		return nil, fmt.Errorf("path %q: %w", s, err)
	}
	return p, nil
}

// MustPath is ParsePath for paths written in the code; it panics on error.
func MustPath(s string) *gpb.Path {
	p, err := ParsePath(s)
	if err != nil {
		panic(err)
	}
	return p
}
