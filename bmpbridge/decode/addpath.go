package decode

import (
	"encoding/binary"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/packet/bmp"
)

// ADD-PATH guessing.
//
// Whether a peer's NLRI carry RFC 7911 path IDs was negotiated in the OPENs
// that its Peer Up Notification carries. A capture (or a session) joined
// after the Peer Up does not have them, and reading ADD-PATH NLRI without
// path IDs does not fail: the ID 1 (00 00 00 01) reads as three /0 routes
// and a /1, and the real prefix's bytes turn into more made-up routes.
//
// So, for a peer without a Peer Up, each ADD-PATH-capable family of a
// Route Monitoring message (IPv4/IPv6 unicast and labeled unicast) is read
// both ways, each reading checked strictly: every prefix length within the
// family's width, no prefix past the end of its field, and no bit set past
// the prefix length (a sender masks its prefixes; Wireshark's BGP
// dissector checks the same). Then, per family:
//
//   - only one reading is clean: that one; a reading with path IDs is
//     reported as a guess.
//   - both are clean: the reading this peer's family was last settled on
//     by an unambiguous message of the same RIB view (gobgpd v4 sends
//     pre-policy routes with path IDs and the same peer's post-policy
//     ones without); failing that, the reading with path IDs
//     when the plain one holds a /0 among other prefixes (what path IDs
//     below 2^24 look like; a real default route is not packed with
//     others by the senders we know), else the plain reading. Reported as
//     ambiguous, naming the rule.
//   - neither is clean: the readings are checked again without the
//     masked-bits rule, in the same order, and reported as such; if both
//     still fail, the plain reading goes to gobgp, whose error is the
//     message's.
//
// Every reading that is not the only clean one adds a warning to the
// message; a prefix that may be made up is never printed without one.

// addPathFamilies are the families whose NLRI may carry path IDs and whose
// encoding the guess can check.
var addPathFamilies = [...]bgp.Family{bgp.RF_IPv4_UC, bgp.RF_IPv6_UC, bgp.RF_IPv4_MPLS, bgp.RF_IPv6_MPLS}

// nlriFields collects the NLRI fields of one UPDATE by family.
type nlriFields struct {
	fields [len(addPathFamilies)][][]byte
}

func famIndex(f bgp.Family) int {
	for i, g := range addPathFamilies {
		if g == f {
			return i
		}
	}
	return -1
}

// split finds the NLRI fields of the UPDATE in a Route Monitoring message;
// false when the UPDATE's framing is broken (gobgp then reports it).
func (n *nlriFields) split(raw []byte) bool {
	b := raw[bmp.BMP_HEADER_SIZE+bmp.BMP_PEER_HEADER_SIZE:]
	if len(b) < bgpHeaderLen+4 || b[18] != bgpUpdate {
		return false
	}
	if l := int(binary.BigEndian.Uint16(b[16:18])); l >= bgpHeaderLen && l <= len(b) {
		b = b[:l]
	}
	b = b[bgpHeaderLen:]
	wl := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+wl+2 {
		return false
	}
	n.add(bgp.RF_IPv4_UC, b[2:2+wl])
	b = b[2+wl:]
	al := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+al {
		return false
	}
	as := b[2 : 2+al]
	n.add(bgp.RF_IPv4_UC, b[2+al:])
	for len(as) > 0 {
		if len(as) < 3 {
			return false
		}
		flags, typ := as[0], as[1]
		hl, l := 3, int(as[2])
		if flags&0x10 != 0 {
			if len(as) < 4 {
				return false
			}
			hl, l = 4, int(binary.BigEndian.Uint16(as[2:4]))
		}
		if len(as) < hl+l {
			return false
		}
		v := as[hl : hl+l]
		as = as[hl+l:]
		switch typ {
		case 14: // MP_REACH_NLRI: AFI, SAFI, next hop, a reserved byte, NLRI
			if len(v) < 5 || len(v) < 5+int(v[3]) {
				continue
			}
			n.add(bgp.NewFamily(binary.BigEndian.Uint16(v), v[2]), v[5+int(v[3]):])
		case 15: // MP_UNREACH_NLRI: AFI, SAFI, withdrawn NLRI
			if len(v) < 3 {
				continue
			}
			n.add(bgp.NewFamily(binary.BigEndian.Uint16(v), v[2]), v[3:])
		}
	}
	return true
}

func (n *nlriFields) add(f bgp.Family, b []byte) {
	if i := famIndex(f); i >= 0 && len(b) > 0 {
		n.fields[i] = append(n.fields[i], b)
	}
}

// reading is what one way of reading a family's NLRI fields gave.
type reading struct {
	clean     bool // parses with no bit set past any prefix length
	loose     bool // parses when such bits are allowed
	zeroAmong bool // holds a /0 among other prefixes
}

