package decode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/packet/bmp"
)

const (
	bgpHeaderLen = 19
	bgpUpdate    = 2
	asTrans      = 23456
)

// rawAttrs walks the path attributes of the BGP UPDATE inside a Route
// Monitoring message. It returns the canonical attribute key (every
// attribute but MP_REACH/MP_UNREACH, plus MP_REACH's family and next hop)
// and the families named in MP_REACH/MP_UNREACH.
func rawAttrs(raw []byte, twoByte bool, key []byte, fams []bgp.Family) ([]byte, []bgp.Family, bool, error) {
	b := raw[bmp.BMP_HEADER_SIZE+bmp.BMP_PEER_HEADER_SIZE:]
	if len(b) < bgpHeaderLen+4 {
		return key, fams, false, errors.New("BGP message too short")
	}
	if b[18] != bgpUpdate {
		return key, fams, false, fmt.Errorf("BGP message type %d, want UPDATE", b[18])
	}
	b = b[bgpHeaderLen:]
	wl := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+wl+2 {
		return key, fams, false, errors.New("withdrawn routes length exceeds message")
	}
	b = b[2+wl:]
	al := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < al {
		return key, fams, false, errors.New("path attribute length exceeds message")
	}
	b = b[:al]
	if al == 0 {
		return key, fams, false, nil
	}
	w := byte(4)
	if twoByte {
		w = 2
	}
	key = append(key, w)
	for len(b) > 0 {
		if len(b) < 3 {
			return key, fams, true, errors.New("truncated path attribute header")
		}
		flags, typ := b[0], bgp.BGPAttrType(b[1])
		hl, l := 3, int(b[2])
		if flags&0x10 != 0 {
			if len(b) < 4 {
				return key, fams, true, errors.New("truncated path attribute header")
			}
			hl, l = 4, int(binary.BigEndian.Uint16(b[2:4]))
		}
		if len(b) < hl+l {
			return key, fams, true, fmt.Errorf("path attribute %d length %d exceeds message", typ, l)
		}
		v := b[hl : hl+l]
		switch typ {
		case bgp.BGP_ATTR_TYPE_MP_REACH_NLRI: // the family and next hop are part of the route
			if len(v) >= 4 {
				fams = append(fams, bgp.NewFamily(binary.BigEndian.Uint16(v), v[2]))
				nh := 4 + int(v[3])
				if nh > len(v) {
					nh = len(v)
				}
				key = append(key, byte(bgp.BGP_ATTR_TYPE_MP_REACH_NLRI))
				key = append(key, v[:nh]...)
			}
		case bgp.BGP_ATTR_TYPE_MP_UNREACH_NLRI:
			if len(v) >= 3 {
				fams = append(fams, bgp.NewFamily(binary.BigEndian.Uint16(v), v[2]))
			}
		default:
			key = append(key, b[:hl+l]...)
		}
		b = b[hl+l:]
	}
	return key, fams, true, nil
}

