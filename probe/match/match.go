// Package match follows BGP-over-TCP flows in a stream of decoded segments.
// Per direction it tracks the byte stream far enough to find BGP messages
// by marker and length (several per segment, or one split across
// segments) and pairs each KEEPALIVE with the other side's ACK covering
// its last byte, which yields an RTT sample timed by capture timestamps.
// Retransmitted keepalives are losses, never samples (Karn's rule),
// unless the ACK's timestamp echo shows the first sending arrived
// (a spurious retransmission, RFC 3522's Eifel detection).
//
// # When a keepalive counts as lost
//
// A keepalive is lost when it is retransmitted (and the ACK echoes the
// retransmission's TSval, or no timestamps are on), when it is not
// acknowledged within the loss bound, or when it never appears: the
// sender has stopped putting keepalives on the wire at its usual
// interval (its link is down, so the kernel has no route and sends
// nothing, or TCP holds new data back behind a retransmission).
//
// The loss bound is 3 × the direction's recent RTT (the largest of its
// last 4 samples), but no less than Config.LossFloor (default 1 s) and
// no more than Config.LossTimeout (default 10 s). The floor is above
// what a healthy peer's ACK policy can add (a Linux peer in its
// interactive mode holds the ACK of a lone segment 40-200 ms, its
// TCP_DELACK_MAX) and above Linux's least retransmission timeout
// (200 ms), so a keepalive the sender gives up on is seen retransmitted
// first; 3 × RTT takes over on paths slower than 330 ms.
//
// The keepalive interval is learned per direction as the longest of the
// last 4 gaps between consecutive keepalives with nothing else sent in
// between (RFC 4271 restarts the keepalive timer on an UPDATE). A
// keepalive is missing when nothing at all has come from that side for
// k intervals plus the loss bound (an idle 4-router lab on a 2-core
// machine at load 10 sent its 3 s keepalives 2.81-3.24 s apart, as seen
// on the wire); at most 3 are counted per silence,
// which is the hold time RFC 4271 suggests (3 × keepalive), after which
// the session is over by its own rules. A gap that held a missing
// keepalive is not learned as an interval.
//
// It keeps no payload: only the 19-byte header of the message being read,
// so memory per flow is fixed and the hot path does not allocate.
package match

import (
	"net/netip"
	"time"

	"github.com/meshd/meshd/probe/packet"
)

// BGP message header facts (RFC 4271 §4.1, RFC 8654 for the maximum).
const (
	headerLen     = 19
	maxMessageLen = 65535
	typeKeepalive = 4
)

// Dir indexes Flow.Half: the endpoint that sent the data in question,
// 0 for Key.A and 1 for Key.B.
type Dir uint8

// Key names a TCP connection; A sorts before B so both directions of a
// connection share one key.
type Key struct{ A, B netip.AddrPort }

// Endpoint returns the endpoint of direction d.
func (k Key) Endpoint(d Dir) netip.AddrPort {
	if d == 0 {
		return k.A
	}
	return k.B
}

// Flow is one TCP connection.
type Flow struct {
	Key  Key
	Half [2]Half
	// Last is the capture time of the flow's latest segment.
	Last int64
	// Aux is the consumer's per-direction state (e.g. statistics of the
	// peer measured from that endpoint); match never touches it.
	Aux [2]any

	finSeen [2]bool
}

// maxPending bounds the keepalives awaiting an ACK per direction; a
// speaker sends one every few seconds, so a handful only build up when
// ACKs are missing, and then the oldest is a loss anyway.
const maxPending = 8

// tsRing is how many recent TSvals per direction are remembered for the
// timestamp cross-check.
const tsRing = 8