// readNLRI checks a family's NLRI fields read with or without path IDs.
func readNLRI(f bgp.Family, fields [][]byte, addPath bool) reading {
	r := reading{clean: true, loose: true}
	maxBits := 32
	if f.Afi() == bgp.AFI_IP6 {
		maxBits = 128
	}
	labeled := f.Safi() == bgp.SAFI_MPLS_LABEL
	for _, b := range fields {
		count, zero := 0, false
		for len(b) > 0 {
			if addPath {
				if len(b) < 5 {
					return reading{}
				}
				b = b[4:]
			}
			bits := int(b[0])
			b = b[1:]
			if labeled {
				// RFC 8277: labels of 3 bytes each, to the bottom of stack
				// (a withdrawal's 0x800000 has it set too).
				for {
					if bits < 24 || len(b) < 3 {
						return reading{}
					}
					bos := b[2]&1 != 0
					b, bits = b[3:], bits-24
					if bos {
						break
					}
				}
			}
			if bits > maxBits {
				return reading{}
			}
			n := (bits + 7) / 8
			if len(b) < n {
				return reading{}
			}
			if bits%8 != 0 && b[n-1]&(0xff>>(bits%8)) != 0 {
				r.clean = false
			}
			b = b[n:]
			zero = zero || bits == 0
			count++
		}
		r.zeroAmong = r.zeroAmong || (zero && count > 1)
	}
	return r
}

// guessAddPath decides, for a Route Monitoring message from a peer without
// a Peer Up, which families to read with path IDs. It returns nil options
// when nothing is read with them, and the warnings to attach.
func (d *Decoder) guessAddPath(raw []byte, h *bmp.BMPPeerHeader, warnings []string) (*bgp.MarshallingOption, []string) {
	var n nlriFields
	if !n.split(raw) {
		return nil, warnings
	}
	key := viewKey{keyOf(h), h.Flags & (bmp.BMP_PEER_FLAG_POST_POLICY | bmp.BMP_PEER_FLAG_ADJ_RIB_TYP)}
	var opt *bgp.MarshallingOption
	for i, f := range addPathFamilies {
		if len(n.fields[i]) == 0 {
			continue
		}
		with, plain := readNLRI(f, n.fields[i], true), readNLRI(f, n.fields[i], false)
		ap, warn := d.settle(key, f, with, plain)
		if warn != "" {
			warnings = append(warnings, AfiSafiName(f)+": "+warn)
		}
		if ap {
			if opt == nil {
				opt = &bgp.MarshallingOption{AddPath: map[bgp.Family]bgp.BGPAddPathMode{}}
			}
			opt.AddPath[f] = bgp.BGP_ADD_PATH_RECEIVE
		}
	}
	if opt != nil && h.PeerType != bmp.BMP_PEER_TYPE_LOCAL_RIB && h.Flags&bmp.BMP_PEER_FLAG_TWO_AS != 0 {
		opt.Use2ByteAS = true
	}
	return opt, warnings
}

// Warnings of the ADD-PATH guess, after the family name.
const (
	WarnAddPathGuessed   = "ADD-PATH guessed (no Peer Up seen for this peer): read with path IDs, the only reading that parses"
	WarnAddPathHostBits  = "ADD-PATH guessed (no Peer Up seen for this peer): no reading parses cleanly (bits set past a prefix length); read "
	WarnAddPathAmbiguous = "ADD-PATH unknown (no Peer Up seen for this peer) and both readings parse: read "
)

// settle applies the rules of the package comment above for one family.
func (d *Decoder) settle(key viewKey, f bgp.Family, with, plain reading) (addPath bool, warn string) {
	switch {
	case plain.clean && !with.clean:
		d.remember(key, f, false)
		return false, ""
	case with.clean && !plain.clean:
		d.remember(key, f, true)
		return true, WarnAddPathGuessed
	case with.clean && plain.clean:
		if ap, ok := d.guessed[key][f]; ok {
			return ap, WarnAddPathAmbiguous + how(ap) + " as this peer's earlier unambiguous messages"
		}
		if plain.zeroAmong {
			return true, WarnAddPathAmbiguous + how(true) + " (the reading without holds a /0 among other prefixes)"
		}
		return false, WarnAddPathAmbiguous + how(false) + " (the default when neither reading is implausible)"
	case plain.loose:
		return false, WarnAddPathHostBits + how(false)
	case with.loose:
		return true, WarnAddPathHostBits + how(true)
	}
	return false, ""
}

func how(addPath bool) string {
	if addPath {
		return "with path IDs"
	}
	return "without path IDs"
}

// viewKey is one RIB view of a peer: its post-policy and Adj-RIB-Out
// flags.
type viewKey struct {
	PeerKey
	view uint8
}

func (d *Decoder) remember(key viewKey, f bgp.Family, addPath bool) {
	if d.guessed == nil {
		d.guessed = map[viewKey]map[bgp.Family]bool{}
	}
	m := d.guessed[key]
	if m == nil {
		if len(d.guessed) > 4096 {
			clear(d.guessed)
		}
		m = map[bgp.Family]bool{}
		d.guessed[key] = m
	}
	m[f] = addPath
}