func (d *Decoder) update(raw []byte, h *bmp.BMPPeerHeader, body *bmp.BMPRouteMonitoring, perr error) (*Update, error) {
	u := &Update{}
	twoByte := h.PeerType != bmp.BMP_PEER_TYPE_LOCAL_RIB && h.Flags&bmp.BMP_PEER_FLAG_TWO_AS != 0
	key, fams, hasAttrs, kerr := rawAttrs(raw, twoByte, d.keyBuf[:0], d.famBuf[:0])
	d.keyBuf, d.famBuf = key, fams
	var unknown []bgp.Family
	for _, f := range fams {
		if !decoded(f) {
			unknown = append(unknown, f)
		}
	}
	if perr != nil || body.BGPUpdate == nil {
		if len(unknown) > 0 && kerr == nil {
			// gobgp refuses some families outright; count them instead.
			for _, f := range unknown {
				u.Skipped = append(u.Skipped, Skipped{AfiSafi: AfiSafiName(f), AFI: f.Afi(), SAFI: f.Safi()})
			}
			return u, nil
		}
		if perr == nil {
			perr = errors.New("no BGP UPDATE")
		}
		return u, perr
	}
	upd, ok := body.BGPUpdate.Body.(*bgp.BGPUpdate)
	if !ok {
		return u, fmt.Errorf("route monitoring carries %T, want an UPDATE", body.BGPUpdate.Body)
	}
	if hasAttrs && kerr == nil {
		if d.Interner != nil {
			u.Attrs = d.Interner.Lookup(key)
		}
		if u.Attrs == nil {
			u.Attrs = d.cachedAttrs(key)
		}
		if u.Attrs == nil {
			u.Attrs = attrs(upd, string(key))
			if d.Interner == nil {
				d.cacheAttrs(u.Attrs)
			}
		}
	}
	for _, p := range upd.NLRI {
		u.Announce = appendNLRI(u.Announce, bgp.RF_IPv4_UC, p)
	}
	for _, p := range upd.WithdrawnRoutes {
		u.Withdraw = appendNLRI(u.Withdraw, bgp.RF_IPv4_UC, p)
	}
	mpSeen := false
	for _, a := range upd.PathAttributes {
		switch v := a.(type) {
		case *bgp.PathAttributeMpReachNLRI:
			mpSeen = true
			f := bgp.NewFamily(v.AFI, v.SAFI)
			if !decoded(f) {
				u.Skipped = append(u.Skipped, Skipped{AfiSafi: AfiSafiName(f), AFI: v.AFI, SAFI: v.SAFI})
				continue
			}
			for _, p := range v.Value {
				u.Announce = appendNLRI(u.Announce, f, p)
			}
		case *bgp.PathAttributeMpUnreachNLRI:
			mpSeen = true
			f := bgp.NewFamily(v.AFI, v.SAFI)
			if !decoded(f) {
				u.Skipped = append(u.Skipped, Skipped{AfiSafi: AfiSafiName(f), AFI: v.AFI, SAFI: v.SAFI})
				continue
			}
			if len(v.Value) == 0 && len(upd.PathAttributes) == 1 {
				u.EndOfRIB = AfiSafiName(f)
			}
			for _, p := range v.Value {
				u.Withdraw = appendNLRI(u.Withdraw, f, p)
			}
		}
	}
	if !mpSeen && len(upd.NLRI) == 0 && len(upd.WithdrawnRoutes) == 0 && len(upd.PathAttributes) == 0 {
		u.EndOfRIB = "IPV4_UNICAST"
	}
	if len(u.Announce) == 0 {
		u.Attrs = nil
	}
	return u, nil
}

func appendNLRI(out []NLRI, f bgp.Family, p bgp.PathNLRI) []NLRI {
	if p.NLRI == nil {
		return out
	}
	n := NLRI{AfiSafi: AfiSafiName(f), Family: f, PathID: p.ID}
	switch v := p.NLRI.(type) {
	case *bgp.IPAddrPrefix:
		n.IP = v.Prefix
		n.Prefix = v.Prefix.String()
	case *bgp.LabeledIPAddrPrefix:
		n.IP = v.Prefix
		n.Prefix = v.Prefix.String()
		n.Labels = v.Labels.Labels
	case *bgp.LabeledVPNIPAddrPrefix:
		n.Prefix = v.String()
		n.Labels = v.Labels.Labels
	case *bgp.EVPNNLRI:
		// The text is the route's key (RFC 7432: RD, ESI or tag, MAC, IP
		// or prefix, by type), which leaves the labels out; they are kept
		// apart as for VPN routes, each the raw 24-bit field: a VXLAN VNI,
		// or an MPLS label in its high 20 bits, as the route's
		// encapsulation community says (RFC 8365 5.1.3).
		n.Prefix = v.String()
		switch r := v.RouteTypeData.(type) {
		case *bgp.EVPNEthernetAutoDiscoveryRoute:
			n.Labels = []uint32{r.Label}
		case *bgp.EVPNMacIPAdvertisementRoute:
			n.Labels = r.Labels
		case *bgp.EVPNIPPrefixRoute:
			n.Labels = []uint32{r.Label}
		}
	default:
		n.Prefix = p.NLRI.String()
	}
	return append(out, n)
}

