// Package decode turns the messages of one BMP session into normalised
// records, keeping the per-peer state (ADD-PATH, AS width) that Route
// Monitoring needs to decode right; for a peer whose Peer Up it did not
// see, it guesses ADD-PATH from the NLRI and says so on the message
// (addpath.go). It wraps gobgp's pkg/packet/bmp; IPv4/IPv6 unicast
// Route Monitoring, the bulk of a full table, is read without it (fast.go,
// and fastattrs.go for attribute sets not seen before: hand-written
// because gobgp's decode was half the BMP path's CPU on tables where most
// routes carry a set of their own, and held equal to gobgp by
// FuzzFastAttrs).
package decode

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/packet/bmp"
)

// MaxMessage is the largest BMP message accepted by default: a Route
// Monitoring of an extended BGP UPDATE (65535) with headers, with room for
// Route Mirroring of several messages.
const MaxMessage = 1 << 20

// Errors a caller may want to tell apart.
var (
	ErrFraming = errors.New("bmp framing")   // the stream cannot be split any further
	ErrMessage = errors.New("bmp malformed") // one message is bad; the stream goes on
	errShort   = errors.New("NLRI truncated")
	errOdd     = errors.New("NLRI odd for their ADD-PATH reading") // the fast path leaves them to addpath.go
)

// Message is one decoded BMP message.
type Message struct {
	Offset      int64        `json:"offset"`
	Length      int          `json:"length"`
	Type        string       `json:"type"`
	TypeCode    uint8        `json:"-"`
	Time        time.Time    `json:"time,omitzero"` // the per-peer header's timestamp
	Peer        *Peer        `json:"peer,omitempty"`
	Initiation  *Initiation  `json:"initiation,omitempty"`
	PeerUp      *PeerUp      `json:"peer_up,omitempty"`
	PeerDown    *PeerDown    `json:"peer_down,omitempty"`
	Stats       []Stat       `json:"stats,omitempty"`
	Update      *Update      `json:"update,omitempty"`
	Termination *Termination `json:"termination,omitempty"`
	Mirroring   *Mirroring   `json:"mirroring,omitempty"`
	// AddPathAbsent says the routes decoded only without the ADD-PATH
	// path IDs the Peer Up negotiated.
	AddPathAbsent bool `json:"add_path_absent,omitempty"`
	// Warnings say how far the decoding is a guess: without the peer's
	// Peer Up, whether its routes carry ADD-PATH path IDs (addpath.go).
	Warnings []string `json:"warnings,omitempty"`

	spare *Update // kept across DecodeInto calls so its NLRI storage is reused
}

// Peer is a normalised BMP per-peer header (without its timestamp, which
// is the Message's Time). The decoder shares one Peer between messages:
// treat it as read-only.
type Peer struct {
	Type            string  `json:"type"`
	TypeCode        uint8   `json:"-"`
	Flags           uint8   `json:"flags"`
	Distinguisher   string  `json:"distinguisher,omitempty"`
	Address         string  `json:"address"`
	AS              uint32  `json:"as"`
	BGPID           string  `json:"bgp_id"`
	RIB             string  `json:"rib"`
	NetworkInstance string  `json:"network_instance"`
	Key             PeerKey `json:"-"`
}

// PeerKey identifies a monitored peer within a session.
type PeerKey struct {
	Type uint8
	RD   uint64
	Addr netip.Addr
}

// Initiation carries the router's identity.
type Initiation struct {
	SysName  string   `json:"sys_name,omitempty"`
	SysDescr string   `json:"sys_descr,omitempty"`
	Strings  []string `json:"strings,omitempty"`
}

// Open is one BGP OPEN of a Peer Up.
type Open struct {
	AS           uint32            `json:"as"`
	HoldTime     uint16            `json:"hold_time"`
	BGPID        string            `json:"bgp_id"`
	Capabilities []string          `json:"capabilities"`
	Families     []string          `json:"families,omitempty"`
	AddPath      map[string]string `json:"add_path,omitempty"`
	FourOctetAS  bool              `json:"four_octet_as"`
	caps         map[bgp.BGPCapabilityCode]bool
	addPath      map[bgp.Family]bgp.BGPAddPathMode
}

