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
// and a /1, and the real prefix's bytes turn into more made-up routes. The
// other way round fails no better: senders that negotiated ADD-PATH do not
// always send path IDs (gobgpd v4 in its post-policy view, FRR 8.4's BMP
// in every view), and 10.99.1.0/25 (19 0a 63 01 00) read with them is
// path ID 420111105 and 0.0.0.0/0.
//
// So each ADD-PATH-capable family of a Route Monitoring message (IPv4/IPv6
// unicast and labeled unicast) that the Peer Up negotiated with path IDs,
// or all of them when there was no Peer Up, is read both ways, each
// reading checked strictly: every prefix length within the family's
// width, no prefix past the end of its field, and no bit set past the
// prefix length (a sender masks its prefixes; Wireshark's BGP dissector
// checks the same). Then, per family:
//
//   - only one reading is clean: that one. With no Peer Up, a reading with
//     path IDs is reported as a guess; with one, a reading without them
//     sets the message's AddPathAbsent.
//   - both are clean: the reading this peer's family was last settled on
//     by an unambiguous message of the same RIB view (gobgpd v4 sends
//     pre-policy routes with path IDs and the same peer's post-policy
//     ones without); failing that, path IDs are taken to be small, as
//     senders number paths from 1: the reading with them is implausible
//     when one would be 2^24 or more, the reading without when it holds a
//     /0 among other prefixes (what IDs below 2^24 look like; a real
//     default route is not packed with others by the senders we know).
//     If neither or both are implausible: what the Peer Up negotiated,
//     or with no Peer Up the reading without. Whatever the answer, it is
//     reported as ambiguous, naming the rule.
//   - neither is clean: the readings are checked again without the
//     masked-bits rule, in the same order, and reported as such; if both
//     still fail, gobgp reads it the negotiated way and its error is the
//     message's.
//
// A prefix that may be made up is never printed without a warning.

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
		flags, typ := as[0], bgp.BGPAttrType(as[1])
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
		case bgp.BGP_ATTR_TYPE_MP_REACH_NLRI: // AFI, SAFI, next hop, a reserved byte, NLRI
			if len(v) < 5 || len(v) < 5+int(v[3]) {
				continue
			}
			n.add(bgp.NewFamily(binary.BigEndian.Uint16(v), v[2]), v[5+int(v[3]):])
		case bgp.BGP_ATTR_TYPE_MP_UNREACH_NLRI: // AFI, SAFI, withdrawn NLRI
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
	bigID     bool // read with path IDs: one is 2^24 or more
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
				r.bigID = r.bigID || b[0] != 0
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

// settleAddPath decides which families of a Route Monitoring message to
// read with path IDs. prior is what the peer's Peer Up negotiated (known)
// or nil. It returns the options for gobgp (nil: the peer's own),
// warnings appended to w, and whether a family negotiated with path IDs
// is read without them.
func (d *Decoder) settleAddPath(raw []byte, h *bmp.BMPPeerHeader, prior *bgp.MarshallingOption, known bool, w []string) (*bgp.MarshallingOption, []string, bool) {
	var n nlriFields
	if !n.split(raw) {
		return nil, w, false
	}
	key := viewKey{keyOf(h), h.Flags & (bmp.BMP_PEER_FLAG_POST_POLICY | bmp.BMP_PEER_FLAG_ADJ_RIB_TYP)}
	var opt *bgp.MarshallingOption
	absent := false
	for i, f := range addPathFamilies {
		if len(n.fields[i]) == 0 {
			continue
		}
		p := unknownAP
		if known {
			p = notNegotiated
			if addPathOn(prior, f) {
				p = negotiated
			}
		}
		plain := readNLRI(f, n.fields[i], false)
		if p == notNegotiated && plain.clean && !plain.zeroAmong {
			continue // as negotiated, and nothing odd: the common case
		}
		ap, warn := d.settle(key, f, readNLRI(f, n.fields[i], true), plain, p)
		if warn != "" {
			w = append(w, AfiSafiName(f)+": "+warn)
		}
		if ap == (p == negotiated) {
			continue
		}
		if opt == nil {
			opt = &bgp.MarshallingOption{AddPath: map[bgp.Family]bgp.BGPAddPathMode{}}
			if prior != nil {
				opt.Use2ByteAS = prior.Use2ByteAS
				for g, m := range prior.AddPath {
					opt.AddPath[g] = m
				}
			}
		}
		if ap {
			opt.AddPath[f] = bgp.BGP_ADD_PATH_RECEIVE
		} else {
			delete(opt.AddPath, f)
			absent = true
		}
	}
	if opt != nil && !known && h.PeerType != bmp.BMP_PEER_TYPE_LOCAL_RIB && h.Flags&bmp.BMP_PEER_FLAG_TWO_AS != 0 {
		opt.Use2ByteAS = true
	}
	return opt, w, absent
}