// attrs turns gobgp's path attributes into meshd's normalised form.
func attrs(u *bgp.BGPUpdate, key string) *Attrs {
	a := &Attrs{Key: key}
	var path, path4 []bgp.AsPathParamInterface
	for _, pa := range u.PathAttributes {
		switch v := pa.(type) {
		case *bgp.PathAttributeOrigin:
			switch v.Value {
			case 0:
				a.Origin = "IGP"
			case 1:
				a.Origin = "EGP"
			default:
				a.Origin = "INCOMPLETE"
			}
		case *bgp.PathAttributeAsPath:
			path = v.Value
		case *bgp.PathAttributeAs4Path:
			for _, p := range v.Value {
				path4 = append(path4, p)
			}
		case *bgp.PathAttributeNextHop:
			a.NextHop = v.Value.String()
		case *bgp.PathAttributeMpReachNLRI:
			if v.Nexthop.IsValid() {
				a.NextHop = v.Nexthop.String()
			}
		case *bgp.PathAttributeMultiExitDisc:
			m := v.Value
			a.MED = &m
		case *bgp.PathAttributeLocalPref:
			l := v.Value
			a.LocalPref = &l
		case *bgp.PathAttributeCommunities:
			a.Communities = make([]string, len(v.Value))
			for i, c := range v.Value {
				a.Communities[i] = strconv.FormatUint(uint64(c>>16), 10) + ":" + strconv.FormatUint(uint64(c&0xffff), 10)
			}
		case *bgp.PathAttributeExtendedCommunities:
			a.ExtCommunities = map[string][]string{}
			for _, c := range v.Value {
				k := extCommunityKind(c)
				a.ExtCommunities[k] = append(a.ExtCommunities[k], c.String())
			}
		case *bgp.PathAttributeLargeCommunities:
			a.LargeCommunities = make([]string, len(v.Values))
			for i, c := range v.Values {
				a.LargeCommunities[i] = strconv.FormatUint(uint64(c.ASN), 10) + ":" + strconv.FormatUint(uint64(c.LocalData1), 10) + ":" + strconv.FormatUint(uint64(c.LocalData2), 10)
			}
		}
	}
	segs := mergeAS4(path, path4)
	a.ASPath, a.OriginAS = formatASPath(segs)
	return a
}

type segment struct {
	typ uint8
	as  []uint32
}

func toSegments(ps []bgp.AsPathParamInterface) []segment {
	out := make([]segment, 0, len(ps))
	for _, p := range ps {
		out = append(out, segment{typ: p.GetType(), as: p.GetAS()})
	}
	return out
}

// mergeAS4 rebuilds the real AS path from a 2-byte AS_PATH and AS4_PATH
// (RFC 6793 section 4.2.3).
func mergeAS4(path, path4 []bgp.AsPathParamInterface) []segment {
	return mergeSegments(toSegments(path), toSegments(path4))
}

// mergeSegments is mergeAS4 on segments: the leading ASes of AS_PATH that
// AS4_PATH does not cover, followed by AS4_PATH.
func mergeSegments(segs, segs4 []segment) []segment {
	if len(segs4) == 0 {
		return segs
	}
	n, n4 := countAS(segs), countAS(segs4)
	if n < n4 {
		return segs
	}
	keep := n - n4
	var out []segment
	for _, s := range segs {
		if keep == 0 {
			break
		}
		if s.typ == bgp.BGP_ASPATH_ATTR_TYPE_SET || s.typ == bgp.BGP_ASPATH_ATTR_TYPE_CONFED_SET {
			out = append(out, s)
			keep--
			continue
		}
		k := min(keep, len(s.as))
		out = append(out, segment{typ: s.typ, as: s.as[:k]})
		keep -= k
	}
	return append(out, segs4...)
}

func countAS(segs []segment) int {
	n := 0
	for _, s := range segs {
		switch s.typ {
		case bgp.BGP_ASPATH_ATTR_TYPE_SET:
			n++
		case bgp.BGP_ASPATH_ATTR_TYPE_SEQ:
			n += len(s.as)
		}
	}
	return n
}

// formatASPath writes an AS path as text ("65001 65002 {65003,65004}",
// confederation segments in parentheses) and returns its origin AS: the
// last AS of a final AS_SEQUENCE, or the only member of a final AS_SET.
func formatASPath(segs []segment) (string, uint32) {
	b, origin := appendASPath(nil, segs)
	return string(b), origin
}