// PeerUp is a Peer Up Notification with what both OPENs negotiated.
type PeerUp struct {
	LocalAddress       string   `json:"local_address"`
	LocalPort          uint16   `json:"local_port"`
	RemotePort         uint16   `json:"remote_port"`
	Sent               *Open    `json:"sent_open"`
	Received           *Open    `json:"received_open"`
	LocalAS            uint32   `json:"local_as"`
	PeerAS             uint32   `json:"peer_as"`
	NegotiatedHoldTime uint16   `json:"negotiated_hold_time"`
	Capabilities       []string `json:"capabilities"`    // in both OPENs, by name
	OCCapabilities     []string `json:"oc_capabilities"` // the same as OpenConfig identities
	AddPathIn          []string `json:"add_path_in,omitempty"`
	AddPathOut         []string `json:"add_path_out,omitempty"`
	FourOctetAS        bool     `json:"four_octet_as"`
	TableName          string   `json:"table_name,omitempty"`
	Info               []string `json:"info,omitempty"`
}

// Notification is a BGP NOTIFICATION with its code names.
type Notification struct {
	Code        uint8  `json:"code"`
	Subcode     uint8  `json:"subcode"`
	CodeName    string `json:"code_name"`
	SubcodeName string `json:"subcode_name"`
	Data        string `json:"data,omitempty"`
}

// PeerDown is a Peer Down Notification.
type PeerDown struct {
	ReasonCode   uint8         `json:"reason_code"`
	Reason       string        `json:"reason"`
	Notification *Notification `json:"notification,omitempty"`
	FSMEvent     uint16        `json:"fsm_event,omitempty"`
	Info         []string      `json:"info,omitempty"`
}

// Stat is one Stats Report counter.
type Stat struct {
	Type    uint16 `json:"type"`
	Name    string `json:"name"`
	AfiSafi string `json:"afi_safi,omitempty"`
	Value   uint64 `json:"value"`
}

// Termination is a Termination message.
type Termination struct {
	ReasonCode uint16   `json:"reason_code"`
	Reason     string   `json:"reason"`
	Strings    []string `json:"strings,omitempty"`
}

// Mirroring is a Route Mirroring message, counted but not decoded further.
type Mirroring struct {
	Messages     int `json:"messages"`                // BGP message TLVs
	ErroredPDUs  int `json:"errored_pdus,omitempty"`  // information TLVs: the mirrored PDU was errored
	MessagesLost int `json:"messages_lost,omitempty"` // information TLVs: messages were lost
	TLVs         int `json:"tlvs"`
}

// Update is a Route Monitoring message's BGP UPDATE.
type Update struct {
	Attrs    *Attrs    `json:"attrs,omitempty"`
	Announce []NLRI    `json:"announce,omitempty"`
	Withdraw []NLRI    `json:"withdraw,omitempty"`
	Skipped  []Skipped `json:"skipped,omitempty"`
	EndOfRIB string    `json:"end_of_rib,omitempty"`
}

// Skipped counts NLRI of a family meshd does not decode.
type Skipped struct {
	AfiSafi string `json:"afi_safi"`
	AFI     uint16 `json:"afi"`
	SAFI    uint8  `json:"safi"`
}

// NLRI is one announced or withdrawn route.
type NLRI struct {
	AfiSafi string       `json:"afi_safi"`
	Family  bgp.Family   `json:"-"`
	Prefix  string       `json:"prefix"`
	PathID  uint32       `json:"path_id,omitempty"`
	IP      netip.Prefix `json:"-"` // valid for IP unicast and labeled unicast
	Labels  []uint32     `json:"labels,omitempty"`
}

// Text returns the prefix as text, formatting it if the decoder left it
// out (Decoder.LazyPrefix).
func (n *NLRI) Text() string {
	if n.Prefix == "" && n.IP.IsValid() {
		return n.IP.String()
	}
	return n.Prefix
}

// Attrs are the path attributes of an UPDATE, shared by all its NLRI.
// Key is the canonical bytes they were decoded from, so equal attribute
// sets can be interned and compared without decoding.
type Attrs struct {
	Key              string              `json:"-"`
	Origin           string              `json:"origin,omitempty"`
	ASPath           string              `json:"as_path"`
	OriginAS         uint32              `json:"origin_as"`
	NextHop          string              `json:"next_hop,omitempty"`
	MED              *uint32             `json:"med,omitempty"`
	LocalPref        *uint32             `json:"local_pref,omitempty"`
	Communities      []string            `json:"communities,omitempty"`
	ExtCommunities   map[string][]string `json:"ext_communities,omitempty"`
	LargeCommunities []string            `json:"large_communities,omitempty"`

	// Slot is the rib interner's index for this set, so the owner of the
	// RIB finds it without hashing Key; only that owner touches it.
	Slot uint32 `json:"-"`
	// fromKey: the fast reader made it, and KeyReader remakes it.
	fromKey bool
}

