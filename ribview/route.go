package ribview

import (
	"net/netip"
	"strconv"
	"strings"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
)

// The RIB views, by their BMP names (RFC 7854, 8671, 9069).
const (
	LocRIB     = "LOC_RIB"
	AdjInPre   = "ADJ_RIB_IN_PRE"
	AdjInPost  = "ADJ_RIB_IN_POST"
	AdjOutPre  = "ADJ_RIB_OUT_PRE"
	AdjOutPost = "ADJ_RIB_OUT_POST"
)

// viewElem is each neighbor view's container in the model.
var viewElem = map[string]string{AdjInPre: "adj-rib-in-pre", AdjInPost: "adj-rib-in-post", AdjOutPre: "adj-rib-out-pre", AdjOutPost: "adj-rib-out-post"}

// Attrs is a route's attribute set.
type Attrs struct {
	// Index identifies the set among the router's sets while it is held.
	Index     uint64
	Origin    string // IGP, EGP or INCOMPLETE
	ASPath    string // "65001 65002 {65003 65004}"
	NextHop   string
	MED       *uint32
	LocalPref *uint32
	// Communities are RFC 1997 communities as "AS:VALUE".
	Communities []string
}

// Route is one route of a router's RIB view, or its withdrawal.
type Route struct {
	NI string
	// Neighbor is the peer's address; "" for the Loc-RIB.
	Neighbor string
	View     string
	Prefix   netip.Prefix
	PathID   uint32
	// Attrs is nil for a withdrawal.
	Attrs *Attrs
	// Time is when the source took the change (ns since the epoch).
	Time int64
}

func (r *Route) v6() bool { return !r.Prefix.Addr().Is4() }

// Select narrows what a walk reads; the zero value selects everything.
// It is an optimisation: what is sent is matched against the
// subscription's paths leaf by leaf all the same.
type Select struct {
	NI       string // "" any
	Neighbor string // "" any
	// NoV4, NoV6 leave out a family.
	NoV4, NoV6 bool
	// Views are the views wanted; nil any.
	Views map[string]bool
	// Prefix, when valid, is the only prefix wanted.
	Prefix netip.Prefix
}

// Wants reports whether r is selected (its table and prefix).
func (s *Select) Wants(ni, neighbor, view string, p netip.Prefix) bool {
	if s == nil {
		return true
	}
	if (s.NI != "" && s.NI != ni) || (s.Neighbor != "" && s.Neighbor != neighbor) || (s.Views != nil && !s.Views[view]) {
		return false
	}
	if p.IsValid() {
		if p.Addr().Is4() && s.NoV4 || !p.Addr().Is4() && s.NoV6 {
			return false
		}
		if s.Prefix.IsValid() && s.Prefix != p {
			return false
		}
	}
	return true
}

// WantsTable reports whether a table (one view of one neighbor) may hold
// selected routes.
func (s *Select) WantsTable(ni, neighbor, view string) bool {
	return s.Wants(ni, neighbor, view, netip.Prefix{})
}

// Source is what holds the RIBs: the bmp source (*bmpbridge.Bridge).
type Source interface {
	// RIBRouters lists the routers that have RIBs.
	RIBRouters() []string
	// WalkRIB calls fn with router's routes that sel selects, a batch at
	// a time: each batch is read under the router's lock, and fn is
	// called without it. It stops at fn's first error and returns it.
	WalkRIB(router string, sel *Select, fn func([]Route) error) error
}

func pe(name string, kv ...string) *gpb.PathElem {
	e := &gpb.PathElem{Name: name}
	if len(kv) > 0 {
		e.Key = make(map[string]string, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			e.Key[kv[i]] = kv[i+1]
		}
	}
	return e
}

// ribBase is the path to an instance's bgp/rib.
func ribBase(ni string) []*gpb.PathElem {
	return []*gpb.PathElem{pe("network-instances"), pe("network-instance", "name", ni), pe("protocols"),
		pe("protocol", "identifier", "BGP", "name", "BGP"), pe("bgp"), pe("rib")}
}

