// Package bmpgen writes BMP messages (RFC 7854, 8671, 9069) byte by byte,
// for meshd's tests, fuzz seeds and the replay benchmark, and for the
// peering source, which hands its BGP sessions to the bridge as BMP.
package bmpgen

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bmp"
)

// Message types.
const (
	RouteMonitoring = 0
	StatsReport     = 1
	PeerDown        = 2
	PeerUp          = 3
	Initiation      = 4
	Termination     = 5
	RouteMirroring  = 6
)

// Peer header flags.
const (
	FlagV    = 0x80 // IPv6 peer address
	FlagL    = 0x40 // post-policy
	FlagA    = 0x20 // legacy 2-byte AS_PATH
	FlagO    = 0x10 // Adj-RIB-Out (RFC 8671)
	FlagLocF = 0x80 // Loc-RIB filtered (RFC 9069)
)

// Peer is a per-peer header.
type Peer struct {
	Type  uint8
	Flags uint8
	RD    uint64
	Addr  netip.Addr
	AS    uint32
	BGPID netip.Addr
	Time  time.Time
}

func header(b []byte, typ uint8) []byte {
	return append(b, 3, 0, 0, 0, 0, typ)
}

func finish(b []byte, start int) []byte {
	binary.BigEndian.PutUint32(b[start+1:], uint32(len(b)-start))
	return b
}

func (p *Peer) append(b []byte) []byte {
	b = append(b, p.Type, p.Flags)
	b = binary.BigEndian.AppendUint64(b, p.RD)
	b = appendAddr16(b, p.Addr)
	b = binary.BigEndian.AppendUint32(b, p.AS)
	id := [4]byte{}
	if p.BGPID.Is4() {
		id = p.BGPID.As4()
	}
	b = append(b, id[:]...)
	var sec, usec uint32
	if !p.Time.IsZero() {
		sec, usec = uint32(p.Time.Unix()), uint32(p.Time.Nanosecond()/1000)
	}
	b = binary.BigEndian.AppendUint32(b, sec)
	return binary.BigEndian.AppendUint32(b, usec)
}

// appendAddr16 appends an address in BMP's 16-byte form: IPv6 as is,
// IPv4 in the last 4 bytes, none as zeros.
func appendAddr16(b []byte, addr netip.Addr) []byte {
	var a [16]byte
	if addr.Is6() && !addr.Is4In6() {
		a = addr.As16()
	} else if addr.IsValid() {
		v4 := addr.As4()
		copy(a[12:], v4[:])
	}
	return append(b, a[:]...)
}

func tlv(b []byte, t uint16, v []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, t)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// AppendInitiation appends an Initiation with sysName and sysDescr.
func AppendInitiation(b []byte, sysName, sysDescr string) []byte {
	s := len(b)
	b = header(b, Initiation)
	b = tlv(b, 1, []byte(sysDescr))
	b = tlv(b, 2, []byte(sysName))
	return finish(b, s)
}

// AppendTermination appends a Termination with a reason code and text.
func AppendTermination(b []byte, reason uint16, text string) []byte {
	s := len(b)
	b = header(b, Termination)
	if text != "" {
		b = tlv(b, 0, []byte(text))
	}
	b = tlv(b, 1, binary.BigEndian.AppendUint16(nil, reason))
	return finish(b, s)
}

// Route Mirroring information codes (RFC 7854 4.7).
const (
	MirrorErroredPDU   = 0
	MirrorMessagesLost = 1
)

// AppendRouteMirroring appends a Route Mirroring message: an Information
// TLV per code in info, then msg, a whole BGP message, as a BGP Message
// TLV unless it is nil (a Messages Lost report carries none).
func AppendRouteMirroring(b []byte, p *Peer, msg []byte, info ...uint16) []byte {
	s := len(b)
	b = header(b, RouteMirroring)
	b = p.append(b)
	for _, code := range info {
		b = tlv(b, 1, binary.BigEndian.AppendUint16(nil, code))
	}
	if msg != nil {
		b = tlv(b, 0, msg)
	}
	return finish(b, s)
}

// AddPath is one ADD-PATH capability tuple.
type AddPath struct {
	AFI  uint16
	SAFI uint8
	Mode uint8 // 1 receive, 2 send, 3 both
}

// Open describes a BGP OPEN.
type Open struct {
	AS       uint32
	HoldTime uint16
	ID       netip.Addr
	// Families lists AFI<<8|SAFI of multiprotocol capabilities.
	Families []uint32
	// FourOctet adds the 4-octet AS capability (then AS may exceed 65535).
	FourOctet bool
	AddPath   []AddPath
}

