package change

import (
	"fmt"
	"sort"
	"strings"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ygot/ygot"
)

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
// and target are not part of it. KeyPath is its inverse.
func PathKey(p *gpb.Path) string {
	if len(p.GetElem()) == 0 {
		return "/"
	}
	return string(AppendPathKey(make([]byte, 0, 160), p))
}

// AppendPathKey appends PathKey(p) to dst (nothing for the root), so a hot
// path can build keys in a reused buffer and look maps up without
// allocating.
func AppendPathKey(dst []byte, p *gpb.Path) []byte {
	for _, e := range p.GetElem() {
		dst = AppendElemKey(dst, e)
	}
	return dst
}

// AppendElemKey appends one element's part of a path key.
func AppendElemKey(dst []byte, e *gpb.PathElem) []byte {
	dst = append(dst, '/')
	dst = append(dst, e.GetName()...)
	switch keys := e.GetKey(); len(keys) {
	case 0:
	case 1:
		// The lists of BGP state are keyed by these: a lookup is cheaper
		// than starting a map iteration.
		for _, k := range commonKeys {
			if v, ok := keys[k]; ok {
				return appendKey(dst, k, v)
			}
		}
		for k, v := range keys {
			dst = appendKey(dst, k, v)
		}
	case 2:
		// Two keys (BGP's protocol entry) are common enough to sort
		// without a slice.
		var k0, k1 string
		for k := range keys {
			if k0 == "" {
				k0 = k
			} else {
				k1 = k
			}
		}
		if k1 < k0 {
			k0, k1 = k1, k0
		}
		dst = appendKey(dst, k0, keys[k0])
		dst = appendKey(dst, k1, keys[k1])
	default:
		ks := make([]string, 0, len(keys))
		for k := range keys {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			dst = appendKey(dst, k, keys[k])
		}
	}
	return dst
}

// AppendNeighborKey appends PathKey(NeighborPath(ni, addr)) without
// building the path.
func AppendNeighborKey(dst []byte, ni, addr string) []byte {
	dst = append(dst, "/network-instances/network-instance"...)
	dst = appendKey(dst, "name", ni)
	dst = append(dst, "/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor"...)
	return appendKey(dst, "neighbor-address", addr)
}

// AppendMeshdNeighborKey appends PathKey(MeshdNeighborPath(ni, addr))
// without building the path.
func AppendMeshdNeighborKey(dst []byte, ni, addr string) []byte {
	dst = append(dst, "/meshd/network-instances/network-instance"...)
	dst = appendKey(dst, "name", ni)
	dst = append(dst, "/neighbors/neighbor"...)
	return appendKey(dst, "neighbor-address", addr)
}

var commonKeys = [...]string{"neighbor-address", "name", "afi-safi-name"}

func appendKey(dst []byte, k, v string) []byte {
	dst = append(dst, '[')
	dst = append(dst, k...)
	dst = append(dst, '=')
	// Escape what would make the key ambiguous, as gNMI path strings do.
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case ']', '\\':
			dst = append(dst, '\\', c)
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, ']')
}

// KeyPath turns a key made by PathKey back into its path. It is exact
// where ParsePath (the general gNMI path syntax) is not: a key value may
// hold '/', '=' or '[' unescaped.
func KeyPath(key string) (*gpb.Path, error) {
	p := &gpb.Path{}
	if key == "/" {
		return p, nil
	}
	if !strings.HasPrefix(key, "/") {
		return nil, fmt.Errorf("path key %q: does not start with /", key)
	}
	i := 1
	for i <= len(key) {
		start := i
		for i < len(key) && key[i] != '/' && key[i] != '[' {
			i++
		}
		e := &gpb.PathElem{Name: key[start:i]}
		if e.Name == "" {
			return nil, fmt.Errorf("path key %q: empty element at %d", key, start)
		}
		for i < len(key) && key[i] == '[' {
			eq := strings.IndexByte(key[i:], '=')
			if eq < 0 {
				return nil, fmt.Errorf("path key %q: key without = at %d", key, i)
			}
			name := key[i+1 : i+eq]
			i += eq + 1
			var v []byte
			for ; i < len(key) && key[i] != ']'; i++ {
				if key[i] == '\\' && i+1 < len(key) {
					i++
				}
				v = append(v, key[i])
			}
			if i == len(key) {
				return nil, fmt.Errorf("path key %q: unterminated key %q", key, name)
			}
			i++ // ']'
			if e.Key == nil {
				e.Key = map[string]string{}
			}
			e.Key[name] = string(v)
		}
		p.Elem = append(p.Elem, e)
		if i < len(key) && key[i] != '/' {
			return nil, fmt.Errorf("path key %q: unexpected %q at %d", key, key[i], i)
		}
		i++
	}
	return p, nil
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
