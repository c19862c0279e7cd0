// Package rib keeps the routes of one BMP-monitored router in memory,
// compactly (interned attribute sets, fixed-size prefix keys), so route
// counts are exact and re-sent routes are recognised as duplicates.
package rib

import (
	"encoding/binary"
	"net/netip"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/meshd/meshd/bmpbridge/decode"
)

// Interner holds each distinct attribute set once, reference counted.
// It is not safe for concurrent use; one router's session owns it.
type Interner struct {
	ids   map[string]uint32
	attrs []*decode.Attrs
	refs  []uint32
	free  []uint32
}

// NewInterner returns an empty interner.
func NewInterner() *Interner {
	// ID 0 is reserved for "no attributes".
	return &Interner{ids: map[string]uint32{}, attrs: []*decode.Attrs{nil}, refs: []uint32{0}}
}

// Lookup returns the interned attribute set with this key, if any; the
// decoder uses it to skip decoding attributes it has seen.
func (in *Interner) Lookup(key []byte) *decode.Attrs {
	if id, ok := in.ids[string(key)]; ok {
		return in.attrs[id]
	}
	return nil
}

// Len returns the number of distinct attribute sets held.
func (in *Interner) Len() int { return len(in.ids) }

func (in *Interner) ref(a *decode.Attrs) uint32 {
	if a == nil {
		return 0
	}
	// The decoder hands the same *Attrs for every route of a set, so the
	// slot it carries saves hashing the key on nearly every route.
	if id := a.Slot; id != 0 && int(id) < len(in.attrs) && in.attrs[id] == a {
		in.refs[id]++
		return id
	}
	if id, ok := in.ids[a.Key]; ok {
		in.refs[id]++
		return id
	}
	var id uint32
	if n := len(in.free); n > 0 {
		id = in.free[n-1]
		in.free = in.free[:n-1]
		in.attrs[id], in.refs[id] = a, 1
	} else {
		id = uint32(len(in.attrs))
		in.attrs = append(in.attrs, a)
		in.refs = append(in.refs, 1)
	}
	in.ids[a.Key] = id
	a.Slot = id
	return id
}

func (in *Interner) unref(id uint32) {
	if id == 0 {
		return
	}
	in.refs[id]--
	if in.refs[id] == 0 {
		delete(in.ids, in.attrs[id].Key)
		in.attrs[id] = nil
		in.free = append(in.free, id)
	}
}

// ipKey is a compact, pointer-free key for IP (and labeled) unicast
// routes, so a million-route map costs the garbage collector nothing.
type ipKey struct {
	hi, lo uint64
	id     uint32
	bits   uint8
	fam    uint8
}

type strKey struct {
	s   string
	id  uint32
	fam bgp.Family // so Each can name the route's family
}

// family indexes for IP-keyed families.
const (
	famV4 = iota
	famV6
	famV4L
	famV6L
	numIPFams
)

func ipFam(f bgp.Family) (uint8, bool) {
	switch f {
	case bgp.RF_IPv4_UC:
		return famV4, true
	case bgp.RF_IPv6_UC:
		return famV6, true
	case bgp.RF_IPv4_MPLS:
		return famV4L, true
	case bgp.RF_IPv6_MPLS:
		return famV6L, true
	}
	return 0, false
}

// Outcome says what a route did to a table.
type Outcome uint8

// Outcomes of Table.Announce and Table.Withdraw.
const (
	Added     Outcome = iota + 1 // a new route
	Changed                      // the route's attributes changed
	Duplicate                    // identical to what the table holds
	Removed                      // a withdraw removed a route
	Missing                      // a withdraw of a route the table does not hold
)

// Table holds the routes of one peer in one RIB view.
type Table struct {
	in    *Interner
	ip    map[ipKey]uint32
	other map[strKey]uint32
	// lens counts routes per prefix length per IP family, so the search
	// for a covering prefix only probes lengths that exist.
	lens    [numIPFams][129]uint32
	ipCount [numIPFams]uint64
	count   map[bgp.Family]uint64 // other families
	ipSeen  uint8                 // IP families that ever had a route
}

var ipFamilies = [numIPFams]bgp.Family{bgp.RF_IPv4_UC, bgp.RF_IPv6_UC, bgp.RF_IPv4_MPLS, bgp.RF_IPv6_MPLS}

// NewTable returns an empty table interning attributes in in.
func NewTable(in *Interner) *Table {
	return &Table{in: in, ip: map[ipKey]uint32{}, other: map[strKey]uint32{}, count: map[bgp.Family]uint64{}}
}

func keyOf(fam uint8, p netip.Prefix, id uint32) ipKey {
	a := p.Addr().As16()
	return ipKey{hi: binary.BigEndian.Uint64(a[:8]), lo: binary.BigEndian.Uint64(a[8:]), id: id, bits: uint8(p.Bits()), fam: fam}
}

// Announce records a route and reports what changed; old is the previous
// attribute set for Changed and Duplicate.
func (t *Table) Announce(n *decode.NLRI, a *decode.Attrs) (o Outcome, old *decode.Attrs) {
	if fam, ok := ipFam(n.Family); ok && n.IP.IsValid() {
		k := keyOf(fam, n.IP, n.PathID)
		if cur, ok := t.ip[k]; ok {
			return t.replace(cur, a, func(id uint32) { t.ip[k] = id })
		}
		t.ip[k] = t.in.ref(a)
		t.lens[fam][k.bits]++
		t.ipCount[fam]++
		t.ipSeen |= 1 << fam
		return Added, nil
	}
	k := strKey{s: n.Prefix, id: n.PathID, fam: n.Family}
	if cur, ok := t.other[k]; ok {
		return t.replace(cur, a, func(id uint32) { t.other[k] = id })
	}
	t.other[strKey{s: clone(n.Prefix), id: n.PathID, fam: n.Family}] = t.in.ref(a)
	t.count[n.Family]++
	return Added, nil
}