// peerState is what a Peer Up told about a peer.
type peerState struct {
	in, out   *bgp.MarshallingOption // with 4-byte AS
	in2, out2 *bgp.MarshallingOption // with 2-byte AS (A flag)
	tableName string
}

// Interner lets the decoder skip decoding attributes it has seen before.
type Interner interface {
	Lookup(key []byte) *Attrs
}

// Decoder decodes the messages of one BMP session in order.
type Decoder struct {
	// VRFs maps a route distinguisher (text form) to a network-instance
	// name for RD and Loc-RIB peers whose Peer Up has no table name.
	VRFs map[string]string
	// Interner, when set, supplies already-decoded attribute sets.
	Interner Interner
	// LazyPrefix leaves NLRI.Prefix empty on the fast path (IP unicast),
	// for callers that need the text only now and then: NLRI.Text
	// formats it on demand.
	LazyPrefix bool

	peers   map[PeerKey]*peerState
	pcache  map[peerCacheKey]*Peer
	last    *Peer // the last peer looked up, checked before pcache
	lastKey peerCacheKey
	offset  int64
	keyBuf  []byte
	famBuf  []bgp.Family
	// attrCache holds attribute sets decoded without an Interner (the
	// bridge's case: its RIB's interner belongs to another goroutine),
	// direct-mapped by a hash of the key: a full table of sets each new
	// costs no map insert and no map growth.
	attrCache *[attrCacheSize]attrCacheEntry
	attrSeed  maphash.Seed
	noFast    bool // tests compare the fast path with gobgp's
	noOpt     *bgp.MarshallingOption
	// guess is the ADD-PATH reading chosen for the message being decoded,
	// from a peer without a Peer Up (addpath.go); guessed remembers each
	// such peer view's families that a message settled unambiguously.
	guess    []*bgp.MarshallingOption
	guessed  map[viewKey]map[bgp.Family]bool
	guessBuf [1]*bgp.MarshallingOption
	warnBuf  []string
	ap       attrParser
	// noFastAttrs sends new attribute sets to gobgp (tests compare);
	// fastSets counts those fastAttrs read.
	noFastAttrs bool
	fastSets    int
}

// NewDecoder returns a decoder for one session.
func NewDecoder(vrfs map[string]string) *Decoder {
	return &Decoder{VRFs: vrfs, peers: map[PeerKey]*peerState{}, pcache: map[peerCacheKey]*Peer{}, noOpt: &bgp.MarshallingOption{}, attrSeed: maphash.MakeSeed()}
}

// Offset returns the stream offset of the next message.
func (d *Decoder) Offset() int64 { return d.offset }

// FrameLength checks a BMP common header (at least its first 6 bytes) and
// returns the message length: version 3 and a length in [6, maxLen].
func FrameLength(hdr []byte, maxLen int) (int, error) {
	if hdr[0] != bmp.BMP_VERSION {
		return 0, fmt.Errorf("%w: version %d, want 3", ErrFraming, hdr[0])
	}
	n := binary.BigEndian.Uint32(hdr[1:5])
	if n < bmp.BMP_HEADER_SIZE || n > uint32(maxLen) {
		return 0, fmt.Errorf("%w: message length %d out of range [6, %d]", ErrFraming, n, maxLen)
	}
	return int(n), nil
}

// Split is a bufio.SplitFunc for BMP streams: it checks the common header
// (version 3, a sane length) before handing to gobgp's SplitBMP, which on
// its own would wait forever on a bad version or loop on a zero length.
func Split(maxLen int) func(data []byte, atEOF bool) (int, []byte, error) {
	return func(data []byte, atEOF bool) (int, []byte, error) {
		if len(data) >= bmp.BMP_HEADER_SIZE {
			if _, err := FrameLength(data, maxLen); err != nil {
				return 0, nil, err
			}
		}
		adv, tok, err := bmp.SplitBMP(data, atEOF)
		if tok == nil && err == nil && atEOF && len(data) > 0 {
			return 0, nil, fmt.Errorf("%w: stream ends inside a message (%d bytes left)", ErrFraming, len(data))
		}
		return adv, tok, err
	}
}

