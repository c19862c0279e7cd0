package decode

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// Attribute sets seen for the first time are read here straight from the
// attribute key (rawAttrs), not through gobgp: on a full table where
// most routes carry a set of their own (a MED, local-pref, aggregator or
// community of their own), gobgp's decode allocates an object per
// attribute, AS path segment and community, and was half of the BMP
// path's CPU (bench/bmpreplay -new-attr-share 1.0: 19 CPU-s per 1M
// messages before, see the package report for after). The reader accepts
// only what it checks as strictly as gobgp does, or more strictly, and
// leaves anything else (unknown attribute types, odd flags, duplicates,
// other next-hop encodings) to gobgp's full decode; FuzzFastAttrs holds
// its result equal to gobgp's on the same bytes.

// attrParser holds the scratch a Decoder reuses between attribute sets.
type attrParser struct {
	segs, segs4 []segment
	as          []uint32
	text        []byte
	comm        []int // end offsets of communities in text
	large       []int
}

// attrFlags are the flags gobgp requires of each attribute it knows
// (bgp.PathAttrFlags), the extended-length and partial bits aside; the
// types here are those fastAttrs reads.
var attrFlags = [256]uint8{
	bgp.BGP_ATTR_TYPE_ORIGIN:               0x40,
	bgp.BGP_ATTR_TYPE_AS_PATH:              0x40,
	bgp.BGP_ATTR_TYPE_NEXT_HOP:             0x40,
	bgp.BGP_ATTR_TYPE_MULTI_EXIT_DISC:      0x80,
	bgp.BGP_ATTR_TYPE_LOCAL_PREF:           0x40,
	bgp.BGP_ATTR_TYPE_ATOMIC_AGGREGATE:     0x40,
	bgp.BGP_ATTR_TYPE_AGGREGATOR:           0xc0,
	bgp.BGP_ATTR_TYPE_COMMUNITIES:          0xc0,
	bgp.BGP_ATTR_TYPE_ORIGINATOR_ID:        0x80,
	bgp.BGP_ATTR_TYPE_CLUSTER_LIST:         0x80,
	bgp.BGP_ATTR_TYPE_EXTENDED_COMMUNITIES: 0xc0,
	bgp.BGP_ATTR_TYPE_AS4_PATH:             0xc0,
	bgp.BGP_ATTR_TYPE_AS4_AGGREGATOR:       0xc0,
	bgp.BGP_ATTR_TYPE_LARGE_COMMUNITY:      0xc0,
}

// gobgpTypes are the attribute types gobgp decodes by type
// (bgp.GetPathAttribute); any other it keeps as unknown, checking only
// the flags' RFC 4271 rules.
var gobgpTypes = [256]bool{1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 8: true, 9: true, 10: true,
	14: true, 15: true, 16: true, 17: true, 18: true, 22: true, 23: true, 25: true, 26: true, 29: true, 32: true, 40: true}

// fastAttrs reads the attribute key made by rawAttrs (a width byte, then
// every attribute as on the wire, MP_REACH_NLRI shortened to type 14,
// AFI, SAFI, next-hop length and next hop) into Attrs, or returns nil to
// have gobgp decode the message.
func (d *Decoder) fastAttrs(key []byte) *Attrs { return d.ap.read(key) }

// KeyReader reads attribute sets back from their keys (Attrs.Key), for
// a RIB that keeps the keys and not the decoded sets.
type KeyReader struct{ ap attrParser }

// Read returns the attribute set of key, or nil for a key the fast reader
// does not read (one whose Attrs.FromKey is false).
func (r *KeyReader) Read(key []byte) *Attrs { return r.ap.read(key) }

// FromKey tells whether KeyReader.Read rebuilds the set from its Key.
func (a *Attrs) FromKey() bool { return a.fromKey }

