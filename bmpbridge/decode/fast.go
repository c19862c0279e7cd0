package decode

import (
	"encoding/binary"
	"net/netip"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/packet/bmp"
)

// fastRoute decodes the common Route Monitoring message without gobgp:
// IPv4/IPv6 unicast whose attribute set was seen before (the interner or
// the decoder's cache has it), so only the NLRI need reading, or is one
// fastAttrs reads. Anything
// else, or anything odd, or a peer without a Peer Up (whose ADD-PATH is
// guessed), returns false and takes gobgp's full path, which also
// produces the proper error.
func (d *Decoder) fastRoute(raw []byte, m *Message) bool {
	if len(raw) < bmp.BMP_HEADER_SIZE+bmp.BMP_PEER_HEADER_SIZE+bgpHeaderLen+4 {
		return false
	}
	var h bmp.BMPPeerHeader
	if h.DecodeFromBytes(raw[bmp.BMP_HEADER_SIZE:]) != nil {
		return false
	}
	if d.peers[keyOf(&h)] == nil {
		return false // no Peer Up: ADD-PATH is guessed on the full path
	}
	twoByte := h.PeerType != bmp.BMP_PEER_TYPE_LOCAL_RIB && h.Flags&bmp.BMP_PEER_FLAG_TWO_AS != 0
	key, fams, hasAttrs, err := rawAttrs(raw, twoByte, d.keyBuf[:0], d.famBuf[:0])
	d.keyBuf, d.famBuf = key, fams
	if err != nil {
		return false
	}
	for _, f := range fams {
		if f != bgp.RF_IPv4_UC && f != bgp.RF_IPv6_UC {
			return false
		}
	}
	var attrs *Attrs
	if hasAttrs {
		if d.Interner != nil {
			attrs = d.Interner.Lookup(key)
		}
		if attrs == nil {
			attrs = d.cachedAttrs(key)
		}
	}
	var o *bgp.MarshallingOption
	if opts := d.options(h); len(opts) > 0 {
		o = opts[0]
	}
	ap4, ap6 := addPathOn(o, bgp.RF_IPv4_UC), addPathOn(o, bgp.RF_IPv6_UC)
	if ap4 || ap6 {
		// Some senders leave negotiated path IDs out: anything but the
		// negotiated reading takes the full path (addpath.go).
		opt, w, absent := d.settleAddPath(raw, &h, o, true, d.warnBuf[:0])
		d.warnBuf = w[:0]
		if opt != nil || len(w) > 0 || absent {
			return false
		}
	}

	u := m.spare
	if u == nil {
		u = &Update{}
	} else {
		*u = Update{Announce: u.Announce[:0], Withdraw: u.Withdraw[:0]}
	}
	b := raw[bmp.BMP_HEADER_SIZE+bmp.BMP_PEER_HEADER_SIZE+bgpHeaderLen:]
	wl := int(binary.BigEndian.Uint16(b))
	text := !d.LazyPrefix
	if u.Withdraw, err = prefixes(u.Withdraw, b[2:2+wl], bgp.RF_IPv4_UC, ap4, text); err != nil {
		return false
	}
	b = b[2+wl:]
	al := int(binary.BigEndian.Uint16(b))
	as, nlri := b[2:2+al], b[2+al:]
	if u.Announce, err = prefixes(u.Announce, nlri, bgp.RF_IPv4_UC, ap4, text); err != nil {
		return false
	}
	for len(as) > 0 {
		flags, typ := as[0], bgp.BGPAttrType(as[1])
		if flags&0x0f != 0 {
			return false // unused flag bits: gobgp refuses the attribute
		}
		hl, l := 3, int(as[2])
		if flags&0x10 != 0 {
			hl, l = 4, int(binary.BigEndian.Uint16(as[2:4]))
		}
		v := as[hl : hl+l]
		as = as[hl+l:]
		if (typ == bgp.BGP_ATTR_TYPE_MP_REACH_NLRI || typ == bgp.BGP_ATTR_TYPE_MP_UNREACH_NLRI) && flags&^0x10 != 0x80 {
			return false // gobgp wants them optional, non-transitive, not partial
		}
		switch typ {
		case bgp.BGP_ATTR_TYPE_MP_REACH_NLRI:
			if len(v) < 5 || binary.BigEndian.Uint16(v) != bgp.AFI_IP6 {
				return false
			}
			off := 4 + int(v[3])
			if off >= len(v) {
				return false
			}
			if u.Announce, err = prefixes(u.Announce, v[off+1:], bgp.RF_IPv6_UC, ap6, text); err != nil {
				return false
			}
		case bgp.BGP_ATTR_TYPE_MP_UNREACH_NLRI:
			if len(v) < 3 || binary.BigEndian.Uint16(v) != bgp.AFI_IP6 {
				return false
			}
			if len(v) == 3 && len(u.Announce) == 0 && len(u.Withdraw) == 0 {
				return false // End-of-RIB: let the full path name it
			}
			if u.Withdraw, err = prefixes(u.Withdraw, v[3:], bgp.RF_IPv6_UC, ap6, text); err != nil {
				return false
			}
		}
	}
	m.spare = u
	if len(u.Announce) == 0 && len(u.Withdraw) == 0 {
		return false
	}
	if hasAttrs && attrs == nil {
		if d.noFastAttrs {
			return false
		}
		if attrs = d.fastAttrs(key); attrs == nil {
			return false
		}
		d.fastSets++
		if d.Interner == nil {
			d.cacheAttrs(attrs)
		}
	}
	if len(u.Announce) > 0 {
		u.Attrs = attrs
	}
	m.Peer = d.peer(&h)
	m.Time = stamp(h.Timestamp)
	m.Update = u
	return true
}

func addPathOn(o *bgp.MarshallingOption, f bgp.Family) bool {
	return o != nil && o.AddPath != nil && o.AddPath[f]&bgp.BGP_ADD_PATH_RECEIVE != 0
}

// prefixes reads RFC 4271 prefix encodings (with RFC 7911 path IDs); text
// fills NLRI.Prefix.
func prefixes(out []NLRI, b []byte, f bgp.Family, addPath, text bool) ([]NLRI, error) {
	var buf [64]byte
	maxBits, name := 32, "IPV4_UNICAST"
	if f == bgp.RF_IPv6_UC {
		maxBits, name = 128, "IPV6_UNICAST"
	}
	zero, count := false, 0
	for len(b) > 0 {
		var id uint32
		if addPath {
			if len(b) < 5 {
				return out, errShort
			}
			id, b = binary.BigEndian.Uint32(b), b[4:]
		}
		bits := int(b[0])
		n := (bits + 7) / 8
		if bits > maxBits || len(b) < 1+n {
			return out, errShort
		}
		var a [16]byte
		copy(a[:], b[1:1+n])
		var addr netip.Addr
		if maxBits == 32 {
			addr = netip.AddrFrom4([4]byte(a[:4]))
		} else {
			addr = netip.AddrFrom16(a)
		}
		if bits%8 != 0 && b[n]&(0xff>>(bits%8)) != 0 {
			return out, errOdd // bits past the prefix length: settle ADD-PATH
		}
		zero, count = zero || bits == 0, count+1
		if zero && count > 1 {
			return out, errOdd // a /0 among others: settle ADD-PATH
		}
		p := netip.PrefixFrom(addr, bits).Masked()
		r := NLRI{AfiSafi: name, Family: f, PathID: id, IP: p}
		if text {
			r.Prefix = string(p.AppendTo(buf[:0])) // one allocation, where String makes two
		}
		out = append(out, r)
		b = b[1+n:]
	}
	return out, nil
}