// appendASPath is formatASPath appending to b.
func appendASPath(b []byte, segs []segment) ([]byte, uint32) {
	var origin uint32
	start := len(b)
	for _, s := range segs {
		if len(s.as) == 0 {
			continue
		}
		if len(b) > start {
			b = append(b, ' ')
		}
		open, sep, cl := byte(0), byte(' '), byte(0)
		switch s.typ {
		case bgp.BGP_ASPATH_ATTR_TYPE_SET:
			open, sep, cl = '{', ',', '}'
		case bgp.BGP_ASPATH_ATTR_TYPE_CONFED_SEQ:
			open, cl = '(', ')'
		case bgp.BGP_ASPATH_ATTR_TYPE_CONFED_SET:
			open, sep, cl = '[', ',', ']'
		}
		if open != 0 {
			b = append(b, open)
		}
		for i, as := range s.as {
			if i > 0 {
				b = append(b, sep)
			}
			b = strconv.AppendUint(b, uint64(as), 10)
		}
		if cl != 0 {
			b = append(b, cl)
		}
		switch {
		case s.typ == bgp.BGP_ASPATH_ATTR_TYPE_SEQ:
			origin = s.as[len(s.as)-1]
		case s.typ == bgp.BGP_ASPATH_ATTR_TYPE_SET && len(s.as) == 1:
			origin = s.as[0]
		case s.typ == bgp.BGP_ASPATH_ATTR_TYPE_SET:
			origin = 0
		}
	}
	return b, origin
}

// extCommunityKind names an extended community's kind for grouping.
func extCommunityKind(c bgp.ExtendedCommunityInterface) string {
	t, st := c.GetTypes()
	switch t {
	case 0x00, 0x01, 0x02: // two-octet AS, IPv4 address, four-octet AS specific
		switch st {
		case 0x02:
			return "route-target"
		case 0x03:
			return "route-origin"
		case 0x05:
			return "ospf-domain-id"
		case 0x08:
			return "bgp-data-collection"
		case 0x0b:
			return "vrf-route-import"
		}
	case 0x03: // opaque
		switch st {
		case 0x0b:
			return "color"
		case 0x0c:
			return "encapsulation"
		case 0x0d:
			return "default-gateway"
		}
	case 0x06: // EVPN
		switch st {
		case 0x00:
			return "mac-mobility"
		case 0x01:
			return "esi-label"
		case 0x02:
			return "es-import"
		case 0x03:
			return "router-mac"
		}
	case 0x40, 0x41, 0x42, 0x43:
		if st == 0x00 || st == 0x04 {
			return "link-bandwidth"
		}
	case 0x80, 0x81, 0x82:
		return "flowspec"
	}
	return fmt.Sprintf("type-0x%02x%02x", uint8(t), uint8(st))
}

const attrCacheSize = 1 << 14

// attrCacheEntry keeps the key's hash beside the set, so a miss (every
// lookup, on a table of new sets) compares hashes and does not read the
// set's key from memory.
type attrCacheEntry struct {
	h uint64
	a *Attrs
}

// cacheAttrs keeps an attribute set for the messages after this one, as
// long as no other set takes its place.
func (d *Decoder) cacheAttrs(a *Attrs) {
	if d.attrCache == nil {
		d.attrCache = new([attrCacheSize]attrCacheEntry)
	}
	h := maphash.String(d.attrSeed, a.Key)
	d.attrCache[h&(attrCacheSize-1)] = attrCacheEntry{h, a}
}

// cachedAttrs returns the cached set with this key, if any.
func (d *Decoder) cachedAttrs(key []byte) *Attrs {
	if d.attrCache == nil {
		return nil
	}
	h := maphash.Bytes(d.attrSeed, key)
	if e := &d.attrCache[h&(attrCacheSize-1)]; e.h == h && e.a != nil && e.a.Key == string(key) {
		return e.a
	}
	return nil
}

// cachedSets counts the sets in the cache, for tests.
func (d *Decoder) cachedSets() int {
	n := 0
	if d.attrCache != nil {
		for _, e := range d.attrCache {
			if e.a != nil {
				n++
			}
		}
	}
	return n
}
