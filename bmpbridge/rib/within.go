package rib

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/meshd/meshd/bmpbridge/decode"
)

// PrefixSet is a set of IP prefixes to search the tables under: the
// prefixes of VRPs that came or went, whose routes are to be validated
// again.
type PrefixSet struct {
	v4, v6 prefixFam
}

type prefixFam struct {
	set  map[netip.Prefix]struct{}
	lens []int // sorted
}

// NewPrefixSet returns a set of ps (masked).
func NewPrefixSet(ps ...netip.Prefix) *PrefixSet {
	s := &PrefixSet{v4: prefixFam{set: map[netip.Prefix]struct{}{}}, v6: prefixFam{set: map[netip.Prefix]struct{}{}}}
	for _, p := range ps {
		s.Add(p)
	}
	return s
}

// Add puts p in the set.
func (s *PrefixSet) Add(p netip.Prefix) {
	if !p.IsValid() {
		return
	}
	p = p.Masked()
	f := &s.v6
	if p.Addr().Is4() {
		f = &s.v4
	}
	if _, ok := f.set[p]; ok {
		return
	}
	f.set[p] = struct{}{}
	if i, ok := slices.BinarySearch(f.lens, p.Bits()); !ok {
		f.lens = slices.Insert(f.lens, i, p.Bits())
	}
}

// Len is how many prefixes the set holds.
func (s *PrefixSet) Len() int { return len(s.v4.set) + len(s.v6.set) }

// covers tells whether a prefix of the set covers p.
func (f *prefixFam) covers(p netip.Prefix) bool {
	for _, l := range f.lens {
		if l > p.Bits() {
			return false
		}
		q, _ := p.Addr().Prefix(l)
		if _, ok := f.set[q]; ok {
			return true
		}
	}
	return false
}

// Within calls f for every IP route of the table inside a prefix of s
// (the prefix itself or a more-specific of it), with its attribute set
// and State, and keeps the State f returns; it returns how many routes
// it visited. The table must not change meanwhile, but for the States.
//
// It lists the candidate keys under each prefix when that takes fewer
// lookups than walking the whole table, and walks it otherwise: a few
// VRPs changing (the common serial update) cost microseconds on a
// million-route table; a cache's full set costs one walk.
func (t *Table) Within(s *PrefixSet, f func(n *decode.NLRI, a *decode.Attrs, st State) State) int {
	if t.Len() == len(t.other) {
		return 0
	}
	if t.withPathID > 0 || t.listCost(s) > uint64(t.Len()) {
		return t.walkWithin(s, f)
	}
	visited := 0
	t.spans(s, func(fam uint8, p netip.Prefix, l int) bool {
		// Every prefix of length l under p: 2^(l-bits) of them.
		n := uint64(1) << (l - p.Bits())
		for i := uint64(0); i < n; i++ {
			q := netip.PrefixFrom(addOffset(p.Addr(), i, l), l)
			if v, ok := t.lookup(fam, q, 0); ok {
				visited++
				t.visit(fam, q, 0, v, f)
			}
		}
		return true
	})
	return visited
}

// listCost is how many lookups listing the candidates would take,
// saturating past the table's size.
func (t *Table) listCost(s *PrefixSet) uint64 {
	limit := uint64(t.Len())
	var cost uint64
	t.spans(s, func(_ uint8, p netip.Prefix, l int) bool {
		if l-p.Bits() >= 40 {
			cost = limit + 1
		} else {
			cost += uint64(1) << (l - p.Bits())
		}
		return cost <= limit
	})
	return cost
}

// spans calls f for each IP family the table holds routes of, each
// prefix p of s in its address family, and each length l from p's on
// that the family holds routes of, until f returns false.
func (t *Table) spans(s *PrefixSet, f func(fam uint8, p netip.Prefix, l int) bool) {
	for fam := uint8(0); fam < numIPFams; fam++ {
		if t.ipCount[fam] == 0 {
			continue
		}
		pf, width := &s.v6, 128
		if fam == famV4 || fam == famV4L {
			pf, width = &s.v4, 32
		}
		for p := range pf.set {
			for l := p.Bits(); l <= width; l++ {
				if t.lens[fam][l] != 0 && !f(fam, p, l) {
					return
				}
			}
		}
	}
}

// addOffset returns the i-th prefix of length l after base (base's bits
// past its own length are zero).
func addOffset(base netip.Addr, i uint64, l int) netip.Addr {
	if base.Is4() {
		a := base.As4()
		v := binary.BigEndian.Uint32(a[:]) + uint32(i)<<(32-l)
		binary.BigEndian.PutUint32(a[:], v)
		return netip.AddrFrom4(a)
	}
	a := base.As16()
	hi, lo := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	// i shifted left by 128-l, as a 128-bit add.
	sh := uint(128 - l)
	var addHi, addLo uint64
	switch {
	case sh >= 64:
		addHi = i << (sh - 64)
	case sh == 0:
		addLo = i
	default:
		addLo = i << sh
		addHi = i >> (64 - sh)
	}
	var c uint64
	lo, c = bits.Add64(lo, addLo, 0)
	hi, _ = bits.Add64(hi, addHi, c)
	binary.BigEndian.PutUint64(a[:8], hi)
	binary.BigEndian.PutUint64(a[8:], lo)
	return netip.AddrFrom16(a)
}

func (t *Table) visit(fam uint8, p netip.Prefix, pathID uint32, v uint32, f func(n *decode.NLRI, a *decode.Attrs, st State) State) {
	id, st := split(v)
	family := ipFamilies[fam]
	n := decode.NLRI{AfiSafi: decode.AfiSafiName(family), Family: family, PathID: pathID, IP: p}
	if now := f(&n, t.in.get(id), st) & (numStates - 1); now != st {
		nv := join(id, now)
		t.states[st]--
		t.states[now]++
		if fam == famV4 && p.Addr().Is4() {
			t.v4[v4KeyOf(p, pathID)] = nv
		} else {
			t.ip[keyOf(fam, p, pathID)] = nv
		}
	}
}

// walkWithin is Within by walking every IP route.
func (t *Table) walkWithin(s *PrefixSet, f func(n *decode.NLRI, a *decode.Attrs, st State) State) int {
	visited := 0
	if len(s.v4.set) > 0 {
		for k, v := range t.v4 {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], k.addr)
			p := netip.PrefixFrom(netip.AddrFrom4(b), int(k.bits))
			if s.v4.covers(p) {
				visited++
				t.visit(famV4, p, k.id, v, f)
			}
		}
	}
	for k, v := range t.ip {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], k.hi)
		binary.BigEndian.PutUint64(b[8:], k.lo)
		addr := netip.AddrFrom16(b)
		pf := &s.v6
		if fam := ipFamilies[k.fam]; fam == bgp.RF_IPv4_UC || fam == bgp.RF_IPv4_MPLS {
			addr, pf = addr.Unmap(), &s.v4
		}
		p := netip.PrefixFrom(addr, int(k.bits))
		if pf.covers(p) {
			visited++
			t.visit(k.fam, p, k.id, v, f)
		}
	}
	return visited
}