func (p *attrParser) read(key []byte) *Attrs {
	if len(key) == 0 {
		return nil
	}
	twoByte := key[0] == 2
	b := key[1:]
	var (
		seen              [256]bool
		origin            string
		med, lp           uint32
		hasMED, hasLP     bool
		nh                netip.Addr
		pathV, path4V     []byte
		hasPath, hasPath4 bool
		comm, large, ext  []byte
		extAttr           []byte
	)
	for len(b) > 0 {
		if b[0] == byte(bgp.BGP_ATTR_TYPE_MP_REACH_NLRI) {
			// MP_REACH_NLRI as rawAttrs keeps it: IPv6 unicast with a
			// global (and perhaps link-local) next hop only.
			if len(b) < 5 || seen[bgp.BGP_ATTR_TYPE_MP_REACH_NLRI] {
				return nil
			}
			seen[bgp.BGP_ATTR_TYPE_MP_REACH_NLRI] = true
			afi, safi, l := binary.BigEndian.Uint16(b[1:3]), b[3], int(b[4])
			if afi != bgp.AFI_IP6 || safi != bgp.SAFI_UNICAST || (l != 16 && l != 32) || len(b) < 5+l {
				return nil
			}
			nh = netip.AddrFrom16([16]byte(b[5:21]))
			b = b[5+l:]
			continue
		}
		if len(b) < 3 {
			return nil
		}
		flags, typ := b[0], bgp.BGPAttrType(b[1])
		hl, l := 3, int(b[2])
		if flags&0x10 != 0 {
			if len(b) < 4 {
				return nil
			}
			hl, l = 4, int(binary.BigEndian.Uint16(b[2:4]))
		}
		if len(b) < hl+l {
			return nil
		}
		if seen[typ] || (flags&0x20 != 0 && flags&0xc0 != 0xc0) {
			return nil // repeated, or partial where RFC 4271 refuses it
		}
		seen[typ] = true
		if !gobgpTypes[typ] {
			// An attribute gobgp does not know (OTC, ATTR_SET …): not
			// read, as gobgp does not; well-known needs transitive.
			if flags&0xc0 == 0 {
				return nil
			}
			b = b[hl+l:]
			continue
		}
		if want := attrFlags[typ]; want == 0 || flags&^0x30 != want {
			return nil // one this reader leaves to gobgp, or flags gobgp refuses
		}
		v := b[hl : hl+l]
		attr := b[:hl+l]
		b = b[hl+l:]
		switch typ {
		case bgp.BGP_ATTR_TYPE_ORIGIN:
			if l != 1 {
				return nil
			}
			switch v[0] {
			case 0:
				origin = "IGP"
			case 1:
				origin = "EGP"
			default:
				origin = "INCOMPLETE"
			}
		case bgp.BGP_ATTR_TYPE_AS_PATH:
			pathV, hasPath = v, true
		case bgp.BGP_ATTR_TYPE_NEXT_HOP:
			if l != 4 {
				return nil
			}
			nh = netip.AddrFrom4([4]byte(v))
		case bgp.BGP_ATTR_TYPE_MULTI_EXIT_DISC:
			if l != 4 {
				return nil
			}
			med, hasMED = binary.BigEndian.Uint32(v), true
		case bgp.BGP_ATTR_TYPE_LOCAL_PREF:
			if l != 4 {
				return nil
			}
			lp, hasLP = binary.BigEndian.Uint32(v), true
		case bgp.BGP_ATTR_TYPE_ATOMIC_AGGREGATE:
			if l != 0 {
				return nil
			}
		case bgp.BGP_ATTR_TYPE_AGGREGATOR:
			if l != 6 && l != 8 {
				return nil
			}
		case bgp.BGP_ATTR_TYPE_ORIGINATOR_ID:
			if l != 4 {
				return nil
			}
		case bgp.BGP_ATTR_TYPE_CLUSTER_LIST:
			if l%4 != 0 {
				return nil
			}
		case bgp.BGP_ATTR_TYPE_COMMUNITIES:
			if l%4 != 0 {
				return nil
			}
			comm = v
		case bgp.BGP_ATTR_TYPE_EXTENDED_COMMUNITIES:
			if l%8 != 0 {
				return nil
			}
			ext, extAttr = v, attr
		case bgp.BGP_ATTR_TYPE_AS4_PATH:
			path4V, hasPath4 = v, true
		case bgp.BGP_ATTR_TYPE_AS4_AGGREGATOR:
			if l != 8 {
				return nil
			}
		case bgp.BGP_ATTR_TYPE_LARGE_COMMUNITY:
			if l%12 != 0 {
				return nil
			}
			large = v
		}
	}

	// The AS path: AS_PATH in the peer's width, AS4_PATH in 4 bytes
	// (RFC 6793 4.2.3).
	p.as = p.as[:0]
	var ok bool
	p.segs = p.segs[:0]
	if hasPath {
		w := 4
		if twoByte {
			w = 2
		}
		if p.segs, ok = p.readPath(p.segs, pathV, w); !ok {
			return nil
		}
	}
	p.segs4 = p.segs4[:0]
	if hasPath4 {
		if p.segs4, ok = p.readPath(p.segs4, path4V, 4); !ok {
			return nil
		}
	}
	var extMap map[string][]string
	if ext != nil {
		// Extended communities are rare on full tables and have many
		// kinds: gobgp names them.
		var e bgp.PathAttributeExtendedCommunities
		if e.DecodeFromBytes(extAttr) != nil {
			return nil
		}
		extMap = map[string][]string{}
		for _, c := range e.Value {
			k := extCommunityKind(c)
			extMap[k] = append(extMap[k], c.String())
		}
	}

	// Every text of the set, and the key, in one string.
	t := append(p.text[:0], key...)
	segs := mergeSegments(p.segs, p.segs4)
	pathStart := len(t)
	t, originAS := appendASPath(t, segs)
	pathEnd := len(t)
	nhEnd := pathEnd
	if nh.IsValid() {
		t = nh.AppendTo(t)
		nhEnd = len(t)
	}
	p.comm = p.comm[:0]
	for c := comm; len(c) >= 4; c = c[4:] {
		x := binary.BigEndian.Uint32(c)
		t = strconv.AppendUint(t, uint64(x>>16), 10)
		t = append(t, ':')
		t = strconv.AppendUint(t, uint64(x&0xffff), 10)
		p.comm = append(p.comm, len(t))
	}
	p.large = p.large[:0]
	for c := large; len(c) >= 12; c = c[12:] {
		t = strconv.AppendUint(t, uint64(binary.BigEndian.Uint32(c)), 10)
		t = append(t, ':')
		t = strconv.AppendUint(t, uint64(binary.BigEndian.Uint32(c[4:])), 10)
		t = append(t, ':')
		t = strconv.AppendUint(t, uint64(binary.BigEndian.Uint32(c[8:])), 10)
		p.large = append(p.large, len(t))
	}
	p.text = t
	s := string(t)

	box := &attrsBox{med: med, lp: lp}
	a := &box.Attrs
	a.Key = s[:len(key)]
	a.Origin = origin
	a.ASPath, a.OriginAS = s[pathStart:pathEnd], originAS
	a.NextHop = s[pathEnd:nhEnd]
	if hasMED {
		a.MED = &box.med
	}
	if hasLP {
		a.LocalPref = &box.lp
	}
	if n := len(p.comm) + len(p.large); n > 0 {
		strs := make([]string, n)
		start := nhEnd
		for i, end := range p.comm {
			strs[i], start = s[start:end], end
		}
		for i, end := range p.large {
			strs[len(p.comm)+i], start = s[start:end], end
		}
		if len(p.comm) > 0 {
			a.Communities = strs[:len(p.comm):len(p.comm)]
		}
		if len(p.large) > 0 {
			a.LargeCommunities = strs[len(p.comm):]
		}
	}
	a.ExtCommunities = extMap
	a.fromKey = true
	return a
}

// attrsBox holds an Attrs with its MED and local-pref, one allocation.
type attrsBox struct {
	Attrs
	med, lp uint32
}

// readPath reads AS path segments of w-byte ASes, with gobgp's checks
// (validateAsPathValueBytes): known segment types, no empty segment, no
// bytes left over.
func (p *attrParser) readPath(segs []segment, v []byte, w int) ([]segment, bool) {
	if len(v)%2 != 0 {
		return segs, false
	}
	for len(v) > 0 {
		if len(v) < 2 {
			return segs, false
		}
		typ, n := v[0], int(v[1])
		if typ == 0 || typ > 4 || n == 0 || len(v) < 2+n*w {
			return segs, false
		}
		start := len(p.as)
		for i := 0; i < n; i++ {
			if w == 2 {
				p.as = append(p.as, uint32(binary.BigEndian.Uint16(v[2+2*i:])))
			} else {
				p.as = append(p.as, binary.BigEndian.Uint32(v[2+4*i:]))
			}
		}
		segs = append(segs, segment{typ: typ, as: p.as[start:len(p.as):len(p.as)]})
		v = v[2+n*w:]
	}
	return segs, true
}