// Half is the state of one direction of a flow: the data one endpoint
// sends, and the other's acknowledgements of it.
type Half struct {
	synced bool   // next is known
	next   uint32 // sequence number after the highest byte seen
	framed bool   // the stream position is on a BGP message boundary or inside a known message
	hdr    [headerLen]byte
	hdrN   int // header bytes collected; headerLen means inside a body
	skip   int // body bytes still to pass over
	msgLen int
	msgTyp uint8

	pend  [maxPending]pending // oldest first
	npend int

	ts  [tsRing]tsSeen
	tsN int

	rtt  [rttRing]int64 // recent samples of this direction's keepalives
	rttN int

	lastMsg  int64 // capture time of the latest message this side completed, 0 none
	prevKA   bool  // that message was a keepalive
	gaps     [gapRing]int64
	gapN     int
	missed   int  // keepalives missing in the current silence
	gapBlind bool // the current gap held a missing keepalive: not an interval

	TTL      uint8
	hasTTL   bool
	sentData bool // this side has sent payload: its TTL is the session's

	// Diagnostics, per direction.
	Gaps        uint64 // bytes missing from the capture forced a resync
	Desyncs     uint64 // a header did not look like BGP; rescanned for a marker
	Retransmits uint64 // segments carrying bytes already seen
	Ambiguous   uint64 // covering ACK also acknowledged later data and TS could not vouch for it
	TSMismatch  uint64 // seq/ack sample whose ACK echoed another segment's TSval
	Spurious    uint64 // retransmitted keepalives whose first sending was acknowledged (not lost)
}

type pending struct {
	end    uint32 // sequence number after the keepalive's last byte
	segEnd uint32 // sequence number after the segment that carried it
	t      int64  // capture time of that segment
	tsval  uint32
	hasTS  bool
	retx   bool // retransmitted: its ACK must not make a sample
	// undecided: retransmitted, timestamps on, and not yet counted: its
	// ACK tells whether the first sending arrived (see acked).
	undecided bool
}

type tsSeen struct {
	v uint32
	t int64
}

// Kind says what an Event reports.
type Kind uint8

// Event kinds.
const (
	// Message: a BGP message of MsgType and MsgLen ended, sent by Dir.
	Message Kind = iota + 1
	// Sample: a keepalive sent by Dir was acknowledged; RTT is set.
	Sample
	// Loss: a keepalive sent by Dir was retransmitted, or never
	// acknowledged within the loss timeout; Reason says which.
	Loss
	// TTL: the TTL (hop limit) of Dir's packets is seen for the first time
	// (OldTTL 0) or changed.
	TTL
	// FlowEnd: the flow was reset, closed or went idle and is forgotten
	// after this event.
	FlowEnd
)

// Method says how a sample's covering ACK was identified.
type Method uint8

// Methods.
const (
	// SeqAck: the ACK covers the keepalive's last byte and no later data.
	SeqAck Method = iota + 1
	// TSEcho: the ACK also covered later data, but its TSecr echoes the
	// keepalive segment's TSval, so the keepalive's arrival triggered it.
	TSEcho
)

// LossReason says why a keepalive counts as lost.
type LossReason uint8

// Loss reasons.
const (
	Retransmitted LossReason = iota + 1
	Unacknowledged
	// Missing: no keepalive (nor any other message) appeared on the wire
	// within the sender's learned keepalive interval and the loss bound.
	Missing
)

// String names a loss reason.
func (r LossReason) String() string {
	switch r {
	case Retransmitted:
		return "retransmitted"
	case Unacknowledged:
		return "unacknowledged"
	case Missing:
		return "missing"
	}
	return "unknown"
}

// Loss-bound facts, see the package documentation.
const (
	rttRing      = 4 // recent samples the loss bound is derived from
	gapRing      = 4 // keepalive gaps the interval is learned from
	lossRTTs     = 3 // the loss bound in RTTs
	maxMissing   = 3 // missing keepalives counted per silence (hold = 3 × keepalive)
	minKeepalive = int64(100 * time.Millisecond)
)

// Event is handed to the consumer's callback; it is reused, so the
// callback must copy what it keeps.
type Event struct {
	Kind   Kind
	Flow   *Flow
	Dir    Dir
	Time   int64 // capture time, Unix ns
	MsgTyp uint8
	MsgLen int
	RTT    int64 // ns
	// TSRTT is the RTT from the TSval the ACK echoes to the ACK, when both
	// carry timestamps and that TSval was seen; 0 otherwise.
	TSRTT  int64
	Method Method
	// Piggybacked: the ACK came on a segment carrying the other side's
	// data. A peer that ACKs at once sends a pure ACK before its own next
	// message; one whose ACK rides on its data held it back (a delayed
	// ACK), so the sample times the peer's ACK policy as well as the path.
	Piggybacked bool
	Reason      LossReason
	TTL         uint8
	OldTTL      uint8
}