// Decode decodes one whole BMP message (as Split returns it). A returned
// error wraps ErrMessage; the message may still be partly filled.
func (d *Decoder) Decode(raw []byte) (*Message, error) {
	m := &Message{}
	return m, d.DecodeInto(m, raw)
}

// DecodeInto is Decode into a Message the caller recycles: m is reset, but
// its route storage is reused, so a steady stream allocates little. Nothing
// m held before is valid afterwards, except what it shared with others
// (Peer, Attrs, strings).
func (d *Decoder) DecodeInto(m *Message, raw []byte) (err error) {
	*m = Message{Offset: d.offset, Length: len(raw), spare: m.spare}
	d.offset += int64(len(raw))
	if len(raw) >= bmp.BMP_HEADER_SIZE {
		m.TypeCode = raw[5]
	}
	m.Type = MsgTypeName(m.TypeCode)
	d.guess = nil
	defer func() {
		d.guess = nil
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s at offset %d: decoder panic: %v", ErrMessage, m.Type, m.Offset, r)
		}
	}()
	if len(raw) < bmp.BMP_HEADER_SIZE || raw[0] != bmp.BMP_VERSION || int(binary.BigEndian.Uint32(raw[1:5])) != len(raw) {
		return fmt.Errorf("%w: %s at offset %d: bad common header", ErrMessage, m.Type, m.Offset)
	}
	if m.TypeCode == bmp.BMP_MSG_ROUTE_MONITORING && !d.noFast {
		if ok := d.fastRoute(raw, m); ok {
			return nil
		}
	}
	if m.TypeCode == bmp.BMP_MSG_ROUTE_MONITORING && len(raw) >= bmp.BMP_HEADER_SIZE+bmp.BMP_PEER_HEADER_SIZE {
		var h bmp.BMPPeerHeader
		if h.DecodeFromBytes(raw[bmp.BMP_HEADER_SIZE:]) == nil {
			// Settle ADD-PATH from the NLRI themselves: without a Peer Up
			// (a capture or session joined late) it is unknown, and with
			// one, some senders leave the negotiated path IDs out.
			known := d.peers[keyOf(&h)] != nil
			var prior *bgp.MarshallingOption
			if o := d.options(h); known && len(o) > 0 {
				prior = o[0]
			}
			opt, w, absent := d.settleAddPath(raw, &h, prior, known, d.warnBuf[:0])
			if opt != nil {
				d.guessBuf[0] = opt
				d.guess = d.guessBuf[:]
			}
			if len(w) > 0 {
				m.Warnings = append([]string(nil), w...)
			}
			d.warnBuf = w[:0]
			m.AddPathAbsent = absent
		}
	}
	if m.TypeCode == bmp.BMP_MSG_ROUTE_MIRRORING {
		return d.mirroring(raw, m)
	}
	msg, perr := bmp.ParseBMPMessageWithOptions(raw, d.options)
	if perr != nil && m.TypeCode == bmp.BMP_MSG_ROUTE_MONITORING && msg != nil && d.peers[keyOf(&msg.PeerHeader)] != nil {
		// ADD-PATH negotiated, yet some speakers encode a view without
		// path IDs (gobgpd v4 does for post-policy and Loc-RIB routes of
		// path ID 0): try without before giving up, and say so.
		if m2, err2 := bmp.ParseBMPMessageWithOptions(raw, noAddPath); err2 == nil {
			msg, perr = m2, nil
			m.AddPathAbsent = true
		}
	}
	if msg == nil {
		if perr == nil {
			perr = errors.New("no message")
		}
		return fmt.Errorf("%w: %s at offset %d: %v", ErrMessage, m.Type, m.Offset, perr)
	}
	if msg.Header.Type != bmp.BMP_MSG_INITIATION && msg.Header.Type != bmp.BMP_MSG_TERMINATION {
		m.Peer = d.peer(&msg.PeerHeader)
		m.Time = stamp(msg.PeerHeader.Timestamp)
	}
	switch body := msg.Body.(type) {
	case *bmp.BMPInitiation:
		m.Initiation = initiation(body)
	case *bmp.BMPTermination:
		m.Termination = termination(body)
	case *bmp.BMPPeerUpNotification:
		clear(d.pcache) // the network instance may change with the table name
		p := *m.Peer
		m.Peer = &p
		m.PeerUp, err = d.peerUp(m.Peer, body)
	case *bmp.BMPPeerDownNotification:
		m.PeerDown = peerDown(body)
		delete(d.peers, m.Peer.Key)
		for k := range d.guessed {
			if k.PeerKey == m.Peer.Key {
				delete(d.guessed, k)
			}
		}
		clear(d.pcache)
		d.last = nil
	case *bmp.BMPStatisticsReport:
		m.Stats = stats(body)
	case *bmp.BMPRouteMonitoring:
		m.Update, err = d.update(raw, &msg.PeerHeader, body, perr)
	default:
		err = fmt.Errorf("unsupported body %T", body)
	}
	if err != nil {
		return fmt.Errorf("%w: %s at offset %d: %v", ErrMessage, m.Type, m.Offset, err)
	}
	return nil
}