// AppendOpen appends a BGP OPEN message.
func AppendOpen(b []byte, o Open) []byte {
	s := len(b)
	b = marker(b, 1)
	myAS := uint16(o.AS)
	if o.AS > 65535 {
		myAS = 23456
	}
	b = append(b, 4)
	b = binary.BigEndian.AppendUint16(b, myAS)
	b = binary.BigEndian.AppendUint16(b, o.HoldTime)
	id := o.ID.As4()
	b = append(b, id[:]...)
	var caps []byte
	for _, f := range o.Families {
		caps = append(caps, 1, 4, byte(f>>16), byte(f>>8), 0, byte(f))
	}
	caps = append(caps, 2, 0) // route refresh
	if o.FourOctet {
		caps = append(caps, 65, 4)
		caps = binary.BigEndian.AppendUint32(caps, o.AS)
	}
	if len(o.AddPath) > 0 {
		caps = append(caps, 69, byte(4*len(o.AddPath)))
		for _, t := range o.AddPath {
			caps = binary.BigEndian.AppendUint16(caps, t.AFI)
			caps = append(caps, t.SAFI, t.Mode)
		}
	}
	b = append(b, byte(len(caps)+2), 2, byte(len(caps)))
	b = append(b, caps...)
	return finishBGP(b, s)
}

func marker(b []byte, typ uint8) []byte {
	for i := 0; i < 16; i++ {
		b = append(b, 0xff)
	}
	return append(b, 0, 0, typ)
}

func finishBGP(b []byte, start int) []byte {
	binary.BigEndian.PutUint16(b[start+16:], uint16(len(b)-start))
	return b
}

// AppendPeerUp appends a Peer Up Notification; tableName, if set, is the
// RFC 9069 VRF/table name TLV.
func AppendPeerUp(b []byte, p *Peer, local netip.Addr, lport, rport uint16, sent, recv Open, tableName string) []byte {
	return appendPeerUp(b, p, local, lport, rport, AppendOpen(nil, sent), AppendOpen(nil, recv), tableName)
}

// AppendPeerUpMsgs appends a Peer Up Notification carrying the OPEN
// messages as they went over the wire (whole BGP messages, header
// included): sent is the monitored router's, recv its peer's.
func AppendPeerUpMsgs(b []byte, p *Peer, local netip.Addr, lport, rport uint16, sent, recv []byte) []byte {
	return appendPeerUp(b, p, local, lport, rport, sent, recv, "")
}

func appendPeerUp(b []byte, p *Peer, local netip.Addr, lport, rport uint16, sent, recv []byte, tableName string) []byte {
	s := len(b)
	b = header(b, PeerUp)
	b = p.append(b)
	b = appendAddr16(b, local)
	b = binary.BigEndian.AppendUint16(b, lport)
	b = binary.BigEndian.AppendUint16(b, rport)
	b = append(b, sent...)
	b = append(b, recv...)
	if tableName != "" {
		b = tlv(b, 3, []byte(tableName))
	}
	return finish(b, s)
}

// AppendPeerDownMsg appends a Peer Down Notification for reason 1 or 3
// carrying notification, a whole BGP NOTIFICATION message.
func AppendPeerDownMsg(b []byte, p *Peer, reason uint8, notification []byte) []byte {
	s := len(b)
	b = header(b, PeerDown)
	b = p.append(b)
	b = append(b, reason)
	b = append(b, notification...)
	return finish(b, s)
}

// AppendPeerDown appends a Peer Down Notification. For reasons 1 and 3,
// code/subcode make the NOTIFICATION; for reason 2, fsm is the FSM event.
func AppendPeerDown(b []byte, p *Peer, reason, code, subcode uint8, data []byte, fsm uint16) []byte {
	s := len(b)
	b = header(b, PeerDown)
	b = p.append(b)
	b = append(b, reason)
	switch reason {
	case bmp.BMP_PEER_DOWN_REASON_LOCAL_BGP_NOTIFICATION, bmp.BMP_PEER_DOWN_REASON_REMOTE_BGP_NOTIFICATION:
		ns := len(b)
		b = marker(b, 3)
		b = append(b, code, subcode)
		b = append(b, data...)
		b = finishBGP(b, ns)
	case bmp.BMP_PEER_DOWN_REASON_LOCAL_NO_NOTIFICATION:
		b = binary.BigEndian.AppendUint16(b, fsm)
	case bmp.BMP_PEER_DOWN_REASON_TLV_FOLLOWS:
		b = tlv(b, 0, data)
	}
	return finish(b, s)
}

// Stat is one Stats Report counter; AFI/SAFI are used for per-AFI types.
type Stat struct {
	Type  uint16
	Value uint64
	Len   int // 4 or 8; 0 picks by type
	AFI   uint16
	SAFI  uint8
}