func clone(s string) string { return string([]byte(s)) }

func (t *Table) replace(cur uint32, a *decode.Attrs, set func(uint32)) (Outcome, *decode.Attrs) {
	old := t.in.attrs[cur]
	if old == a || (old != nil && a != nil && old.Key == a.Key) {
		return Duplicate, old
	}
	id := t.in.ref(a)
	t.in.unref(cur)
	set(id)
	return Changed, old
}

// Has reports whether the table holds the route.
func (t *Table) Has(n *decode.NLRI) bool {
	if fam, ok := ipFam(n.Family); ok && n.IP.IsValid() {
		_, ok := t.ip[keyOf(fam, n.IP, n.PathID)]
		return ok
	}
	_, ok := t.other[strKey{s: n.Prefix, id: n.PathID, fam: n.Family}]
	return ok
}

// Withdraw removes a route; old is the attribute set it had.
func (t *Table) Withdraw(n *decode.NLRI) (Outcome, *decode.Attrs) {
	if fam, ok := ipFam(n.Family); ok && n.IP.IsValid() {
		k := keyOf(fam, n.IP, n.PathID)
		cur, ok := t.ip[k]
		if !ok {
			return Missing, nil
		}
		old := t.in.attrs[cur]
		delete(t.ip, k)
		t.in.unref(cur)
		t.lens[fam][k.bits]--
		t.ipCount[fam]--
		return Removed, old
	}
	k := strKey{s: n.Prefix, id: n.PathID, fam: n.Family}
	cur, ok := t.other[k]
	if !ok {
		return Missing, nil
	}
	old := t.in.attrs[cur]
	delete(t.other, k)
	t.in.unref(cur)
	t.count[n.Family]--
	return Removed, old
}

// LongestCovering finds the longest prefix in the table that covers the
// IP route n, n's own prefix included when orEqual, held under path ID 0
// or any of ids (a table of an ADD-PATH session keys routes by path ID,
// which differ between tables). It appends the attribute sets held for
// that prefix to out and returns its length, or -1 when there is none;
// minBits bounds the search, so a caller that already has a covering
// prefix of length L passes L and finds only as long or longer ones.
func (t *Table) LongestCovering(n *decode.NLRI, ids []uint32, orEqual bool, minBits int, out []*decode.Attrs) (int, []*decode.Attrs) {
	fam, ok := ipFam(n.Family)
	if !ok || !n.IP.IsValid() {
		return -1, out
	}
	top := n.IP.Bits()
	if !orEqual {
		top--
	}
	for l := top; l >= max(minBits, 0); l-- {
		if t.lens[fam][l] == 0 {
			continue
		}
		p, err := n.IP.Addr().Prefix(l)
		if err != nil {
			continue
		}
		found := false
		if id, ok := t.ip[keyOf(fam, p, 0)]; ok {
			out, found = append(out, t.in.attrs[id]), true
		}
		for _, pid := range ids {
			if pid == 0 {
				continue
			}
			if id, ok := t.ip[keyOf(fam, p, pid)]; ok {
				out, found = append(out, t.in.attrs[id]), true
			}
		}
		if found {
			return l, out
		}
	}
	return -1, out
}

// Len returns the number of routes in the table.
func (t *Table) Len() int { return len(t.ip) + len(t.other) }

// Counts returns the routes per family; families that had routes stay
// listed with 0.
func (t *Table) Counts() map[bgp.Family]uint64 {
	out := make(map[bgp.Family]uint64, len(t.count)+numIPFams)
	for f, n := range t.count {
		out[f] = n
	}
	for i, n := range t.ipCount {
		if n > 0 || t.ipSeen&(1<<i) != 0 {
			out[ipFamilies[i]] = n
		}
	}
	return out
}

// Each calls f for every route in the table, in no particular order,
// with the attribute set it holds. The table must not change meanwhile.
// A Peer Down ends a peer's Adj-RIB-In, so the bridge walks it to write
// each route's withdrawal; without that, a route store that keeps the
// last action per route would show them announced for good.
func (t *Table) Each(f func(n *decode.NLRI, a *decode.Attrs)) {
	var n decode.NLRI
	for k, id := range t.ip {
		fam := ipFamilies[k.fam]
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], k.hi)
		binary.BigEndian.PutUint64(b[8:], k.lo)
		addr := netip.AddrFrom16(b)
		if fam == bgp.RF_IPv4_UC || fam == bgp.RF_IPv4_MPLS {
			addr = addr.Unmap()
		}
		n = decode.NLRI{AfiSafi: decode.AfiSafiName(fam), Family: fam, PathID: k.id, IP: netip.PrefixFrom(addr, int(k.bits))}
		f(&n, t.in.attrs[id])
	}
	for k, id := range t.other {
		n = decode.NLRI{AfiSafi: decode.AfiSafiName(k.fam), Family: k.fam, Prefix: k.s, PathID: k.id}
		f(&n, t.in.attrs[id])
	}
}

// Clear drops every route, releasing its attributes.
func (t *Table) Clear() {
	for _, id := range t.ip {
		t.in.unref(id)
	}
	for _, id := range t.other {
		t.in.unref(id)
	}
	clear(t.ip)
	clear(t.other)
	t.lens = [numIPFams][129]uint32{}
	t.ipCount = [numIPFams]uint64{}
	for f := range t.count {
		t.count[f] = 0
	}
}