// options gives gobgp the per-peer decoding options for a message.
func (d *Decoder) options(h bmp.BMPPeerHeader) []*bgp.MarshallingOption {
	if d.guess != nil {
		return d.guess
	}
	ps := d.peers[keyOf(&h)]
	twoByte := h.PeerType != bmp.BMP_PEER_TYPE_LOCAL_RIB && h.Flags&bmp.BMP_PEER_FLAG_TWO_AS != 0
	if ps == nil {
		if twoByte {
			return []*bgp.MarshallingOption{{Use2ByteAS: true}}
		}
		return nil
	}
	out := h.Flags&bmp.BMP_PEER_FLAG_ADJ_RIB_TYP != 0 && h.PeerType != bmp.BMP_PEER_TYPE_LOCAL_RIB
	var o *bgp.MarshallingOption
	switch {
	case out && twoByte:
		o = ps.out2
	case out:
		o = ps.out
	case twoByte:
		o = ps.in2
	default:
		o = ps.in
	}
	return []*bgp.MarshallingOption{o}
}

func noAddPath(h bmp.BMPPeerHeader) []*bgp.MarshallingOption {
	if h.Flags&bmp.BMP_PEER_FLAG_TWO_AS != 0 && h.PeerType != bmp.BMP_PEER_TYPE_LOCAL_RIB {
		return []*bgp.MarshallingOption{{Use2ByteAS: true}}
	}
	return nil
}

func keyOf(h *bmp.BMPPeerHeader) PeerKey {
	return PeerKey{Type: h.PeerType, RD: h.PeerDistinguisher, Addr: h.PeerAddress}
}

type peerCacheKey struct {
	PeerKey
	flags uint8
}

func stamp(ts float64) time.Time {
	if ts <= 0 {
		return time.Time{}
	}
	sec, frac := math.Modf(ts)
	return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1000).UTC()
}

// peer returns the normalised peer header, cached per peer and flags so
// the hot path formats no addresses.
func (d *Decoder) peer(h *bmp.BMPPeerHeader) *Peer {
	ck := peerCacheKey{keyOf(h), h.Flags}
	if p := d.last; p != nil && d.lastKey == ck && p.AS == h.PeerAS {
		return p // a run of one peer's routes, the usual case
	}
	if p := d.pcache[ck]; p != nil && p.AS == h.PeerAS {
		d.last, d.lastKey = p, ck
		return p
	}
	p := d.newPeer(h)
	if len(d.pcache) > 4096 {
		clear(d.pcache)
	}
	d.pcache[ck] = p
	d.last, d.lastKey = p, ck
	return p
}

func (d *Decoder) newPeer(h *bmp.BMPPeerHeader) *Peer {
	p := &Peer{
		Type:     PeerTypeName(h.PeerType),
		TypeCode: h.PeerType,
		Flags:    h.Flags,
		AS:       h.PeerAS,
		Key:      keyOf(h),
	}
	if h.PeerDistinguisher != 0 || h.PeerType != bmp.BMP_PEER_TYPE_GLOBAL {
		p.Distinguisher = FormatRD(h.PeerDistinguisher)
	}
	if h.PeerAddress.IsValid() {
		p.Address = h.PeerAddress.String()
	} else {
		p.Address = "0.0.0.0"
	}
	if h.PeerBGPID.IsValid() {
		p.BGPID = h.PeerBGPID.String()
	}
	p.RIB = RIBView(h.PeerType, h.Flags)
	p.NetworkInstance = d.networkInstance(h)
	return p
}