// AppendStats appends a Stats Report.
func AppendStats(b []byte, p *Peer, stats []Stat) []byte {
	s := len(b)
	b = header(b, StatsReport)
	b = p.append(b)
	b = binary.BigEndian.AppendUint32(b, uint32(len(stats)))
	for _, st := range stats {
		switch st.Type {
		case bmp.BMP_STAT_TYPE_PER_AFI_SAFI_ADJ_RIB_IN, bmp.BMP_STAT_TYPE_PER_AFI_SAFI_LOC_RIB,
			bmp.BMP_STAT_TYPE_PER_AFI_SAFI_ADJ_RIB_OUT_PRE_POLICY, bmp.BMP_STAT_TYPE_PER_AFI_SAFI_ADJ_RIB_OUT_POST_POLICY:
			v := binary.BigEndian.AppendUint16(nil, st.AFI)
			v = append(v, st.SAFI)
			v = binary.BigEndian.AppendUint64(v, st.Value)
			b = tlv(b, st.Type, v)
		default:
			l := st.Len
			if l == 0 {
				l = 4
				if st.Type == bmp.BMP_STAT_TYPE_ADJ_RIB_IN || st.Type == bmp.BMP_STAT_TYPE_LOC_RIB ||
					st.Type == bmp.BMP_STAT_TYPE_ADJ_RIB_OUT_PRE_POLICY || st.Type == bmp.BMP_STAT_TYPE_ADJ_RIB_OUT_POST_POLICY {
					l = 8
				}
			}
			if l == 8 {
				b = tlv(b, st.Type, binary.BigEndian.AppendUint64(nil, st.Value))
			} else {
				b = tlv(b, st.Type, binary.BigEndian.AppendUint32(nil, uint32(st.Value)))
			}
		}
	}
	return finish(b, s)
}

// Route is what one Route Monitoring message announces or withdraws.
type Route struct {
	Prefixes    []netip.Prefix
	PathIDs     []uint32 // with ADD-PATH: one per prefix
	Withdraw    bool
	ASPath      []uint32
	TwoByte     bool // encode AS_PATH with 2-byte ASes (AS_TRANS + AS4_PATH)
	NextHop     netip.Addr
	MED         *uint32
	LocalPref   *uint32
	Communities []uint32
	Large       [][3]uint32
	ExtComm     [][8]byte
	// Origin is the ORIGIN code: 0 IGP (the default), 1 EGP, 2 INCOMPLETE.
	Origin uint8
	// AggregatorAS and Aggregator make an AGGREGATOR attribute (4-byte AS)
	// when Aggregator is valid.
	AggregatorAS uint32
	Aggregator   netip.Addr
}

// AppendRouteMonitoring appends a Route Monitoring message carrying one
// UPDATE. IPv4 prefixes go in the classic fields, IPv6 in MP_REACH /
// MP_UNREACH.
func AppendRouteMonitoring(b []byte, p *Peer, r *Route) []byte {
	s := len(b)
	b = header(b, RouteMonitoring)
	b = p.append(b)
	return finish(AppendUpdate(b, r), s)
}

// AppendRouteMonitoringMsg appends a Route Monitoring message carrying
// msg, a whole BGP message (for UPDATEs of families AppendUpdate does not
// build).
func AppendRouteMonitoringMsg(b []byte, p *Peer, msg []byte) []byte {
	s := len(b)
	b = header(b, RouteMonitoring)
	b = p.append(b)
	return finish(append(b, msg...), s)
}

func appendPrefix(b []byte, pf netip.Prefix, id uint32, addPath bool) []byte {
	if addPath {
		b = binary.BigEndian.AppendUint32(b, id)
	}
	bits := pf.Bits()
	b = append(b, byte(bits))
	a := pf.Addr().AsSlice()
	return append(b, a[:(bits+7)/8]...)
}

func attr(b []byte, flags, typ uint8, v []byte) []byte {
	if len(v) > 255 {
		b = append(b, flags|0x10, typ)
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	} else {
		b = append(b, flags, typ, byte(len(v)))
	}
	return append(b, v...)
}

