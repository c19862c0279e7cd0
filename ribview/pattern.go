package ribview

import (
	"net/netip"
	"strings"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
)

// ribNames are the element names down to bgp/rib.
var ribNames = [...]string{"network-instances", "network-instance", "protocols", "protocol", "bgp", "rib"}

func stripModule(s string) string {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// Claims reports whether a subscription or Get path (its prefix and path
// joined) is the RIB's: it names every element down to bgp/rib, and its
// protocol, if keyed, is BGP. Wider paths are the served tree's alone
// (see the package doc).
func Claims(pat []*gpb.PathElem) bool {
	if len(pat) < len(ribNames) {
		return false
	}
	for i, n := range ribNames {
		if stripModule(pat[i].GetName()) != n {
			return false
		}
	}
	if id, ok := pat[3].GetKey()["identifier"]; ok && id != "*" && stripModule(id) != "BGP" {
		return false
	}
	return true
}

// kind says which part of the RIB a claimed path reaches.
type kind uint8

const (
	kindAll    kind = iota // bgp/rib itself, or a wildcard below it
	kindRoutes             // afi-safis/...
	kindAttrs              // attr-sets/...
	kindComms              // communities/...
	kindNone               // a container of the RIB meshd does not serve
)

func kindOf(pat []*gpb.PathElem) kind {
	if len(pat) == len(ribNames) {
		return kindAll
	}
	switch stripModule(pat[len(ribNames)].GetName()) {
	case "afi-safis":
		return kindRoutes
	case "attr-sets":
		return kindAttrs
	case "communities":
		return kindComms
	case "*", "...":
		return kindAll
	}
	return kindNone
}

func key(e *gpb.PathElem, k string) string {
	v := e.GetKey()[k]
	if v == "*" {
		return ""
	}
	return stripModule(v)
}

// selectFor narrows a walk to what a route path can match.
func selectFor(pat []*gpb.PathElem) *Select {
	s := &Select{NI: key(pat[1], "name")}
	k := kindOf(pat)
	if k != kindRoutes {
		return s
	}
	rest := pat[len(ribNames):]
	at := func(i int) *gpb.PathElem {
		if i < len(rest) {
			return rest[i]
		}
		return nil
	}
	// afi-safis / afi-safi[afi-safi-name] / ipvN-unicast / (loc-rib | neighbors/neighbor[neighbor-address]/VIEW) / routes / route[prefix]
	switch key(at(1), "afi-safi-name") {
	case "IPV4_UNICAST":
		s.NoV6 = true
	case "IPV6_UNICAST":
		s.NoV4 = true
	}
	switch stripModule(at(2).GetName()) {
	case "ipv4-unicast":
		s.NoV6 = true
	case "ipv6-unicast":
		s.NoV4 = true
	}
	var route *gpb.PathElem
	switch stripModule(at(3).GetName()) {
	case "loc-rib":
		s.Views = map[string]bool{LocRIB: true}
		route = at(5)
	case "neighbors":
		s.Neighbor = key(at(4), "neighbor-address")
		if v := stripModule(at(5).GetName()); v != "" && v != "*" {
			s.Views = map[string]bool{}
			for view, e := range viewElem {
				if e == v {
					s.Views[view] = true
				}
			}
		} else {
			s.Views = map[string]bool{AdjInPre: true, AdjInPost: true, AdjOutPre: true, AdjOutPost: true}
		}
		route = at(7)
	}
	if p, err := netip.ParsePrefix(key(route, "prefix")); err == nil {
		s.Prefix = p
	}
	return s
}

// match reports whether the path a++b is at or below pattern pat (a
// prefix of it, elements equal or wildcard, keys equal or wildcard).
func match(pat []*gpb.PathElem, a, b []*gpb.PathElem) bool {
	for i, pe := range pat {
		var e *gpb.PathElem
		switch {
		case i < len(a):
			e = a[i]
		case i-len(a) < len(b):
			e = b[i-len(a)]
		default:
			return true // the pattern goes deeper than the path: a subtree of it is wanted
		}
		name := stripModule(pe.GetName())
		if name == "..." {
			return true
		}
		if name != "*" && name != e.GetName() {
			return false
		}
		for k, v := range pe.GetKey() {
			if v == "*" {
				continue
			}
			if got, ok := e.GetKey()[k]; !ok || stripModule(got) != stripModule(v) {
				return false
			}
		}
	}
	return true
}

// within reports whether the leaf a++b is at or below pat: match, and
// the pattern no longer than the leaf's path.
func within(pat []*gpb.PathElem, a, b []*gpb.PathElem) bool {
	if n := len(pat); n > len(a)+len(b) && stripModule(pat[n-1].GetName()) != "..." {
		return false
	}
	return match(pat, a, b)
}