// RIBView names the RIB view of a peer header as meshd's model does.
func RIBView(peerType, flags uint8) string {
	if peerType == bmp.BMP_PEER_TYPE_LOCAL_RIB {
		return "LOC_RIB"
	}
	post := flags&bmp.BMP_PEER_FLAG_POST_POLICY != 0
	if flags&bmp.BMP_PEER_FLAG_ADJ_RIB_TYP != 0 {
		if post {
			return "ADJ_RIB_OUT_POST"
		}
		return "ADJ_RIB_OUT_PRE"
	}
	if post {
		return "ADJ_RIB_IN_POST"
	}
	return "ADJ_RIB_IN_PRE"
}

// networkInstance maps a peer to a network instance: global peers are in
// "default"; others by the Peer Up table name, then config, then rd:<RD>.
func (d *Decoder) networkInstance(h *bmp.BMPPeerHeader) string {
	if h.PeerType == bmp.BMP_PEER_TYPE_GLOBAL {
		return "default"
	}
	if ps := d.peers[keyOf(h)]; ps != nil && ps.tableName != "" {
		return ps.tableName
	}
	rd := FormatRD(h.PeerDistinguisher)
	if ni, ok := d.VRFs[rd]; ok {
		return ni
	}
	if h.PeerDistinguisher == 0 {
		return "default"
	}
	return "rd:" + rd
}

func initiation(b *bmp.BMPInitiation) *Initiation {
	in := &Initiation{}
	for _, tlv := range b.Info {
		s, ok := tlv.(*bmp.BMPInfoTLVString)
		if !ok {
			continue
		}
		switch s.Type {
		case bmp.BMP_INIT_TLV_TYPE_SYS_NAME:
			in.SysName = s.Value
		case bmp.BMP_INIT_TLV_TYPE_SYS_DESCR:
			in.SysDescr = s.Value
		default:
			in.Strings = append(in.Strings, s.Value)
		}
	}
	return in
}

func termination(b *bmp.BMPTermination) *Termination {
	t := &Termination{ReasonCode: bmp.BMP_TERM_REASON_UNSPEC, Reason: TerminationReason(bmp.BMP_TERM_REASON_UNSPEC)}
	for _, tlv := range b.Info {
		switch v := tlv.(type) {
		case *bmp.BMPTermTLV16:
			t.ReasonCode = v.Value
			t.Reason = TerminationReason(v.Value)
		case *bmp.BMPTermTLVString:
			t.Strings = append(t.Strings, v.Value)
		}
	}
	return t
}

func open(m *bgp.BGPMessage) (*Open, error) {
	if m == nil {
		return nil, errors.New("missing OPEN")
	}
	b, ok := m.Body.(*bgp.BGPOpen)
	if !ok {
		return nil, fmt.Errorf("peer up carries %T, want an OPEN", m.Body)
	}
	o := &Open{AS: uint32(b.MyAS), HoldTime: b.HoldTime, caps: map[bgp.BGPCapabilityCode]bool{}, addPath: map[bgp.Family]bgp.BGPAddPathMode{}}
	if b.ID.IsValid() {
		o.BGPID = b.ID.String()
	}
	for _, p := range b.OptParams {
		pc, ok := p.(*bgp.OptionParameterCapability)
		if !ok {
			continue
		}
		for _, c := range pc.Capability {
			code := c.Code()
			if !o.caps[code] {
				o.Capabilities = append(o.Capabilities, capName(code))
			}
			o.caps[code] = true
			switch v := c.(type) {
			case *bgp.CapFourOctetASNumber:
				o.AS = v.CapValue
				o.FourOctetAS = true
			case *bgp.CapMultiProtocol:
				o.Families = append(o.Families, AfiSafiName(v.CapValue))
			case *bgp.CapAddPath:
				if o.AddPath == nil {
					o.AddPath = map[string]string{}
				}
				for _, t := range v.Tuples {
					o.addPath[t.Family] = t.Mode
					o.AddPath[AfiSafiName(t.Family)] = addPathMode(t.Mode)
				}
			}
		}
	}
	return o, nil
}

