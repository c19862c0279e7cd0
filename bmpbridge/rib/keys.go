package rib

import (
	"encoding/binary"
	"net/netip"

	"github.com/meshd/meshd/bmpbridge/decode"
)

// Key is a unicast route's place in a table: its prefix and ADD-PATH
// path ID.
type Key struct {
	Prefix netip.Prefix
	PathID uint32
}

// AppendKeys appends the keys of the table's IPv4 (v4) and IPv6 (v6)
// unicast routes, or, when p is valid, of p's routes only. A reader that
// must not hold the table's lock for a whole walk (the gNMI target's RIB
// paths) takes the keys at once and the routes a batch at a time.
func (t *Table) AppendKeys(dst []Key, v4, v6 bool, p netip.Prefix) []Key {
	if p.IsValid() {
		if p.Addr().Is4() && !v4 || !p.Addr().Is4() && !v6 {
			return dst
		}
		if t.withPathID == 0 {
			if _, _, ok := t.Get(Key{Prefix: p}); ok {
				dst = append(dst, Key{Prefix: p})
			}
			return dst
		}
	}
	if v4 {
		for k := range t.v4 {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], k.addr)
			pk := netip.PrefixFrom(netip.AddrFrom4(b), int(k.bits))
			if !p.IsValid() || pk == p {
				dst = append(dst, Key{Prefix: pk, PathID: k.id})
			}
		}
	}
	if v6 {
		for k := range t.ip {
			if k.fam != famV6 {
				continue
			}
			var b [16]byte
			binary.BigEndian.PutUint64(b[:8], k.hi)
			binary.BigEndian.PutUint64(b[8:], k.lo)
			pk := netip.PrefixFrom(netip.AddrFrom16(b), int(k.bits))
			if !p.IsValid() || pk == p {
				dst = append(dst, Key{Prefix: pk, PathID: k.id})
			}
		}
	}
	return dst
}

// Get returns the attribute set a unicast route holds, and the set's ID
// in the interner (the same for every route that shares the set).
func (t *Table) Get(k Key) (a *decode.Attrs, id uint32, ok bool) {
	fam := uint8(famV6)
	if k.Prefix.Addr().Is4() {
		fam = famV4
	}
	v, ok := t.lookup(fam, k.Prefix, k.PathID)
	if !ok {
		return nil, 0, false
	}
	id = v & idMask
	return t.in.get(id), id, true
}