// routesBase is the path to the routes list that holds r.
func routesBase(r *Route) []*gpb.PathElem {
	afi, fam := "IPV4_UNICAST", "ipv4-unicast"
	if r.v6() {
		afi, fam = "IPV6_UNICAST", "ipv6-unicast"
	}
	p := append(ribBase(r.NI), pe("afi-safis"), pe("afi-safi", "afi-safi-name", afi), pe(fam))
	if r.View == LocRIB {
		return append(p, pe("loc-rib"), pe("routes"))
	}
	return append(p, pe("neighbors"), pe("neighbor", "neighbor-address", r.Neighbor), pe(viewElem[r.View]), pe("routes"))
}

// routeElem is the route's list entry, relative to routesBase.
func routeElem(r *Route) *gpb.PathElem {
	id := strconv.FormatUint(uint64(r.PathID), 10)
	if r.View == LocRIB {
		return pe("route", "prefix", r.Prefix.String(), "origin", "BGP", "path-id", id)
	}
	return pe("route", "prefix", r.Prefix.String(), "path-id", id)
}

var (
	str   = change.String
	uintv = change.Uint
	boolv = change.Bool
)

// The elements every route and set repeats, shared by the notifications
// that carry them (never changed once built): a walk of a million routes
// allocated three for each of their leaves.
var (
	elState = pe("state")
	elNames = func() map[string]*gpb.PathElem {
		m := map[string]*gpb.PathElem{}
		for _, n := range []string{"prefix", "origin", "path-id", "attr-index", "valid-route", "community-index",
			"index", "next-hop", "med", "local-pref", "type", "member", "community"} {
			m[n] = pe(n)
		}
		return m
	}()
)

// named is the shared element of a leaf name.
func named(name string) *gpb.PathElem {
	if e := elNames[name]; e != nil {
		return e
	}
	return pe(name)
}

func leaf(entry *gpb.PathElem, name string, v *gpb.TypedValue) *gpb.Update {
	return &gpb.Update{Path: &gpb.Path{Elem: []*gpb.PathElem{entry, elState, named(name)}}, Val: v}
}

// routeLeaves are an announced route's state leaves, relative to
// routesBase.
func routeLeaves(r *Route, out []*gpb.Update) []*gpb.Update {
	// A route's leaves are made together, each kind of object in one
	// allocation: one each was 25 of a walk's 62 allocations a route.
	var slab struct {
		ups   [6]gpb.Update
		paths [6]gpb.Path
		elems [18]*gpb.PathElem
		vals  [6]gpb.TypedValue
		strs  [2]gpb.TypedValue_StringVal
		uints [3]gpb.TypedValue_UintVal
	}
	e := routeElem(r)
	n, nu := 0, 0
	leaf := func(name string) *gpb.TypedValue {
		el := slab.elems[3*n : 3*n+3 : 3*n+3]
		el[0], el[1], el[2] = e, elState, named(name)
		slab.paths[n].Elem = el
		slab.ups[n].Path, slab.ups[n].Val = &slab.paths[n], &slab.vals[n]
		out = append(out, &slab.ups[n])
		n++
		return &slab.vals[n-1]
	}
	uint := func(u uint64) *gpb.TypedValue_UintVal {
		slab.uints[nu].UintVal = u
		nu++
		return &slab.uints[nu-1]
	}
	slab.strs[0].StringVal = r.Prefix.String()
	leaf("prefix").Value = &slab.strs[0]
	if r.View == LocRIB {
		slab.strs[1].StringVal = "BGP"
		leaf("origin").Value = &slab.strs[1]
	}
	leaf("path-id").Value = uint(uint64(r.PathID))
	leaf("attr-index").Value = uint(r.Attrs.Index)
	leaf("valid-route").Value = validRoute
	if len(r.Attrs.Communities) > 0 {
		leaf("community-index").Value = uint(r.Attrs.Index)
	}
	return out
}

// validRoute is every held route's valid-route, shared.
var validRoute = &gpb.TypedValue_BoolVal{BoolVal: true}