func addPathMode(m bgp.BGPAddPathMode) string {
	switch m {
	case bgp.BGP_ADD_PATH_RECEIVE:
		return "receive"
	case bgp.BGP_ADD_PATH_SEND:
		return "send"
	case bgp.BGP_ADD_PATH_BOTH:
		return "both"
	}
	return "none"
}

func (d *Decoder) peerUp(p *Peer, b *bmp.BMPPeerUpNotification) (*PeerUp, error) {
	sent, err := open(b.SentOpenMsg)
	if err != nil {
		return nil, fmt.Errorf("sent %w", err)
	}
	recv, err := open(b.ReceivedOpenMsg)
	if err != nil {
		return nil, fmt.Errorf("received %w", err)
	}
	u := &PeerUp{
		LocalPort: b.LocalPort, RemotePort: b.RemotePort,
		Sent: sent, Received: recv,
		LocalAS: sent.AS, PeerAS: recv.AS,
		FourOctetAS: sent.FourOctetAS && recv.FourOctetAS,
	}
	if b.LocalAddress.IsValid() {
		u.LocalAddress = b.LocalAddress.String()
	}
	u.NegotiatedHoldTime = min(sent.HoldTime, recv.HoldTime)
	for _, c := range sortedCaps(sent.caps) {
		if recv.caps[c] {
			u.Capabilities = append(u.Capabilities, capName(c))
			if n, ok := ocCapability(c); ok && !slices.Contains(u.OCCapabilities, n) {
				u.OCCapabilities = append(u.OCCapabilities, n)
			}
		}
	}
	for _, tlv := range b.Info {
		switch v := tlv.(type) {
		case *bmp.BMPInfoTLVString:
			if v.Type == bmp.BMP_INIT_TLV_TYPE_VRF_TABLE_NAME {
				u.TableName = v.Value
			} else {
				u.Info = append(u.Info, v.Value)
			}
		}
	}
	// ADD-PATH: routes from the peer carry path IDs when the peer may send
	// and the router receive; routes to the peer (Adj-RIB-Out) the reverse.
	// Loc-RIB peers' OPENs are the router's own, so either side counts.
	ps := &peerState{tableName: u.TableName}
	in, out := map[bgp.Family]bgp.BGPAddPathMode{}, map[bgp.Family]bgp.BGPAddPathMode{}
	loc := p.TypeCode == bmp.BMP_PEER_TYPE_LOCAL_RIB
	for f, rm := range recv.addPath {
		sm := sent.addPath[f]
		if (rm&bgp.BGP_ADD_PATH_SEND != 0 && sm&bgp.BGP_ADD_PATH_RECEIVE != 0) || (loc && (rm|sm) != 0) {
			in[f] = bgp.BGP_ADD_PATH_RECEIVE
			u.AddPathIn = append(u.AddPathIn, AfiSafiName(f))
		}
		if rm&bgp.BGP_ADD_PATH_RECEIVE != 0 && sm&bgp.BGP_ADD_PATH_SEND != 0 {
			out[f] = bgp.BGP_ADD_PATH_RECEIVE
			u.AddPathOut = append(u.AddPathOut, AfiSafiName(f))
		}
	}
	if loc {
		for f, sm := range sent.addPath {
			if _, ok := in[f]; !ok && sm != 0 {
				in[f] = bgp.BGP_ADD_PATH_RECEIVE
				u.AddPathIn = append(u.AddPathIn, AfiSafiName(f))
			}
		}
	}
	slices.Sort(u.AddPathIn)
	slices.Sort(u.AddPathOut)
	ps.in = &bgp.MarshallingOption{AddPath: in}
	ps.out = &bgp.MarshallingOption{AddPath: out}
	ps.in2 = &bgp.MarshallingOption{AddPath: in, Use2ByteAS: true}
	ps.out2 = &bgp.MarshallingOption{AddPath: out, Use2ByteAS: true}
	d.peers[p.Key] = ps
	if u.TableName != "" && p.TypeCode != bmp.BMP_PEER_TYPE_GLOBAL {
		p.NetworkInstance = u.TableName
	}
	return u, nil
}

