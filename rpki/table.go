// Package rpki validates route origins (RFC 6811) against the VRPs of one
// or more RPKI caches (package rtr): each route gets valid, invalid (by
// origin or by length) or not-found.
package rpki

import (
	"net/netip"
	"slices"
	"sync"

	"github.com/meshd/meshd/rpki/rtr"
)

// State is a route's origin validation state (RFC 6811 section 2).
type State uint8

// The states. InvalidOrigin and InvalidLength are RFC 6811's Invalid,
// told apart: a VRP covers the route with its origin AS but a shorter
// max length (length), or none with its origin (origin).
const (
	NotFound State = iota
	Valid
	InvalidOrigin
	InvalidLength
)

func (s State) String() string {
	switch s {
	case Valid:
		return "valid"
	case InvalidOrigin:
		return "invalid-origin"
	case InvalidLength:
		return "invalid-length"
	}
	return "not-found"
}

// Invalid reports whether s is either kind of Invalid.
func (s State) Invalid() bool { return s == InvalidOrigin || s == InvalidLength }

// vrpEntry is a VRP as the table indexes it, under its prefix.
type vrpEntry struct {
	maxLen uint8
	asn    uint32
}

// family indexes one address family's VRPs by prefix, and keeps which
// prefix lengths hold any: a lookup masks the route to each of those
// lengths (at most a handful in practice) rather than to all 33 or 129.
type family struct {
	byPrefix map[netip.Prefix][]vrpEntry
	lens     []int // sorted
	perLen   map[int]int
}

func (f *family) add(p netip.Prefix, e vrpEntry) {
	f.byPrefix[p] = append(f.byPrefix[p], e)
	if f.perLen[p.Bits()]++; f.perLen[p.Bits()] == 1 {
		i, _ := slices.BinarySearch(f.lens, p.Bits())
		f.lens = slices.Insert(f.lens, i, p.Bits())
	}
}

func (f *family) remove(p netip.Prefix, e vrpEntry) {
	es := f.byPrefix[p]
	i := slices.Index(es, e)
	if i < 0 {
		return
	}
	es = slices.Delete(es, i, i+1)
	if len(es) == 0 {
		delete(f.byPrefix, p)
	} else {
		f.byPrefix[p] = es
	}
	if f.perLen[p.Bits()]--; f.perLen[p.Bits()] == 0 {
		delete(f.perLen, p.Bits())
		if i, ok := slices.BinarySearch(f.lens, p.Bits()); ok {
			f.lens = slices.Delete(f.lens, i, i+1)
		}
	}
}

// Table is the union of the caches' VRPs. It is safe for concurrent use.
type Table struct {
	mu     sync.RWMutex
	v4, v6 family
	// count is how many caches hold each VRP: a VRP is in the table
	// while one does.
	count map[rtr.VRP]int
	// held is each cache's set, so that a cache's reset or expiry
	// takes back exactly what it gave.
	held map[string]map[rtr.VRP]struct{}
}

// NewTable returns an empty table.
func NewTable() *Table {
	newFamily := func() family { return family{byPrefix: map[netip.Prefix][]vrpEntry{}, perLen: map[int]int{}} }
	return &Table{v4: newFamily(), v6: newFamily(), count: map[rtr.VRP]int{}, held: map[string]map[rtr.VRP]struct{}{}}
}

func (t *Table) fam(p netip.Prefix) *family {
	if p.Addr().Is4() {
		return &t.v4
	}
	return &t.v6
}

// Apply takes a cache's delta and returns the VRPs that came into the
// table or left it: the routes they cover are the ones to validate
// again.
func (t *Table) Apply(cache string, d rtr.Delta) (changed []rtr.VRP) {
	t.mu.Lock()
	defer t.mu.Unlock()
	set := t.held[cache]
	if set == nil {
		set = map[rtr.VRP]struct{}{}
		t.held[cache] = set
	}
	drop := func(v rtr.VRP) {
		v.Prefix = v.Prefix.Masked()
		if _, ok := set[v]; !ok {
			return
		}
		delete(set, v)
		if t.count[v]--; t.count[v] == 0 {
			delete(t.count, v)
			t.fam(v.Prefix).remove(v.Prefix, vrpEntry{v.MaxLen, v.ASN})
			changed = append(changed, v)
		}
	}
	if d.Reset {
		keep := make(map[rtr.VRP]bool, len(d.Announced))
		for _, v := range d.Announced {
			v.Prefix = v.Prefix.Masked()
			keep[v] = true
		}
		for v := range set {
			if !keep[v] {
				drop(v)
			}
		}
	}
	for _, v := range d.Withdrawn {
		drop(v)
	}
	for _, v := range d.Announced {
		v.Prefix = v.Prefix.Masked()
		if _, ok := set[v]; ok {
			continue
		}
		set[v] = struct{}{}
		if t.count[v]++; t.count[v] == 1 {
			t.fam(v.Prefix).add(v.Prefix, vrpEntry{v.MaxLen, v.ASN})
			changed = append(changed, v)
		}
	}
	return changed
}

// Len is how many distinct VRPs the table holds.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.count)
}

// Validate gives a route's state by RFC 6811: origin is the AS that
// originated it, 0 when it has none (an AS_SET last, or an empty path
// from an iBGP peer's own route), which no VRP matches.
func (t *Table) Validate(p netip.Prefix, origin uint32) State {
	t.mu.RLock()
	defer t.mu.RUnlock()
	p = p.Masked()
	f := t.fam(p)
	covered, lengthOnly := false, false
	for _, l := range f.lens {
		if l > p.Bits() {
			break
		}
		q, _ := p.Addr().Prefix(l)
		for _, e := range f.byPrefix[q] {
			covered = true
			if origin != 0 && e.asn == origin {
				if p.Bits() <= int(e.maxLen) {
					return Valid
				}
				lengthOnly = true
			}
		}
	}
	switch {
	case !covered:
		return NotFound
	case lengthOnly:
		return InvalidLength
	}
	return InvalidOrigin
}