// attrSetElem is an attribute set's list entry, relative to ribBase.
func attrSetElems(a *Attrs) []*gpb.PathElem {
	return []*gpb.PathElem{pe("attr-sets"), pe("attr-set", "index", strconv.FormatUint(a.Index, 10))}
}

// attrLeaves are an attribute set's leaves, relative to ribBase.
func attrLeaves(a *Attrs, out []*gpb.Update) []*gpb.Update {
	base := attrSetElems(a)
	at := func(v *gpb.TypedValue, rest ...*gpb.PathElem) *gpb.Update {
		return &gpb.Update{Path: &gpb.Path{Elem: append(append([]*gpb.PathElem{}, base...), rest...)}, Val: v}
	}
	out = append(out, at(uintv(a.Index), elState, named("index")))
	if a.Origin != "" {
		out = append(out, at(str(a.Origin), elState, named("origin")))
	}
	if a.NextHop != "" {
		out = append(out, at(str(a.NextHop), elState, named("next-hop")))
	}
	if a.MED != nil {
		out = append(out, at(uintv(uint64(*a.MED)), elState, named("med")))
	}
	if a.LocalPref != nil {
		out = append(out, at(uintv(uint64(*a.LocalPref)), elState, named("local-pref")))
	}
	for i, seg := range asSegments(a.ASPath) {
		segE := []*gpb.PathElem{pe("as-path"), pe("as-segment", "index", strconv.Itoa(i)), elState}
		out = append(out, at(uintv(uint64(i)), append(segE[:3:3], named("index"))...),
			at(str(seg.typ), append(segE[:3:3], named("type"))...),
			at(leafList(seg.members), append(segE[:3:3], named("member"))...))
	}
	return out
}

// communityLeaves are a set's communities, relative to ribBase.
func communityLeaves(a *Attrs, out []*gpb.Update) []*gpb.Update {
	if len(a.Communities) == 0 {
		return out
	}
	e := pe("community", "index", strconv.FormatUint(a.Index, 10))
	vs := make([]*gpb.TypedValue, len(a.Communities))
	for i, c := range a.Communities {
		vs[i] = str(c)
	}
	return append(out,
		&gpb.Update{Path: &gpb.Path{Elem: []*gpb.PathElem{pe("communities"), e, pe("state"), pe("index")}}, Val: uintv(a.Index)},
		&gpb.Update{Path: &gpb.Path{Elem: []*gpb.PathElem{pe("communities"), e, pe("state"), pe("community")}}, Val: &gpb.TypedValue{Value: &gpb.TypedValue_LeaflistVal{LeaflistVal: &gpb.ScalarArray{Element: vs}}}})
}

func leafList(ns []uint64) *gpb.TypedValue {
	vs := make([]*gpb.TypedValue, len(ns))
	for i, n := range ns {
		vs[i] = uintv(n)
	}
	return &gpb.TypedValue{Value: &gpb.TypedValue_LeaflistVal{LeaflistVal: &gpb.ScalarArray{Element: vs}}}
}

type segment struct {
	typ     string // AS_SEQ or AS_SET
	members []uint64
}

// asSegments splits an AS_PATH as the decoder writes it ("1 2 {3 4} 5")
// into the model's segments.
func asSegments(p string) []segment {
	var out []segment
	cur := func(typ string) *segment {
		if len(out) == 0 || out[len(out)-1].typ != typ {
			out = append(out, segment{typ: typ})
		}
		return &out[len(out)-1]
	}
	inSet := false
	for _, f := range strings.Fields(p) {
		open, closed := strings.HasPrefix(f, "{"), strings.HasSuffix(f, "}")
		f = strings.Trim(f, "{},")
		if open {
			inSet = true
			out = append(out, segment{typ: "AS_SET"})
		}
		for _, x := range strings.Split(f, ",") {
			n, err := strconv.ParseUint(x, 10, 32)
			if err != nil {
				continue
			}
			if inSet {
				out[len(out)-1].members = append(out[len(out)-1].members, n)
			} else {
				s := cur("AS_SEQ")
				s.members = append(s.members, n)
			}
		}
		if closed {
			inSet = false
		}
	}
	return out
}