func peerDown(b *bmp.BMPPeerDownNotification) *PeerDown {
	pd := &PeerDown{ReasonCode: b.Reason, Reason: PeerDownReason(b.Reason)}
	if b.BGPNotification != nil {
		if n, ok := b.BGPNotification.Body.(*bgp.BGPNotification); ok {
			cn, sn := NotificationName(n.ErrorCode, n.ErrorSubcode)
			pd.Notification = &Notification{Code: n.ErrorCode, Subcode: n.ErrorSubcode, CodeName: cn, SubcodeName: sn}
			if len(n.Data) > 0 {
				// Shutdown communication (RFC 9003) is a length-prefixed UTF-8 text.
				if n.ErrorCode == bgp.BGP_ERROR_CEASE && (n.ErrorSubcode == bgp.BGP_ERROR_SUB_ADMINISTRATIVE_SHUTDOWN || n.ErrorSubcode == bgp.BGP_ERROR_SUB_ADMINISTRATIVE_RESET) && int(n.Data[0]) == len(n.Data)-1 {
					pd.Notification.Data = string(n.Data[1:])
				} else {
					pd.Notification.Data = hex.EncodeToString(n.Data)
				}
			}
		}
	}
	if b.Reason == bmp.BMP_PEER_DOWN_REASON_LOCAL_NO_NOTIFICATION && len(b.Data) >= 2 {
		pd.FSMEvent = binary.BigEndian.Uint16(b.Data)
	}
	for _, tlv := range b.Info {
		if s, ok := tlv.(*bmp.BMPInfoTLVString); ok {
			pd.Info = append(pd.Info, s.Value)
		}
	}
	return pd
}

func stats(b *bmp.BMPStatisticsReport) []Stat {
	out := make([]Stat, 0, len(b.Stats))
	for _, s := range b.Stats {
		switch v := s.(type) {
		case *bmp.BMPStatsTLV32:
			out = append(out, Stat{Type: v.Type, Name: StatName(v.Type), Value: uint64(v.Value)})
		case *bmp.BMPStatsTLV64:
			out = append(out, Stat{Type: v.Type, Name: StatName(v.Type), Value: v.Value})
		case *bmp.BMPStatsTLVPerAfiSafi64:
			out = append(out, Stat{Type: v.Type, Name: StatName(v.Type), AfiSafi: AfiSafiName(bgp.NewFamily(v.AFI, v.SAFI)), Value: v.Value})
		}
	}
	return out
}

// mirroring counts a Route Mirroring message's TLVs (RFC 7854 4.7)
// without parsing the BGP messages they mirror: an errored-PDU report
// carries a message that is malformed by definition, and one from an
// ADD-PATH session needs options gobgp's parser would not have, and
// neither makes the BMP message malformed.
func (d *Decoder) mirroring(raw []byte, m *Message) error {
	body := raw[bmp.BMP_HEADER_SIZE:]
	var h bmp.BMPPeerHeader
	if len(body) < bmp.BMP_PEER_HEADER_SIZE || h.DecodeFromBytes(body) != nil {
		return fmt.Errorf("%w: %s at offset %d: short per-peer header", ErrMessage, m.Type, m.Offset)
	}
	m.Peer = d.peer(&h)
	m.Time = stamp(h.Timestamp)
	mr := &Mirroring{}
	for b := body[bmp.BMP_PEER_HEADER_SIZE:]; len(b) > 0; {
		if len(b) < 4 || int(binary.BigEndian.Uint16(b[2:4])) > len(b)-4 {
			return fmt.Errorf("%w: %s at offset %d: TLV %d runs past the message", ErrMessage, m.Type, m.Offset, mr.TLVs+1)
		}
		typ, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:4]))
		mr.TLVs++
		switch {
		case typ == bmp.BMP_ROUTE_MIRRORING_TLV_TYPE_BGP_MSG:
			mr.Messages++
		case typ == bmp.BMP_ROUTE_MIRRORING_TLV_TYPE_INFO && n == 2:
			switch binary.BigEndian.Uint16(b[4:6]) {
			case bmp.BMP_ROUTE_MIRRORING_INFO_ERR_PDU:
				mr.ErroredPDUs++
			case bmp.BMP_ROUTE_MIRRORING_INFO_MSG_LOST:
				mr.MessagesLost++
			}
		}
		b = b[4+n:]
	}
	m.Mirroring = mr
	return nil
}

func sortedCaps(m map[bgp.BGPCapabilityCode]bool) []bgp.BGPCapabilityCode {
	out := make([]bgp.BGPCapabilityCode, 0, len(m))
	for c := range m {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}