// What a Peer Up said about a family's path IDs.
const (
	unknownAP     = iota // no Peer Up
	negotiated           // path IDs negotiated
	notNegotiated        // none negotiated
)

// Warnings of the ADD-PATH guess, after the family name.
const (
	WarnAddPathGuessed       = "ADD-PATH guessed (no Peer Up seen for this peer): read with path IDs, the only reading that parses"
	WarnAddPathHostBits      = "ADD-PATH guessed: no reading parses cleanly (bits set past a prefix length); read "
	WarnAddPathAmbiguous     = "ADD-PATH unknown (no Peer Up seen for this peer) and both readings parse: read "
	WarnAddPathNegotiated    = "ADD-PATH negotiated in the Peer Up, and both readings parse: read "
	WarnAddPathNotNegotiated = "ADD-PATH not negotiated in the Peer Up, yet the NLRI are odd without path IDs: read "
)

// Reasons of an ambiguous reading, after WarnAddPathAmbiguous/Negotiated
// and the reading.
const (
	whyEarlier = " as this peer's earlier unambiguous messages in this RIB view"
	whyBigID   = " (with them, a path ID would be 2^24 or more; senders number paths from 1)"
	whyZero    = " (without them, the NLRI hold a /0 among other prefixes)"
	whyDefault = " (the default when neither reading is implausible)"
	whyOnly    = ", the only reading that parses"
	whyBoth    = " (both readings are implausible; this is the Peer Up's, or without path IDs when there is none)"
)

// settle applies the rules of the package comment above for one family;
// p is what the Peer Up said.
func (d *Decoder) settle(key viewKey, f bgp.Family, with, plain reading, p int) (addPath bool, warn string) {
	def := p == negotiated // the reading the Peer Up asks for
	ambiguous := WarnAddPathAmbiguous
	switch p {
	case negotiated:
		ambiguous = WarnAddPathNegotiated
	case notNegotiated:
		ambiguous = WarnAddPathNotNegotiated
	}
	// Both readings parse: whatever is chosen is said, even the Peer Up's
	// (a default route packed with another route reads, with path IDs,
	// as one /0 of a made-up ID).
	say := func(ap bool, why string) (bool, string) {
		return ap, ambiguous + how(ap) + why
	}
	switch {
	case plain.clean && !with.clean:
		d.remember(key, f, false)
		return false, ""
	case with.clean && !plain.clean:
		// A negotiated family read as negotiated is remembered only over
		// an earlier answer (a session's usual case costs no map).
		if p != negotiated || len(d.guessed) > 0 {
			d.remember(key, f, true)
		}
		switch p {
		case negotiated:
			return true, ""
		case notNegotiated:
			return true, WarnAddPathNotNegotiated + how(true) + whyOnly
		}
		return true, WarnAddPathGuessed
	case with.clean && plain.clean:
		if mem, ok := d.guessed[key][f]; ok {
			return say(mem, whyEarlier)
		}
		if with.bigID && !plain.zeroAmong {
			return say(false, whyBigID)
		}
		if plain.zeroAmong && !with.bigID {
			return say(true, whyZero)
		}
		if plain.zeroAmong && with.bigID {
			return say(def, whyBoth)
		}
		return say(def, whyDefault)
	}
	// Neither parses cleanly: the same again, allowing bits past the
	// prefix length, the Peer Up's reading first.
	for _, ap := range []bool{def, !def} {
		if (ap && with.loose) || (!ap && plain.loose) {
			return ap, WarnAddPathHostBits + how(ap)
		}
	}
	return def, ""
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