// AppendUpdate appends a BGP UPDATE for r.
func AppendUpdate(b []byte, r *Route) []byte {
	s := len(b)
	b = marker(b, 2)
	addPath := len(r.PathIDs) > 0
	id := func(i int) uint32 {
		if addPath {
			return r.PathIDs[i]
		}
		return 0
	}
	v6 := len(r.Prefixes) > 0 && r.Prefixes[0].Addr().Is6()
	// withdrawn routes
	ws := len(b)
	b = append(b, 0, 0)
	if r.Withdraw && !v6 {
		for i, pf := range r.Prefixes {
			b = appendPrefix(b, pf, id(i), addPath)
		}
	}
	binary.BigEndian.PutUint16(b[ws:], uint16(len(b)-ws-2))
	as := len(b)
	b = append(b, 0, 0)
	if r.Withdraw && v6 {
		v := []byte{0, 2, 1}
		for i, pf := range r.Prefixes {
			v = appendPrefix(v, pf, id(i), addPath)
		}
		b = attr(b, 0x80, 15, v)
	}
	if !r.Withdraw {
		b = attr(b, 0x40, 1, []byte{r.Origin})
		var path, path4 []byte
		if len(r.ASPath) > 0 {
			path = append(path, 2, byte(len(r.ASPath)))
			path4 = append(path4, 2, byte(len(r.ASPath)))
			for _, a := range r.ASPath {
				if r.TwoByte {
					x := a
					if x > 65535 {
						x = 23456
					}
					path = binary.BigEndian.AppendUint16(path, uint16(x))
				} else {
					path = binary.BigEndian.AppendUint32(path, a)
				}
				path4 = binary.BigEndian.AppendUint32(path4, a)
			}
		}
		b = attr(b, 0x40, 2, path)
		if !v6 {
			nh := r.NextHop.As4()
			b = attr(b, 0x40, 3, nh[:])
		}
		if r.MED != nil {
			b = attr(b, 0x80, 4, binary.BigEndian.AppendUint32(nil, *r.MED))
		}
		if r.LocalPref != nil {
			b = attr(b, 0x40, 5, binary.BigEndian.AppendUint32(nil, *r.LocalPref))
		}
		if r.Aggregator.IsValid() {
			v := binary.BigEndian.AppendUint32(nil, r.AggregatorAS)
			a := r.Aggregator.As4()
			b = attr(b, 0xc0, 7, append(v, a[:]...))
		}
		if len(r.Communities) > 0 {
			var v []byte
			for _, c := range r.Communities {
				v = binary.BigEndian.AppendUint32(v, c)
			}
			b = attr(b, 0xc0, 8, v)
		}
		if len(r.ExtComm) > 0 {
			var v []byte
			for _, c := range r.ExtComm {
				v = append(v, c[:]...)
			}
			b = attr(b, 0xc0, 16, v)
		}
		if r.TwoByte && len(path4) > 0 {
			b = attr(b, 0xc0, 17, path4)
		}
		if len(r.Large) > 0 {
			var v []byte
			for _, c := range r.Large {
				v = binary.BigEndian.AppendUint32(v, c[0])
				v = binary.BigEndian.AppendUint32(v, c[1])
				v = binary.BigEndian.AppendUint32(v, c[2])
			}
			b = attr(b, 0xc0, 32, v)
		}
		if v6 {
			v := []byte{0, 2, 1, 16}
			nh := r.NextHop.As16()
			v = append(v, nh[:]...)
			v = append(v, 0)
			for i, pf := range r.Prefixes {
				v = appendPrefix(v, pf, id(i), addPath)
			}
			b = attr(b, 0x80, 14, v)
		}
	}
	binary.BigEndian.PutUint16(b[as:], uint16(len(b)-as-2))
	if !r.Withdraw && !v6 {
		for i, pf := range r.Prefixes {
			b = appendPrefix(b, pf, id(i), addPath)
		}
	}
	return finishBGP(b, s)
}

// AppendEndOfRIB appends a Route Monitoring message with the IPv4 unicast
// End-of-RIB marker (an UPDATE with nothing in it, RFC 4724).
func AppendEndOfRIB(b []byte, p *Peer) []byte {
	s := len(b)
	b = header(b, RouteMonitoring)
	b = p.append(b)
	ns := len(b)
	b = marker(b, 2)
	b = append(b, 0, 0, 0, 0)
	b = finishBGP(b, ns)
	return finish(b, s)
}

// AppendEndOfRIBFamily appends a Route Monitoring message with the
// End-of-RIB marker of afi/safi: IPv4 unicast's empty UPDATE, for any
// other family an UPDATE holding only an empty MP_UNREACH_NLRI (RFC 4724 2).
func AppendEndOfRIBFamily(b []byte, p *Peer, afi uint16, safi uint8) []byte {
	if afi == 1 && safi == 1 {
		return AppendEndOfRIB(b, p)
	}
	s := len(b)
	b = header(b, RouteMonitoring)
	b = p.append(b)
	ns := len(b)
	b = marker(b, 2)
	b = append(b, 0, 0, 0, 6)
	b = attr(b, 0x80, 15, []byte{byte(afi >> 8), byte(afi), safi})
	b = finishBGP(b, ns)
	return finish(b, s)
}