// Config tunes a Tracker.
type Config struct {
	// Port keeps only segments with this source or destination port; 0
	// keeps all.
	Port uint16
	// LossTimeout caps the loss bound: a keepalive not acknowledged this
	// long is a loss whatever the RTT (default 10 s).
	LossTimeout time.Duration
	// LossFloor is the least loss bound (default 1 s); see the package
	// documentation.
	LossFloor time.Duration
	// IdleTimeout: a flow without segments this long is forgotten
	// (default 10 min, longer than any hold time).
	IdleTimeout time.Duration
	// MaxFlows bounds the flow table (default 65536).
	MaxFlows int
}

// Counters are the tracker's own totals.
type Counters struct {
	Segments     uint64 // segments handled
	OtherPort    uint64 // segments skipped by the port rule
	FlowsCreated uint64
	FlowsDropped uint64 // refused because the table was full
}

// Tracker holds the flows. It is not safe for concurrent use: one
// goroutine feeds it, in capture order.
type Tracker struct {
	cfg      Config
	flows    map[Key]*Flow
	emit     func(*Event)
	ev       Event
	Counters Counters
}

// New returns a Tracker that reports to emit.
func New(cfg Config, emit func(*Event)) *Tracker {
	if cfg.LossTimeout <= 0 {
		cfg.LossTimeout = 10 * time.Second
	}
	if cfg.LossFloor <= 0 {
		cfg.LossFloor = time.Second
	}
	if cfg.LossFloor > cfg.LossTimeout {
		cfg.LossFloor = cfg.LossTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	if cfg.MaxFlows <= 0 {
		cfg.MaxFlows = 1 << 16
	}
	if emit == nil {
		emit = func(*Event) {}
	}
	return &Tracker{cfg: cfg, flows: make(map[Key]*Flow), emit: emit}
}

// Flows returns the number of flows tracked.
func (t *Tracker) Flows() int { return len(t.flows) }

// Flow returns the flow with key k, or nil.
func (t *Tracker) Flow(k Key) *Flow { return t.flows[k] }

func seqGE(a, b uint32) bool { return int32(a-b) >= 0 }
func seqGT(a, b uint32) bool { return int32(a-b) > 0 }

func (t *Tracker) event(k Kind, f *Flow, d Dir, now int64) *Event {
	t.ev = Event{Kind: k, Flow: f, Dir: d, Time: now}
	return &t.ev
}

// Packet handles one decoded segment captured at now (Unix ns).
func (t *Tracker) Packet(p *packet.Packet, now int64) {
	t.Counters.Segments++
	if t.cfg.Port != 0 && p.SrcPort != t.cfg.Port && p.DstPort != t.cfg.Port {
		t.Counters.OtherPort++
		return
	}
	src, dst := p.SrcAddrPort(), p.DstAddrPort()
	var k Key
	var d Dir
	if src.Compare(dst) <= 0 {
		k = Key{src, dst}
	} else {
		k, d = Key{dst, src}, 1
	}
	f := t.flows[k]
	if f == nil {
		if p.Flags&packet.FlagRST != 0 {
			return
		}
		if len(t.flows) >= t.cfg.MaxFlows {
			t.Counters.FlowsDropped++
			return
		}
		f = &Flow{Key: k}
		t.flows[k] = f
		t.Counters.FlowsCreated++
	}
	f.Last = now
	h, o := &f.Half[d], &f.Half[1-d]

	// Speakers set the session's TTL (1 for single-hop eBGP, 255 for
	// GTSM) on the socket only once connected, so the handshake and any
	// segment before the sender's first byte of BGP would report a path
	// change that is none.
	if (h.sentData || len(p.Payload) > 0) && p.Flags&(packet.FlagSYN|packet.FlagRST) == 0 && (!h.hasTTL || h.TTL != p.TTL) {
		e := t.event(TTL, f, d, now)
		e.TTL, e.OldTTL = p.TTL, h.TTL
		h.TTL, h.hasTTL = p.TTL, true
		t.emit(e)
	}

	if p.Flags&packet.FlagRST != 0 {
		t.end(f, now)
		return
	}
	if p.Flags&packet.FlagSYN != 0 {
		if p.Flags&packet.FlagACK == 0 {
			// A new connection on the same four-tuple: nothing of the
			// old one's state applies.
			f.Half[0].reset()
			f.Half[1].reset()
			f.finSeen = [2]bool{}
		} else {
			h.reset()
		}
		h.synced, h.framed, h.next = true, true, p.Seq+1
	}
	if p.Flags&packet.FlagACK != 0 && o.npend > 0 {
		t.acked(f, o, 1-d, p, now)
	}
	if len(p.Payload) > 0 {
		t.data(f, h, d, p, now)
	}
	if p.Flags&packet.FlagFIN != 0 {
		f.finSeen[d] = true
	}
}

func (h *Half) reset() {
	*h = Half{TTL: h.TTL, hasTTL: h.hasTTL, sentData: h.sentData, Gaps: h.Gaps, Desyncs: h.Desyncs,
		Retransmits: h.Retransmits, Ambiguous: h.Ambiguous, TSMismatch: h.TSMismatch, Spurious: h.Spurious}
}

// acked handles an ACK from the other side for half o's data (sent by od).
func (t *Tracker) acked(f *Flow, o *Half, od Dir, p *packet.Packet, now int64) {
	newest := -1
	for i := 0; i < o.npend; i++ {
		if !seqGE(p.Ack, o.pend[i].end) {
			break
		}
		newest = i
	}
	if newest < 0 {
		return
	}
	ka := o.pend[newest]
	for i := 0; i <= newest; i++ {
		if !o.pend[i].undecided {
			continue
		}
		// Eifel detection (RFC 3522): an ACK that echoes the first
		// sending's TSval says the first sending arrived, and the
		// retransmission was spurious (the ACK was late, e.g. held
		// by a stalled link). An echo of the retransmission's is a loss.
		if p.HasTS && p.TSecr == o.pend[i].tsval {
			o.Spurious++
			continue
		}
		e := t.event(Loss, f, od, now)
		e.Reason = Retransmitted
		t.emit(e)
	}
	// Older covered keepalives were acknowledged late (one cumulative
	// ACK), not lost; only the newest gives an honest RTT.
	o.dropPending(newest + 1)
	if ka.retx {
		return
	}
	tsEcho := p.HasTS && ka.hasTS && p.TSecr == ka.tsval
	method := SeqAck
	if seqGT(p.Ack, ka.segEnd) {
		// The ACK covers data sent after the keepalive's segment, so it
		// may have waited for that data.
		if !tsEcho {
			o.Ambiguous++
			return
		}
		method = TSEcho
	} else if p.HasTS && ka.hasTS && !tsEcho {
		o.TSMismatch++
	}
	e := t.event(Sample, f, od, now)
	e.RTT = now - ka.t
	o.rtt[o.rttN%rttRing] = e.RTT
	o.rttN++
	e.Method = method
	e.Piggybacked = len(p.Payload) > 0
	if p.HasTS {
		if ts, ok := o.tsTime(p.TSecr); ok {
			e.TSRTT = now - ts
		}
	}
	t.emit(e)
}

func (h *Half) dropPending(n int) {
	copy(h.pend[:], h.pend[n:h.npend])
	h.npend -= n
}

func (h *Half) tsTime(v uint32) (int64, bool) {
	for i := 0; i < h.tsN; i++ {
		if h.ts[i].v == v {
			return h.ts[i].t, true
		}
	}
	return 0, false
}

func (h *Half) noteTS(v uint32, now int64) {
	if h.tsN > 0 && h.ts[(h.tsN-1)%tsRing].v == v {
		return
	}
	// Keep the first time a TSval was seen: an echo of it measures from
	// the first segment that carried it.
	if h.tsN < tsRing {
		h.ts[h.tsN] = tsSeen{v, now}
		h.tsN++
		return
	}
	copy(h.ts[:], h.ts[1:])
	h.ts[tsRing-1] = tsSeen{v, now}
}

// data handles the payload of a segment from d.
func (t *Tracker) data(f *Flow, h *Half, d Dir, p *packet.Packet, now int64) {
	seq, pl := p.Seq, p.Payload
	if p.Flags&packet.FlagSYN != 0 {
		seq++
	}
	if !h.synced {
		// Joined mid-stream: the first byte may be anywhere in a message.
		h.synced, h.framed, h.next = true, false, seq
	}
	if rel := int32(seq - h.next); rel > 0 {
		// Bytes missing from the capture (or reordered): the framing is
		// lost until the next marker.
		h.Gaps++
		h.unframe()
		h.next = seq
	} else if rel < 0 {
		h.Retransmits++
		end := seq + uint32(len(pl))
		t.retransmitted(f, h, d, seq, end, now)
		if !seqGT(end, h.next) {
			if p.HasTS {
				h.noteTS(p.TSval, now)
			}
			return
		}
		pl, seq = pl[-rel:], h.next
	}
	h.sentData = true
	segEnd := seq + uint32(len(pl))
	t.frame(f, h, d, pl, seq, segEnd, p, now)
	h.next = segEnd
	if p.HasTS {
		h.noteTS(p.TSval, now)
	}
}

func (h *Half) unframe() {
	h.framed, h.hdrN, h.skip = false, 0, 0
}

// retransmitted marks keepalives whose bytes [seq, end) were sent again.
func (t *Tracker) retransmitted(f *Flow, h *Half, d Dir, seq, end uint32, now int64) {
	for i := 0; i < h.npend; i++ {
		pd := &h.pend[i]
		if pd.retx || !seqGT(pd.end, seq) || !seqGE(end, pd.end) {
			continue
		}
		pd.retx = true
		if pd.hasTS {
			// The ACK (or the loss bound) decides.
			pd.undecided = true
			continue
		}
		e := t.event(Loss, f, d, now)
		e.Reason = Retransmitted
		t.emit(e)
	}
}

var marker = [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// validHeader reports whether b (at least 19 bytes) is a plausible BGP
// header, and its length and type.
func validHeader(b []byte) (int, uint8, bool) {
	if [16]byte(b[:16]) != marker {
		return 0, 0, false
	}
	n := int(b[16])<<8 | int(b[17])
	typ := b[18]
	if n < headerLen || typ == 0 || typ > 6 {
		return 0, 0, false
	}
	return n, typ, true
}

// findHeader returns the offset of the first plausible BGP header that
// lies wholly in b, or -1.
func findHeader(b []byte) int {
	for i := 0; i+headerLen <= len(b); i++ {
		if b[i] != 0xff {
			continue
		}
		if _, _, ok := validHeader(b[i:]); ok {
			return i
		}
	}
	return -1
}

// frame walks new stream bytes pl starting at sequence number seq.
func (t *Tracker) frame(f *Flow, h *Half, d Dir, pl []byte, seq, segEnd uint32, p *packet.Packet, now int64) {
	pos := 0
	for pos < len(pl) {
		if !h.framed {
			i := findHeader(pl[pos:])
			if i < 0 {
				return
			}
			pos += i
			h.framed, h.hdrN, h.skip = true, 0, 0
		}
		if h.hdrN == headerLen {
			n := min(h.skip, len(pl)-pos)
			pos += n
			h.skip -= n
			if h.skip == 0 {
				t.complete(f, h, d, seq+uint32(pos), segEnd, p, now)
			}
			continue
		}
		n := copy(h.hdr[h.hdrN:], pl[pos:])
		h.hdrN += n
		pos += n
		if h.hdrN < headerLen {
			return
		}
		l, typ, ok := validHeader(h.hdr[:])
		if !ok {
			// Not BGP where BGP should be: rescan from just after the
			// bad header's first byte when it is in this segment.
			h.Desyncs++
			h.unframe()
			if back := pos - headerLen + 1; back > 0 {
				pos = back
			}
			continue
		}
		h.msgLen, h.msgTyp, h.skip = l, typ, l-headerLen
		if h.skip == 0 {
			t.complete(f, h, d, seq+uint32(pos), segEnd, p, now)
		}
	}
}

// complete reports a message whose last byte is just before end.
func (t *Tracker) complete(f *Flow, h *Half, d Dir, end, segEnd uint32, p *packet.Packet, now int64) {
	typ, l := h.msgTyp, h.msgLen
	h.hdrN, h.skip = 0, 0
	e := t.event(Message, f, d, now)
	e.MsgTyp, e.MsgLen = typ, l
	t.emit(e)
	isKA := typ == typeKeepalive && l == headerLen
	if isKA && h.prevKA && !h.gapBlind && now-h.lastMsg >= minKeepalive {
		// Several keepalives in one burst (a backlog flushed after an
		// outage) are no interval: gaps under minKeepalive are skipped.
		h.gaps[h.gapN%gapRing] = now - h.lastMsg
		h.gapN++
	}
	h.lastMsg, h.prevKA, h.missed, h.gapBlind = now, isKA, 0, false
	if !isKA {
		return
	}
	if h.npend == maxPending {
		// ACKs are missing from the capture: the oldest is a loss.
		t.lost(f, h, d, now, 1)
	}
	h.pend[h.npend] = pending{end: end, segEnd: segEnd, t: now, tsval: p.TSval, hasTS: p.HasTS}
	h.npend++
}

// lost reports the oldest n pending keepalives as unacknowledged (or
// retransmitted, when they were) and forgets them; retransmitted ones
// without timestamps were counted already.
func (t *Tracker) lost(f *Flow, h *Half, d Dir, now int64, n int) {
	for i := 0; i < n; i++ {
		pd := &h.pend[i]
		if pd.retx && !pd.undecided {
			continue
		}
		e := t.event(Loss, f, d, now)
		e.Reason = Unacknowledged
		if pd.retx {
			e.Reason = Retransmitted
		}
		t.emit(e)
	}
	h.dropPending(n)
}

// lossBound is how long a keepalive of h may wait for its ACK (see the
// package documentation).
func (t *Tracker) lossBound(h *Half) int64 {
	var r int64
	for i := 0; i < min(h.rttN, rttRing); i++ {
		r = max(r, h.rtt[i])
	}
	return min(max(lossRTTs*r, t.cfg.LossFloor.Nanoseconds()), t.cfg.LossTimeout.Nanoseconds())
}

// interval is h's learned keepalive interval, 0 while unknown.
func (h *Half) interval() int64 {
	var iv int64
	for i := 0; i < min(h.gapN, gapRing); i++ {
		iv = max(iv, h.gaps[i])
	}
	return iv
}

// Expire counts keepalives unacknowledged for longer than the loss
// bound, or missing, as lost and forgets idle or closed flows. Call it
// now and then (every second or so) with the current capture time.
func (t *Tracker) Expire(now int64) {
	lt := t.cfg.LossTimeout.Nanoseconds()
	idle := t.cfg.IdleTimeout.Nanoseconds()
	for _, f := range t.flows {
		closing := f.finSeen[0] || f.finSeen[1]
		for d := range f.Half {
			h := &f.Half[d]
			bound := t.lossBound(h)
			n := 0
			for n < h.npend && now-h.pend[n].t > bound {
				n++
			}
			if n > 0 {
				t.lost(f, h, Dir(d), now, n)
			}
			if closing {
				continue
			}
			if iv := h.interval(); iv > 0 && h.lastMsg != 0 {
				for h.missed < maxMissing && now-h.lastMsg > int64(h.missed+1)*iv+bound {
					h.missed++
					h.gapBlind = true
					e := t.event(Loss, f, Dir(d), now)
					e.Reason = Missing
					t.emit(e)
				}
			}
		}
		closed := f.finSeen[0] && f.finSeen[1]
		if now-f.Last > idle || (closed && now-f.Last > lt) {
			t.end(f, now)
		}
	}
}

func (t *Tracker) end(f *Flow, now int64) {
	t.emit(t.event(FlowEnd, f, 0, now))
	delete(t.flows, f.Key)
}
