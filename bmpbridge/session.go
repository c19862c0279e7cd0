package bmpbridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/osrg/gobgp/v4/pkg/packet/bmp"

	"github.com/meshd/meshd/bmpbridge/decode"
	"github.com/meshd/meshd/bmpbridge/rib"
	"github.com/meshd/meshd/change"
)

// How routes leave the RIBs (what the leaves and events say):
//
//   - A Withdraw: one route event, counted in the view's withdrawals.
//   - Peer Down: every route of the peer is dropped at once, counted as
//     withdrawals of its views and in meshd_bmp_routes_cleared_total
//     {reason="peer_down"}; no event per route, the peer_down event
//     carries routes_cleared.
//   - BMP reconnect: the router re-sends every peer it has; a peer not
//     re-announced (Peer Up, routes or stats) within stale-timeout is
//     expired the same way ({reason="stale"}), with one peer_down event
//     (stale=true) and session-state IDLE.
//
// Pseudo-peers (Loc-RIB instance peers, RFC 9069 peer type 3, and peers
// with address 0.0.0.0 or ::, for which FRR 8.4 sends stats) are not BGP
// neighbors: nothing is written under either neighbor list for them.
// Their RIBs are kept (RouteCount, the gauge meshd_bmp_instance_routes
// {router, network_instance, rib}) and their events are sent with the
// field pseudo_peer=true. A router-level place in the model would hold
// their counters; see the package's report for the proposed change.

// routerState is what meshd holds for one router across its BMP sessions:
// the RIBs stay so that a full re-send after a reconnect is recognised.
type routerState struct {
	mu       sync.Mutex
	name     string
	in       *rib.Interner
	peers    map[decode.PeerKey]*peerState
	messages uint64
	errors   uint64
	sessions int

	lastMessages, lastErrors uint64
	lastTotal                int64

	// gen counts the router's BMP sessions; a peer seen in the current
	// session carries it. After a reconnect, peers still on an older gen
	// when sweepAt passes were not re-announced: the router no longer has
	// them, and their routes are cleared.
	gen     uint64
	sweepAt time.Time

	// localAS is the router's own AS per network instance, from its Peer
	// Ups (the local AS of a neighbor's session; RFC 9069's Loc-RIB
	// instance peer carries it as the peer AS): the origin of the routes
	// it originates itself, which carry an empty AS_PATH.
	localAS map[string]uint32
	// covering is scratch for origin checks.
	covering []*decode.Attrs
}

type peerState struct {
	ni, addr string
	// pseudo marks a peer that is no BGP neighbor: a Loc-RIB instance
	// (RFC 9069, peer type 3) or a per-instance peer with the unspecified
	// address (FRR sends stats for 0.0.0.0). Its RIB is kept and its
	// events sent, but it gets no neighbor entry in either model.
	pseudo bool
	gen    uint64
	// as is the AS in the peer's per-peer header.
	as uint32
	// prepended is "LOCAL PEER" for an eBGP neighbor: an AS_PATH received
	// from it that starts so has the router's own AS prepended by the
	// sender (FRR encodes monitored routes as it would send them on, see
	// the package doc); quirks are the sender quirks seen for the peer.
	prepended string
	quirks    quirk
	// preWritten: received-pre-policy leaves have been written.
	preWritten bool
	// inst is the BGP instance whose routes the peer's views hold, for
	// origin checks: ni, except for the Loc-RIB instance peer of the
	// global instance (RFC 9069, peer distinguisher 0), which gobgpd
	// names "global" (VRF/Table Name TLV) while its neighbors are in
	// "default".
	inst string
	// upGen is the router session gen of the last Peer Up; ports are the
	// BGP session's TCP ports from it.
	upGen      uint64
	localPort  uint16
	remotePort uint16
	up         bool
	upTime     time.Time
	upCount    uint64
	downCount  uint64
	// stateKnown: meshd has written a session state for the peer.
	stateKnown  bool
	histSeq     uint64
	views       map[string]*viewState
	afiCounts   map[string]bool // afi-safis written to the core
	statsSeen   map[uint16]bool
	countsDirty bool
}

type viewState struct {
	t *rib.Table
	// warmAt is when the initial table transfer counts as done (End-of-RIB
	// or originCheckDelay after the first route): only then is a new
	// more-specific prefix news rather than part of the dump.
	warmAt time.Time
	// famWarm is warmAt per AFI-SAFI, for origin checks: an End-of-RIB
	// ends one family's initial table (RFC 4724 2), and a router sends
	// its IPv6 table after its IPv4 End-of-RIB.
	famWarm                            []famWarm
	ann, wd, dup, origin, missing      uint64
	lastAnn, lastWd, lastDup, lastOrig uint64
	written                            bool
	// pathIDs are the ADD-PATH path IDs this view has carried (a few),
	// to match routes a speaker re-sends without them.
	pathIDs []uint32
}

const maxPathIDs = 8

type famWarm struct {
	afiSafi string
	at      time.Time
}

// warmAt returns where a family's warm time is kept, zero at first.
func (vs *viewState) famWarmAt(afiSafi string) *time.Time {
	for i := range vs.famWarm {
		if vs.famWarm[i].afiSafi == afiSafi {
			return &vs.famWarm[i].at
		}
	}
	vs.famWarm = append(vs.famWarm, famWarm{afiSafi: afiSafi})
	return &vs.famWarm[len(vs.famWarm)-1].at
}

// matchPathIDs gives routes decoded without the path IDs their session
// negotiated (gobgpd v4 re-sends pre-policy routes so after a BMP
// reconnect) the ID of the path the view holds for the prefix, so the
// re-send is recognised as such instead of adding a second path.
func (vs *viewState) matchPathIDs(nl []decode.NLRI) {
	for i := range nl {
		n := &nl[i]
		if n.PathID != 0 || vs.t.Has(n) {
			continue
		}
		c := *n
		for _, id := range vs.pathIDs {
			if c.PathID = id; vs.t.Has(&c) {
				n.PathID = id
				break
			}
		}
	}
}

func (vs *viewState) notePathID(id uint32) {
	if id == 0 || len(vs.pathIDs) >= maxPathIDs {
		return
	}
	for _, x := range vs.pathIDs {
		if x == id {
			return
		}
	}
	vs.pathIDs = append(vs.pathIDs, id)
}

func newRouterState(name string) *routerState {
	return &routerState{name: name, in: rib.NewInterner(), peers: map[decode.PeerKey]*peerState{}, localAS: map[string]uint32{}}
}

func (r *routerState) peer(p *decode.Peer) *peerState {
	ps := r.peers[p.Key]
	if ps == nil {
		ps = &peerState{ni: p.NetworkInstance, addr: p.Address, pseudo: isPseudo(p), views: map[string]*viewState{}, afiCounts: map[string]bool{}, statsSeen: map[uint16]bool{}}
		r.peers[p.Key] = ps
	}
	ps.gen = r.gen
	if p.AS != 0 {
		ps.as = p.AS
	}
	ps.inst = instanceOf(p)
	return ps
}

// instanceOf is the BGP instance of a peer's routes (peerState.inst).
func instanceOf(p *decode.Peer) string {
	if p.TypeCode == 3 && p.Key.RD == 0 {
		return "default"
	}
	return p.NetworkInstance
}

// restateOwnRoutes announces again, as route events, the routes of
// instance inst whose origin is the router's own AS and was not known
// when they came: an empty AS_PATH outside an Adj-RIB-In. FRR sends its
// own networks (post-policy, peer 0.0.0.0) as soon as bgpd starts,
// before any Peer Up has told meshd the router's AS, and sends them
// once; without this they stayed in bmp_route with origin_as 0.
func (s *session) restateOwnRoutes(inst string) {
	for _, ps := range s.r.peers {
		if ps.inst != inst {
			continue
		}
		for view, vs := range ps.views {
			if !ps.pseudo && (view == "ADJ_RIB_IN_PRE" || view == "ADJ_RIB_IN_POST") {
				continue
			}
			vs.t.Each(func(n *decode.NLRI, a *decode.Attrs) {
				if a == nil || a.OriginAS != 0 || a.ASPath != "" {
					return
				}
				s.event(change.Event{Time: s.now, NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventRoute, Route: s.route(ps, change.Announce, n, view, a)})
			})
		}
	}
}

// originOf is the origin AS of a route held in a view of peer ps: the
// last AS of its AS_PATH, or for an empty AS_PATH the AS that originated
// it without prepending: in an Adj-RIB-In, the peer's (an iBGP peer's
// own routes, or a route server's), elsewhere (Loc-RIB, Adj-RIB-Out,
// RFC 9069 and 8671) the router's own. 0 when that is not known.
func (r *routerState) originOf(ps *peerState, view string, a *decode.Attrs) uint32 {
	if a == nil {
		return 0
	}
	if a.OriginAS != 0 {
		return a.OriginAS
	}
	if a.ASPath != "" {
		// A path that ends in an AS_SET has no single origin.
		return 0
	}
	if !ps.pseudo && (view == "ADJ_RIB_IN_PRE" || view == "ADJ_RIB_IN_POST") {
		return ps.as
	}
	if as := r.localAS[ps.inst]; as != 0 {
		return as
	}
	if ps.pseudo {
		return ps.as // RFC 9069 4.1: the Loc-RIB instance peer's AS is the router's
	}
	return 0
}

// coveringOrigins finds the longest prefix covering n (a route just added
// to view of ps) in any RIB view of any peer of the router in the same
// BGP instance; with exact, only n's own prefix in the other views (the
// other paths for it). It returns the prefix length (-1 for none), the
// origins held for it, and where the first was found.
func (r *routerState) coveringOrigins(ps *peerState, view string, n *decode.NLRI, exact bool) (bits int, origins []uint32, where *peerState, whereView string) {
	bits = -1
	minBits := 0
	if exact {
		minBits = n.IP.Bits()
	}
	for _, qs := range r.peers {
		if qs.inst != ps.inst {
			continue
		}
		for qv, vs := range qs.views {
			own := qs == ps && qv == view
			if exact && (own || isRIBOut(view) || isRIBOut(qv)) {
				// An Adj-RIB-Out route is the Loc-RIB's after export
				// policy, which may rewrite the path (remove-private-as):
				// another origin there is policy, not another originator.
				continue
			}
			ids := vs.pathIDs
			if n.PathID != 0 && own {
				ids = []uint32{n.PathID}
			}
			l, as := vs.t.LongestCovering(n, ids, exact, max(bits, minBits), r.covering[:0])
			r.covering = as[:0]
			if l < 0 {
				continue
			}
			if l > bits {
				bits, origins, where, whereView = l, origins[:0], qs, qv
			}
			for _, a := range as {
				if o := r.originOf(qs, qv, a); o != 0 {
					origins = append(origins, o)
				}
			}
		}
	}
	return bits, origins, where, whereView
}

func isRIBOut(view string) bool { return view == "ADJ_RIB_OUT_PRE" || view == "ADJ_RIB_OUT_POST" }

// isPseudo tells a BMP peer that stands for the router itself (Loc-RIB
// instance, or the unspecified address) from a BGP neighbor.
func isPseudo(p *decode.Peer) bool {
	return p.TypeCode == 3 || p.Address == "0.0.0.0" || p.Address == "::" || p.Address == ""
}

func (r *routerState) view(ps *peerState, v string) *viewState {
	vs := ps.views[v]
	if vs == nil {
		vs = &viewState{t: rib.NewTable(r.in)}
		ps.views[v] = vs
	}
	return vs
}

// session is one BMP TCP connection.
type session struct {
	b       *Bridge
	conn    net.Conn
	addr    string
	log     *slog.Logger
	dec     *decode.Decoder
	r       *routerState
	changes []change.Change
	events  []change.Event
	now     time.Time
	badLogs int
	bad     int
	msgs    uint64
	// routeSlab hands out the Routes of route events: one allocation per
	// maxEventBatch routes instead of one per route. Routes handed out
	// are never touched again; the slab lives as long as any of them.
	routeSlab []change.Route
}

// originCheckDelay is how long after a view's first route meshd starts
// reporting new more-specifics with another origin, for routers that send
// no End-of-RIB over BMP.
const originCheckDelay = 30 * time.Second

const (
	maxEventBatch = 1024
	badLogLimit   = 5
)

// readBatch is a run of decoded messages the reader hands over in one
// channel send; batches go back to the reader to be reused.
type readBatch struct {
	msgs []decode.Message
	errs []error
}

const (
	readBatchSize = 256
	readBufSize   = 64 << 10
)

func (b *Bridge) serveConn(ctx context.Context, c net.Conn) {
	host := c.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	s := &session{b: b, conn: c, addr: host, log: b.log.With(slog.String("address", host)), dec: decode.NewDecoder(b.cfg.VRFs)}
	// Without route events the prefix text is needed only for the rare
	// origin-change event.
	s.dec.LazyPrefix = !*b.cfg.RouteEvents
	defer c.Close()

	// The reader frames and decodes messages (the decoder's state is its
	// own) and hands them in batches over a small channel to this
	// goroutine, which owns the router state: two stages, so two cores
	// share the work. When the core is slow the channel fills, the reader
	// stops reading and TCP flow control slows the router; nothing is
	// buffered without bound.
	frames := make(chan *readBatch, 4)
	free := make(chan *readBatch, 8)
	done := make(chan struct{})
	var readErr error
	go func() {
		defer close(frames)
		readErr = s.read(c, frames, free, done)
	}()
	defer close(done)

	tick := time.NewTicker(b.cfg.FlushInterval)
	defer tick.Stop()
loop:
	for {
		select {
		case rb, ok := <-frames:
			if !ok {
				break loop
			}
			keep := s.handleBatch(rb)
			select {
			case free <- rb:
			default:
			}
			if !keep {
				c.Close()
				for range frames { // let the reader finish
				}
				break loop
			}
		case <-tick.C:
			s.flush(true)
		case <-ctx.Done():
			c.Close()
			for range frames {
			}
			break loop
		}
	}
	switch {
	case readErr == nil || errors.Is(readErr, net.ErrClosed):
	case errors.Is(readErr, decode.ErrFraming):
		b.m.errors.WithLabelValues("framing").Inc()
		s.log.Warn("closing BMP session: stream cannot be framed", slog.String("router", s.name()), slog.Int64("offset", s.dec.Offset()) /* the reader has ended */, slog.Any("error", readErr))
		if s.r != nil {
			s.r.mu.Lock()
			s.r.errors++
			s.r.mu.Unlock()
		}
	default:
		s.log.Info("BMP session read ended", slog.String("router", s.name()), slog.Any("error", readErr))
	}
	s.end()
}

// read frames and decodes the stream until it ends or done closes. A
// batch goes out when it is full or when the next message is not yet
// buffered, so batching never holds a message back waiting for more.
func (s *session) read(c net.Conn, out chan<- *readBatch, free chan *readBatch, done <-chan struct{}) error {
	br := bufio.NewReaderSize(c, readBufSize)
	maxLen := s.b.cfg.MaxMessageSize
	var cur *readBatch
	send := func() bool {
		if cur == nil || len(cur.msgs) == 0 {
			return true
		}
		select {
		case out <- cur:
			cur = nil
			return true
		case <-done:
			return false
		}
	}
	for {
		if br.Buffered() < bmp.BMP_HEADER_SIZE && !send() {
			return nil
		}
		hdr, err := br.Peek(bmp.BMP_HEADER_SIZE)
		if err != nil {
			if errors.Is(err, io.EOF) {
				send()
				if len(hdr) == 0 {
					return nil
				}
				return fmt.Errorf("%w: stream ends inside a message (%d bytes left)", decode.ErrFraming, len(hdr))
			}
			send()
			return err
		}
		n, err := decode.FrameLength(hdr, maxLen)
		if err != nil {
			send()
			return err
		}
		if br.Buffered() < n && !send() {
			return nil
		}
		var raw []byte
		if n <= br.Size() {
			raw, err = br.Peek(n)
		} else {
			raw = make([]byte, n) // rare (large Route Mirroring): not kept
			_, err = io.ReadFull(br, raw)
		}
		if err != nil {
			send()
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: stream ends inside a message (%d bytes left)", decode.ErrFraming, br.Buffered())
			}
			return err
		}
		if cur == nil {
			select {
			case cur = <-free:
				cur.msgs, cur.errs = cur.msgs[:0], cur.errs[:0]
			default:
				cur = &readBatch{msgs: make([]decode.Message, 0, readBatchSize), errs: make([]error, 0, readBatchSize)}
			}
		}
		cur.msgs = cur.msgs[:len(cur.msgs)+1]
		cur.errs = append(cur.errs, s.dec.DecodeInto(&cur.msgs[len(cur.msgs)-1], raw))
		if n <= br.Size() {
			_, _ = br.Discard(n)
		}
		if len(cur.msgs) == cap(cur.msgs) && !send() {
			return nil
		}
	}
}

// handleBatch handles a reader batch; false closes the session.
func (s *session) handleBatch(rb *readBatch) bool {
	s.now = time.Now()
	for i := range rb.msgs {
		if !s.handle(&rb.msgs[i], rb.errs[i]) {
			return false
		}
	}
	return true
}

func (s *session) name() string {
	if s.r == nil {
		return ""
	}
	return s.r.name
}

// handle processes one framed message; false closes the session.
func (s *session) handle(m *decode.Message, err error) bool {
	if int(m.TypeCode) < len(s.b.m.byType) {
		s.b.m.byType[m.TypeCode].Inc()
	} else {
		s.b.m.messages.WithLabelValues(m.Type).Inc()
	}
	s.msgs++
	if s.r == nil {
		if err != nil || m.Initiation == nil {
			s.b.m.errors.WithLabelValues("no_initiation").Inc()
			s.log.Warn("closing BMP session: first message is not an Initiation", slog.String("type", m.Type), slog.Any("error", err))
			return false
		}
		s.start(m.Initiation)
		return true
	}
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	r.messages++
	if err != nil {
		r.errors++
		s.bad++
		s.b.m.errors.WithLabelValues("malformed").Inc()
		if s.badLogs < badLogLimit {
			s.badLogs++
			s.log.Warn("malformed BMP message skipped", slog.String("router", r.name), slog.String("type", m.Type), slog.Int64("offset", m.Offset), slog.Any("error", err))
		}
		return true
	}
	keep := true
	switch {
	case m.Initiation != nil:
		s.routerLeaves(m.Initiation)
	case m.PeerUp != nil:
		s.peerUp(m)
	case m.PeerDown != nil:
		s.peerDown(m)
	case m.Update != nil:
		if m.AddPathAbsent {
			s.b.m.errors.WithLabelValues("add_path_absent").Inc()
		}
		s.routes(m)
	case m.Stats != nil:
		s.stats(m)
	case m.Termination != nil:
		s.b.m.terminations.WithLabelValues(strconv.Itoa(int(m.Termination.ReasonCode))).Inc()
		s.log.Info("BMP Termination", slog.String("router", r.name), slog.Int("reason_code", int(m.Termination.ReasonCode)), slog.String("reason", m.Termination.Reason), slog.Any("info", m.Termination.Strings))
		s.set(change.MeshdRouterPath("last-termination-reason"), change.String(m.Termination.Reason))
		// The Termination is the router's last word (RFC 7854 4.5): close
		// our end too, rather than leave bmp-connected true for as long as
		// a router that sent it keeps the TCP connection open.
		keep = false
	case m.Mirroring != nil:
		s.b.m.mirrored.Inc()
	}
	if len(s.changes) > 0 || len(s.events) >= maxEventBatch {
		s.flushLocked(false)
	}
	return keep
}

func (s *session) start(in *decode.Initiation) {
	name := s.b.routerName(in.SysName, s.addr)
	s.r = s.b.router(name)
	s.b.mu.Lock()
	if _, ok := s.b.conns[s.conn]; ok {
		s.b.conns[s.conn] = name
	}
	s.b.mu.Unlock()
	s.log = s.log.With(slog.String("router", name))
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.sessions++
	s.r.gen++
	if len(s.r.peers) > 0 {
		// A reconnect: the router re-sends every peer it has; those it
		// does not by the deadline are gone.
		s.r.sweepAt = s.now.Add(s.b.cfg.StaleTimeout)
	}
	if s.r.sessions > 1 {
		s.log.Warn("router has another BMP session open", slog.Int("sessions", s.r.sessions))
	}
	s.r.messages++
	s.log.Info("BMP session up", slog.String("sys_name", in.SysName), slog.String("sys_descr", in.SysDescr))
	s.set(change.MeshdRouterPath("name"), change.String(name))
	s.set(change.MeshdRouterPath("bmp-address"), change.String(s.addr))
	s.set(change.MeshdRouterPath("bmp-connected"), change.Bool(true))
	s.routerLeaves(in)
	s.event(change.Event{Kind: change.EventRouterUp, Fields: map[string]any{"sys_name": in.SysName, "sys_descr": in.SysDescr, "address": s.addr}})
	s.flushLocked(false)
}

func (s *session) routerLeaves(in *decode.Initiation) {
	if in.SysName != "" {
		s.set(change.MeshdRouterPath("sys-name"), change.String(in.SysName))
	}
	if in.SysDescr != "" {
		s.set(change.MeshdRouterPath("sys-descr"), change.String(in.SysDescr))
	}
}

// end finishes a session: last counters, bmp-connected false, and the
// core told that BMP's values for this router are no longer live.
func (s *session) end() {
	if s.r == nil {
		return
	}
	r := s.r
	r.mu.Lock()
	r.sessions--
	s.set(change.MeshdRouterPath("bmp-connected"), change.Bool(false))
	s.event(change.Event{Kind: change.EventRouterDown, Fields: map[string]any{"address": s.addr, "messages": int64(s.msgs), "errors": int64(s.bad)}})
	s.flushLocked(true)
	last := r.sessions == 0
	r.mu.Unlock()
	if last {
		s.b.core.ReleaseSource(r.name, change.SourceBMP)
	}
	if s.bad > 0 {
		s.log.Warn("BMP session had malformed messages", slog.Int("malformed", s.bad), slog.Uint64("messages", s.msgs))
	}
	s.log.Info("BMP session down", slog.Uint64("messages", s.msgs))
}

func (s *session) set(p *gpb.Path, v *gpb.TypedValue) {
	s.changes = append(s.changes, change.Change{Router: s.r.name, Path: p, Value: v, Time: s.now, Source: change.SourceBMP})
}

// setList sets a leaf-list, deleting it when empty: the schema refuses
// an empty leaf-list value.
func (s *session) setList(p *gpb.Path, ss []string) {
	if len(ss) == 0 {
		s.del(p)
		return
	}
	s.set(p, change.StringList(ss))
}

func (s *session) del(p *gpb.Path) {
	s.changes = append(s.changes, change.Change{Router: s.r.name, Path: p, Time: s.now, Source: change.SourceBMP})
}

func (s *session) event(e change.Event) {
	e.Router = s.r.name
	e.Source = change.SourceBMP
	if e.Time.IsZero() {
		e.Time = s.now
	}
	s.events = append(s.events, e)
}

func (s *session) flush(counters bool) {
	if s.r == nil {
		return
	}
	s.r.mu.Lock()
	s.now = time.Now()
	s.flushLocked(counters)
	s.r.mu.Unlock()
}

// flushLocked hands pending changes and events to the core; with counters
// it first adds the route counters that changed since the last time.
func (s *session) flushLocked(counters bool) {
	if counters {
		s.sweep()
		s.counterChanges()
	}
	if len(s.changes) == 0 && len(s.events) == 0 {
		return
	}
	if len(s.changes) == 0 {
		s.b.core.Emit(s.events...)
	} else {
		res := s.b.core.Apply(s.changes, s.events...)
		if res.Invalid > 0 {
			s.b.m.invalid.Add(float64(res.Invalid))
			s.log.Warn("merge core refused BMP changes", slog.Int("invalid", res.Invalid), slog.Any("error", res.Err))
		}
	}
	s.changes = s.changes[:0]
	// Events were handed over; the core's subscribers may hold the slice.
	s.events = nil
}

// keyed sets a list key on the named element of p.
func keyed(p *gpb.Path, elem, key, val string) *gpb.Path {
	for _, e := range p.Elem {
		if e.Name == elem {
			e.Key = map[string]string{key: val}
		}
	}
	return p
}

func (s *session) peerUp(m *decode.Message) {
	p, u := m.Peer, m.PeerUp
	r := s.r
	ps := r.peer(p)
	ps.ni = p.NetworkInstance
	// A Peer Up for a session already known up is a re-send after a BMP
	// reconnect, not a new establishment, when it has the same time, or
	// when it is the first of this BMP session and has the same TCP ports
	// (gobgpd stamps re-sends with the time of sending; a re-established
	// BGP session has a new ephemeral port).
	resend := ps.up && (ps.upTime.Equal(m.Time) ||
		(ps.upGen != r.gen && ps.localPort == u.LocalPort && ps.remotePort == u.RemotePort))
	ps.up = true
	ps.upTime = m.Time
	ps.upGen = r.gen
	ps.localPort, ps.remotePort = u.LocalPort, u.RemotePort
	ni, addr := ps.ni, ps.addr
	ps.inst = instanceOf(p)
	ps.prepended = ""
	if !ps.pseudo && u.LocalAS != 0 && u.PeerAS != 0 && u.LocalAS != u.PeerAS {
		ps.prepended = strconv.FormatUint(uint64(u.LocalAS), 10) + " " + strconv.FormatUint(uint64(u.PeerAS), 10)
	}
	switch {
	case !ps.pseudo && u.LocalAS != 0 && r.localAS[ps.inst] != u.LocalAS:
		r.localAS[ps.inst] = u.LocalAS
		s.restateOwnRoutes(ps.inst)
	case p.TypeCode == 3 && p.AS != 0 && r.localAS[ps.inst] == 0:
		r.localAS[ps.inst] = p.AS // RFC 9069 4.1
		s.restateOwnRoutes(ps.inst)
	}
	ts := m.Time
	if ts.IsZero() {
		ts = s.now
	}
	if !resend {
		ps.upCount++
	}
	if ps.pseudo {
		if !resend {
			s.event(change.Event{Time: ts, NetworkInstance: ni, Neighbor: addr, Kind: change.EventPeerUp, Fields: map[string]any{
				"peer_type": p.Type, "rib": p.RIB, "table_name": u.TableName, "pseudo_peer": true,
			}})
		}
		return
	}
	ps.stateKnown = true
	np := func(e ...string) *gpb.Path { return change.NeighborPath(ni, addr, e...) }
	s.set(np("state", "session-state"), change.String("ESTABLISHED"))
	s.set(np("state", "peer-as"), change.Uint(uint64(u.PeerAS)))
	s.set(np("state", "local-as"), change.Uint(uint64(u.LocalAS)))
	s.set(np("state", "last-established"), change.Uint(uint64(ts.UnixNano())))
	s.set(np("state", "established-transitions"), change.Uint(ps.upCount))
	s.setList(np("state", "supported-capabilities"), u.OCCapabilities)
	s.set(np("timers", "state", "hold-time"), change.Uint(uint64(u.Sent.HoldTime)))
	s.set(np("timers", "state", "negotiated-hold-time"), change.Uint(uint64(u.NegotiatedHoldTime)))

	bp := func(e ...string) *gpb.Path {
		return change.MeshdNeighborPath(ni, addr, append([]string{"bmp", "state"}, e...)...)
	}
	s.set(bp("peer-type"), change.String(p.Type))
	if p.Distinguisher != "" {
		s.set(bp("peer-distinguisher"), change.String(p.Distinguisher))
	}
	if p.BGPID != "" {
		s.set(bp("peer-bgp-id"), change.String(p.BGPID))
	}
	if u.Sent.BGPID != "" {
		s.set(bp("local-bgp-id"), change.String(u.Sent.BGPID))
	}
	if u.LocalAddress != "" {
		s.set(bp("local-address"), change.String(u.LocalAddress))
	}
	s.set(bp("local-port"), change.Uint(uint64(u.LocalPort)))
	s.set(bp("remote-port"), change.Uint(uint64(u.RemotePort)))
	s.set(bp("sent-hold-time"), change.Uint(uint64(u.Sent.HoldTime)))
	s.set(bp("received-hold-time"), change.Uint(uint64(u.Received.HoldTime)))
	s.setList(bp("capabilities"), u.Capabilities)
	s.setList(bp("add-path"), u.AddPathIn)
	s.set(bp("four-octet-as"), change.Bool(u.FourOctetAS))
	s.set(bp("up-count"), change.Uint(ps.upCount))
	s.set(bp("last-up"), change.Uint(uint64(ts.UnixNano())))
	if resend {
		return
	}
	s.history(ps, "UP", ts, nil)
	s.event(change.Event{Time: ts, NetworkInstance: ni, Neighbor: addr, Kind: change.EventPeerUp, Fields: map[string]any{
		"peer_as": int64(u.PeerAS), "local_as": int64(u.LocalAS), "peer_type": p.Type, "rib": p.RIB,
		"capabilities": joinComma(u.Capabilities), "add_path": joinComma(u.AddPathIn), "hold_time": int64(u.NegotiatedHoldTime),
		"local_address": u.LocalAddress, "four_octet_as": u.FourOctetAS,
	}})
	for _, o := range []struct {
		dir string
		o   *decode.Open
	}{{"sent", u.Sent}, {"received", u.Received}} {
		s.event(change.Event{Time: ts, NetworkInstance: ni, Neighbor: addr, Kind: change.EventMessage, Fields: map[string]any{
			"type": "OPEN", "direction": o.dir, "as": int64(o.o.AS), "hold_time": int64(o.o.HoldTime), "bgp_id": o.o.BGPID,
			"capabilities": joinComma(o.o.Capabilities), "families": joinComma(o.o.Families),
		}})
	}
}

// maxClockSkew is how far in the future a router's timestamp may be
// before meshd takes its own receive time instead.
const maxClockSkew = time.Minute

// eventTime is the time meshd stamps on something a router reports at
// ts: ts itself when it is plausible, else the receive time. A time is
// implausible when it is zero, later than now by more than maxClockSkew,
// or earlier than notBefore, what meshd already knows happened before
// it (the peer's last Peer Up for a Peer Down). FRR stamps a Peer Down
// with the peer's last state change, which for a peer never up is the
// router's boot (monotonic zero).
func eventTime(ts, notBefore, now time.Time) time.Time {
	if ts.IsZero() || ts.Before(notBefore) || ts.After(now.Add(maxClockSkew)) {
		return now
	}
	return ts
}

func (s *session) peerDown(m *decode.Message) {
	p, d := m.Peer, m.PeerDown
	ps := s.r.peer(p)
	ni, addr := ps.ni, ps.addr
	if !ps.up {
		s.peerDownNotUp(m, ps)
		return
	}
	ps.up = false
	ps.downCount++
	ts := eventTime(m.Time, ps.upTime, s.now)
	// The peer's routes are gone with the session: counted as
	// withdrawals, one withdraw route event each, and their number on
	// the peer_down event.
	cleared := s.clearPeer(ps, "peer_down", ts)
	if ps.pseudo {
		s.event(change.Event{Time: ts, NetworkInstance: ni, Neighbor: addr, Kind: change.EventPeerDown, Fields: map[string]any{
			"reason_code": int64(d.ReasonCode), "reason": d.Reason, "peer_type": p.Type, "pseudo_peer": true, "routes_cleared": int64(cleared),
		}})
		return
	}
	ps.stateKnown = true
	s.set(change.NeighborPath(ni, addr, "state", "session-state"), change.String(downState(d.ReasonCode)))

	bp := func(e ...string) *gpb.Path {
		return change.MeshdNeighborPath(ni, addr, append([]string{"bmp", "state"}, e...)...)
	}
	s.set(bp("down-count"), change.Uint(ps.downCount))
	s.set(bp("last-down"), change.Uint(uint64(ts.UnixNano())))
	s.set(bp("last-down-reason-code"), change.Uint(uint64(d.ReasonCode)))
	reason := d.Reason
	fields := map[string]any{"reason_code": int64(d.ReasonCode), "reason": d.Reason, "peer_type": p.Type, "routes_cleared": int64(cleared)}
	if n := d.Notification; n != nil {
		reason += ": " + n.CodeName + " / " + n.SubcodeName
		if n.Data != "" && n.Code == 6 {
			reason += " (" + n.Data + ")"
		}
		s.set(bp("last-notification-code"), change.Uint(uint64(n.Code)))
		s.set(bp("last-notification-subcode"), change.Uint(uint64(n.Subcode)))
		fields["notification_code"] = int64(n.Code)
		fields["notification_subcode"] = int64(n.Subcode)
		fields["notification"] = n.CodeName
		fields["notification_subcode_name"] = n.SubcodeName
		dir := "received"
		if d.ReasonCode == 1 {
			dir = "sent"
		}
		s.event(change.Event{Time: ts, NetworkInstance: ni, Neighbor: addr, Kind: change.EventMessage, Fields: map[string]any{
			"type": "NOTIFICATION", "direction": dir, "code": int64(n.Code), "subcode": int64(n.Subcode),
			"code_name": n.CodeName, "subcode_name": n.SubcodeName, "data": n.Data,
		}})
	}
	if d.FSMEvent != 0 {
		fields["fsm_event"] = int64(d.FSMEvent)
	}
	s.set(bp("last-down-reason"), change.String(reason))
	s.history(ps, "DOWN", ts, d)
	s.event(change.Event{Time: ts, NetworkInstance: ni, Neighbor: addr, Kind: change.EventPeerDown, Fields: fields})
}

// peerDownNotUp handles a Peer Down for a peer meshd does not hold up:
// never seen up, or already down. It is no session going down. FRR 8.4
// sends one on every backward FSM transition (bgp_bmp.c hooks
// peer_backward_transition), so a neighbor that keeps failing to connect
// sends one per attempt, and one for each neighbor not established when
// a BMP session starts (bmp_send_peerup sends the state of every peer).
// Counting those as downs inflated down-count, the history and the
// peer_down events (issue 14: 58 downs for 2 real ones). They are
// counted in meshd_bmp_peer_downs_ignored_total; a neighbor meshd never
// had a state for gets the state the Peer Down implies, as the router
// does know the neighbor is configured and not established.
func (s *session) peerDownNotUp(m *decode.Message, ps *peerState) {
	reason := "already_down"
	if ps.upCount == 0 {
		reason = "never_up"
	}
	s.b.m.ignoredDowns[reason].Inc()
	// A peer not up holds no routes; should a sender have sent some
	// anyway, they are gone now.
	for _, vs := range ps.views {
		if vs.t.Len() > 0 {
			s.clearPeer(ps, "peer_down", eventTime(m.Time, ps.upTime, s.now))
			break
		}
	}
	if ps.pseudo || ps.stateKnown {
		return
	}
	ps.stateKnown = true
	s.set(change.NeighborPath(ps.ni, ps.addr, "state", "session-state"), change.String(downState(m.PeerDown.ReasonCode)))
	if m.Peer.AS != 0 {
		s.set(change.NeighborPath(ps.ni, ps.addr, "state", "peer-as"), change.Uint(uint64(m.Peer.AS)))
	}
}

// downState is the session state after a Peer Down with this reason.
func downState(code uint8) string {
	if code == 2 || code == 4 {
		// Closed without a NOTIFICATION: the speaker goes back to
		// trying to connect.
		return "ACTIVE"
	}
	return "IDLE"
}

// clearPeer drops every route of a peer, counting them as withdrawals of
// their views and in meshd_bmp_routes_cleared_total; it returns how many.
// Each route also goes out as a withdraw route event stamped ts: the
// session that held them is gone (RFC 7854 4.9 ends the peer's
// Adj-RIB-In with it), and a store of route events that keeps the last
// action per route (bmp_route in InfluxDB) would otherwise show them
// announced for good.
func (s *session) clearPeer(ps *peerState, reason string, ts time.Time) int {
	n := 0
	for view, vs := range ps.views {
		k := vs.t.Len()
		vs.wd += uint64(k)
		n += k
		vs.t.Each(func(nl *decode.NLRI, a *decode.Attrs) {
			s.event(change.Event{Time: ts, NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventRoute, Route: s.route(ps, change.Withdraw, nl, view, a)})
		})
		vs.t.Clear()
	}
	if n > 0 {
		s.b.m.cleared.WithLabelValues(reason).Add(float64(n))
	}
	ps.countsDirty = true
	return n
}

// sweep expires the peers a reconnected router did not re-announce in
// time: their routes are cleared (counted) and one peer_down event per
// peer says so. Non-pseudo peers that were up go to IDLE: the router's
// re-send is the full list of its established sessions.
func (s *session) sweep() {
	r := s.r
	if r.sweepAt.IsZero() || s.now.Before(r.sweepAt) {
		return
	}
	r.sweepAt = time.Time{}
	var peers, routes int
	for k, ps := range r.peers {
		if ps.gen == r.gen {
			continue
		}
		n := s.clearPeer(ps, "stale", s.now)
		if !ps.up && n == 0 {
			// Already down and holding nothing: no news, and no
			// second peer_down for the same down.
			delete(r.peers, k)
			continue
		}
		peers++
		routes += n
		if !ps.pseudo && ps.up {
			s.set(change.NeighborPath(ps.ni, ps.addr, "state", "session-state"), change.String("IDLE"))
		}
		ps.up = false
		s.event(change.Event{NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventPeerDown, Fields: map[string]any{
			"reason": "not re-announced after the BMP session restarted", "stale": true, "pseudo_peer": ps.pseudo, "routes_cleared": int64(n),
		}})
		if n == 0 || ps.pseudo {
			// Nothing left to report for it: forget it, so a peer that
			// comes back starts afresh.
			delete(r.peers, k)
		}
	}
	if peers > 0 {
		s.log.Info("expired peers not re-announced after BMP reconnect", slog.Int("peers", peers), slog.Int("routes", routes))
	}
}

func (s *session) history(ps *peerState, kind string, ts time.Time, d *decode.PeerDown) {
	if ps.pseudo {
		return
	}
	ps.histSeq++
	seq := strconv.FormatUint(ps.histSeq, 10)
	hp := func(leaf string) *gpb.Path {
		return keyed(change.MeshdNeighborPath(ps.ni, ps.addr, "bmp", "history", "event", "state", leaf), "event", "sequence", seq)
	}
	s.set(hp("sequence"), change.Uint(ps.histSeq))
	s.set(hp("time"), change.Uint(uint64(ts.UnixNano())))
	s.set(hp("kind"), change.String(kind))
	if d != nil {
		s.set(hp("reason-code"), change.Uint(uint64(d.ReasonCode)))
		s.set(hp("reason"), change.String(d.Reason))
	}
	if n := uint64(s.b.cfg.History); ps.histSeq > n {
		old := strconv.FormatUint(ps.histSeq-n, 10)
		s.del(keyed(change.MeshdNeighborPath(ps.ni, ps.addr, "bmp", "history", "event"), "event", "sequence", old))
	}
}

func (s *session) stats(m *decode.Message) {
	ps := s.r.peer(m.Peer)
	if ps.pseudo {
		// Instance-level stats (FRR reports them for 0.0.0.0): an event
		// only, as the model has no router-level stats list.
		fields := map[string]any{"peer_type": m.Peer.Type, "rib": m.Peer.RIB, "pseudo_peer": true}
		for _, st := range m.Stats {
			k := st.Name
			if st.AfiSafi != "" {
				k += "." + st.AfiSafi
			}
			fields[k] = int64(st.Value)
		}
		s.event(change.Event{NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventStats, Fields: fields})
		return
	}
	sums := map[uint16]uint64{}
	var order []uint16
	fields := map[string]any{"peer_type": m.Peer.Type, "rib": m.Peer.RIB}
	for _, st := range m.Stats {
		if _, ok := sums[st.Type]; !ok {
			order = append(order, st.Type)
		}
		sums[st.Type] += st.Value
		k := st.Name
		if st.AfiSafi != "" {
			k += "." + st.AfiSafi
		}
		fields[k] = int64(st.Value)
	}
	for _, t := range order {
		ts := strconv.Itoa(int(t))
		cp := func(leaf string) *gpb.Path {
			return keyed(change.MeshdNeighborPath(ps.ni, ps.addr, "bmp", "stats", "counter", "state", leaf), "counter", "type", ts)
		}
		if !ps.statsSeen[t] {
			ps.statsSeen[t] = true
			s.set(cp("type"), change.Uint(uint64(t)))
			s.set(cp("name"), change.String(decode.StatName(t)))
		}
		s.set(cp("value"), change.Uint(sums[t]))
		s.set(cp("last-report"), change.Uint(uint64(s.now.UnixNano())))
	}
	s.event(change.Event{NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventStats, Fields: fields})
}

func (s *session) routes(m *decode.Message) {
	u := m.Update
	for _, sk := range u.Skipped {
		s.b.m.skipped.WithLabelValues(skippedLabel(sk.AfiSafi)).Inc()
	}
	if u.EndOfRIB != "" {
		vs := s.r.view(s.r.peer(m.Peer), m.Peer.RIB)
		if vs.warmAt.IsZero() || vs.warmAt.After(s.now) {
			vs.warmAt = s.now
		}
		if w := vs.famWarmAt(u.EndOfRIB); w.IsZero() || w.After(s.now) {
			*w = s.now
		}
	}
	if len(u.Announce) == 0 && len(u.Withdraw) == 0 {
		return
	}
	ps := s.r.peer(m.Peer)
	vs := s.r.view(ps, m.Peer.RIB)
	if vs.warmAt.IsZero() {
		vs.warmAt = s.now.Add(originCheckDelay)
	}
	warm, warmFam := false, ""
	ps.countsDirty = true
	if m.AddPathAbsent && len(vs.pathIDs) > 0 {
		vs.matchPathIDs(u.Withdraw)
		vs.matchPathIDs(u.Announce)
	}
	withEvents := *s.b.cfg.RouteEvents
	if withEvents && s.events == nil {
		// Sized once per batch: growing it route by route costs more.
		s.events = make([]change.Event, 0, maxEventBatch)
	}
	ts := m.Time
	if ts.IsZero() {
		ts = s.now
	}
	var nAnn, nWd, nDup, nMiss, nOrig int
	pre := m.Peer.RIB == "ADJ_RIB_IN_PRE"
	for i := range u.Withdraw {
		n := &u.Withdraw[i]
		o, old := vs.t.Withdraw(n)
		if o == rib.Missing {
			if pre && s.fabricatedWithdraw(ps, n) {
				continue
			}
			nMiss++
			continue
		}
		nWd++
		if withEvents {
			s.event(change.Event{Time: ts, NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventRoute, Route: s.route(ps, change.Withdraw, n, m.Peer.RIB, old)})
		}
	}
	for i := range u.Announce {
		n := &u.Announce[i]
		if n.PathID != 0 {
			vs.notePathID(n.PathID)
		}
		o, old := vs.t.Announce(n, u.Attrs)
		switch o {
		case rib.Duplicate:
			nDup++
			continue
		case rib.Changed:
			if was, now := s.r.originOf(ps, m.Peer.RIB, old), s.r.originOf(ps, m.Peer.RIB, u.Attrs); was != 0 && now != 0 && was != now {
				nOrig++
				s.event(change.Event{Time: ts, NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventOriginChange, Fields: map[string]any{
					"afi_safi": n.AfiSafi, "rib": m.Peer.RIB, "prefix": n.Text(), "old_origin_as": int64(was), "new_origin_as": int64(now),
				}})
			}
		case rib.Added:
			if pre && ps.quirks&quirkNoPrePolicy != 0 {
				// The sender now keeps an Adj-RIB-In after all.
				ps.quirks &^= quirkNoPrePolicy
			}
			if n.AfiSafi != warmFam || warmFam == "" {
				w := vs.famWarmAt(n.AfiSafi)
				if w.IsZero() {
					*w = s.now.Add(originCheckDelay)
				}
				warm, warmFam = !s.now.Before(*w), n.AfiSafi
			}
			if warm && s.originCheck(ps, m.Peer.RIB, n, u.Attrs, ts) {
				nOrig++
			}
		}
		nAnn++
		if withEvents {
			s.event(change.Event{Time: ts, NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventRoute, Route: s.route(ps, change.Announce, n, m.Peer.RIB, u.Attrs)})
		}
	}
	vs.ann += uint64(nAnn)
	vs.wd += uint64(nWd)
	vs.dup += uint64(nDup)
	vs.origin += uint64(nOrig)
	vs.missing += uint64(nMiss)
	met := &s.b.m.outcomes
	for i, n := range [...]int{nAnn, nWd, nDup, nMiss, nOrig} {
		if n > 0 {
			met[i].Add(float64(n))
		}
	}
}

// originCheck reports a route just added (n with attributes a, in view
// of ps) whose origin differs from every origin of the longest prefix
// covering it, anywhere in the router's RIB views: a more-specific of
// another origin (a hijack, in the lab's fault), or the same prefix from
// another origin (MOAS). Looking in every view is what makes the router
// that originates the covering prefix itself see it: its own route is in
// its Loc-RIB (or Adj-RIB-Out), the hijacker's in an Adj-RIB-In.
func (s *session) originCheck(ps *peerState, view string, n *decode.NLRI, a *decode.Attrs, ts time.Time) bool {
	o := s.r.originOf(ps, view, a)
	if o == 0 {
		return false
	}
	// The same prefix from another origin elsewhere (MOAS) is news; the
	// same prefix from the same origin is the same route in another view,
	// and the covering prefix decides.
	bits, origins, where, whereView := s.r.coveringOrigins(ps, view, n, true)
	other := slices.IndexFunc(origins, func(c uint32) bool { return c != o })
	if other < 0 {
		bits, origins, where, whereView = s.r.coveringOrigins(ps, view, n, false)
		if bits < 0 || len(origins) == 0 || slices.Contains(origins, o) {
			return false
		}
		other = 0
	}
	fields := map[string]any{
		"afi_safi": n.AfiSafi, "rib": view, "prefix": n.Text(), "old_origin_as": int64(origins[other]), "new_origin_as": int64(o),
		"covering_rib": whereView,
	}
	if bits < n.IP.Bits() {
		p, _ := n.IP.Addr().Prefix(bits)
		fields["more_specific_of"] = p.String()
	}
	if where != ps {
		fields["covering_neighbor"] = where.addr
		if where.pseudo {
			fields["covering_pseudo_peer"] = true
		}
	}
	s.event(change.Event{Time: ts, NetworkInstance: ps.ni, Neighbor: ps.addr, Kind: change.EventOriginChange, Fields: fields})
	return true
}

// fabricatedWithdraw tells whether a pre-policy withdraw of a route the
// pre-policy view does not hold is the sender saying it has no
// Adj-RIB-In: the peer's post-policy view holds the route, which a real
// Adj-RIB-In would then hold too (post-policy routes are pre-policy
// routes that passed the import policy). FRR without
// soft-reconfiguration inbound sends such a withdraw after every
// post-policy announce (FRR issue 10240).
//
// Without a post-policy view (pre-policy monitoring alone, as the lab's
// IPv6), a withdraw into a pre-policy view that has never held a route
// tells the same: a sender with an Adj-RIB-In sends its routes in the BMP
// session's initial table, before any withdraw of them. (Not with a
// post-policy view: FRR with soft-reconfiguration inbound sends a
// pre-policy withdraw for a route its import policy denies, though its
// Adj-RIB-In holds it. Should a first route be denied so, the first
// pre-policy announce clears the verdict.)
func (s *session) fabricatedWithdraw(ps *peerState, n *decode.NLRI) bool {
	if ps.quirks&quirkNoPrePolicy != 0 {
		return true
	}
	post := ps.views["ADJ_RIB_IN_POST"]
	pre := ps.views["ADJ_RIB_IN_PRE"]
	if (post == nil && pre != nil && pre.ann == 0 && pre.t.Len() == 0) || (post != nil && post.t.Has(n)) {
		s.noteQuirk(ps, quirkNoPrePolicy)
		ps.countsDirty = true
		return true
	}
	return false
}

// noPrePolicy tells whether the peer's pre-policy feed carries nothing
// while its post-policy one has routes: the pre-policy view has never
// held a route though its table transfer is done. Then the sender keeps
// no Adj-RIB-In (FRR's initial sync sends only post-policy routes for a
// neighbor without soft-reconfiguration inbound).
func (s *session) noPrePolicy(ps *peerState) bool {
	if ps.quirks&quirkNoPrePolicy != 0 {
		return true
	}
	pre, post := ps.views["ADJ_RIB_IN_PRE"], ps.views["ADJ_RIB_IN_POST"]
	if pre == nil || post == nil || pre.ann > 0 || pre.t.Len() > 0 || post.t.Len() == 0 || pre.warmAt.IsZero() || s.now.Before(pre.warmAt) {
		return false
	}
	s.noteQuirk(ps, quirkNoPrePolicy)
	return true
}

// quirk is a sender behaviour meshd corrects for or distrusts.
type quirk uint8

const (
	// quirkLocalASPrepended: Adj-RIB-In AS_PATHs start with the router's
	// own AS (FRR 8.4).
	quirkLocalASPrepended quirk = 1 << iota
	// quirkNoPrePolicy: the pre-policy feed is withdraws only, as FRR's
	// is for a neighbor without soft-reconfiguration inbound.
	quirkNoPrePolicy
)

var quirkNames = map[quirk]string{quirkLocalASPrepended: "local_as_prepended", quirkNoPrePolicy: "pre_policy_without_adj_rib_in"}

// noteQuirk records a sender quirk once per peer: counted, logged once.
func (s *session) noteQuirk(ps *peerState, q quirk) {
	if ps.quirks&q != 0 {
		return
	}
	ps.quirks |= q
	s.b.m.quirks[quirkNames[q]].Inc()
	s.log.Info("BMP sender quirk", slog.String("quirk", quirkNames[q]), slog.String("network_instance", ps.ni), slog.String("neighbor", ps.addr))
}

// asPath is the AS_PATH of a route as the neighbor sent it: in an
// Adj-RIB-In or the Loc-RIB, a path that starts with the router's own AS
// and then the eBGP neighbor's is the sender's outbound encoding (FRR 8.4
// prepends its AS, bgp_bmp.c bmp_update calling bgp_packet_attribute);
// the leading AS is dropped. Adj-RIB-Out paths are kept as they are:
// there the prepend is what goes on the wire (RFC 8671).
func (s *session) asPath(ps *peerState, view string, at *decode.Attrs) string {
	p := at.ASPath
	if ps.prepended == "" || len(p) < len(ps.prepended) || p[:len(ps.prepended)] != ps.prepended ||
		(len(p) > len(ps.prepended) && p[len(ps.prepended)] != ' ') {
		return p
	}
	switch view {
	case "ADJ_RIB_IN_PRE", "ADJ_RIB_IN_POST", "LOC_RIB":
	default:
		return p
	}
	s.noteQuirk(ps, quirkLocalASPrepended)
	return p[strings.IndexByte(p, ' ')+1:]
}

func (s *session) route(ps *peerState, a change.RouteAction, n *decode.NLRI, view string, at *decode.Attrs) *change.Route {
	if len(s.routeSlab) == cap(s.routeSlab) {
		s.routeSlab = make([]change.Route, 0, maxEventBatch)
	}
	s.routeSlab = s.routeSlab[:len(s.routeSlab)+1]
	r := &s.routeSlab[len(s.routeSlab)-1]
	*r = change.Route{Action: a, AfiSafi: n.AfiSafi, RIB: view, Prefix: n.Text(), PathID: n.PathID}
	if at != nil {
		r.OriginAS = s.r.originOf(ps, view, at)
		r.ASPath = s.asPath(ps, view, at)
		r.NextHop = at.NextHop
		r.MED = at.MED
		r.LocalPref = at.LocalPref
		r.Communities = at.Communities
		r.ExtCommunities = at.ExtCommunities
		r.LargeCommunities = at.LargeCommunities
	}
	return r
}

// counterChanges writes the route counters of peers whose RIBs changed.
func (s *session) counterChanges() {
	r := s.r
	if r.messages != r.lastMessages {
		r.lastMessages = r.messages
		s.set(change.MeshdRouterPath("bmp-messages"), change.Uint(r.messages))
	}
	if r.errors != r.lastErrors {
		r.lastErrors = r.errors
		s.set(change.MeshdRouterPath("bmp-errors"), change.Uint(r.errors))
	}
	var total int
	for _, ps := range r.peers {
		for _, vs := range ps.views {
			total += vs.t.Len()
		}
		if !ps.countsDirty {
			continue
		}
		ps.countsDirty = false
		if ps.pseudo {
			for view, vs := range ps.views {
				s.b.m.instanceRoutes.WithLabelValues(r.name, ps.ni, view).Set(float64(vs.t.Len()))
			}
			continue
		}
		afi := map[string]uint64{}
		noPre := s.noPrePolicy(ps)
		for view, vs := range ps.views {
			rp := func(leaf string) *gpb.Path {
				return keyed(change.MeshdNeighborPath(ps.ni, ps.addr, "bmp", "ribs", "rib", "state", leaf), "rib", "view", view)
			}
			if !vs.written {
				vs.written = true
				s.set(rp("view"), change.String(view))
			}
			s.set(rp("prefixes"), change.Uint(uint64(vs.t.Len())))
			s.set(rp("announcements"), change.Uint(vs.ann))
			s.set(rp("withdrawals"), change.Uint(vs.wd))
			s.set(rp("duplicates"), change.Uint(vs.dup))
			s.set(rp("origin-changes"), change.Uint(vs.origin))
			leaf := ""
			switch view {
			case "ADJ_RIB_IN_PRE":
				if !noPre {
					leaf = "received-pre-policy"
				}
			case "ADJ_RIB_IN_POST":
				leaf = "received"
			case "ADJ_RIB_OUT_POST":
				leaf = "sent"
			}
			if leaf == "" {
				continue
			}
			for f, n := range vs.t.Counts() {
				afi[decode.AfiSafiName(f)+"/"+leaf] += n
				ps.afiCounts[decode.AfiSafiName(f)] = true
			}
			for name := range ps.afiCounts {
				if _, ok := afi[name+"/"+leaf]; !ok {
					afi[name+"/"+leaf] = 0
				}
			}
		}
		if noPre && ps.preWritten {
			// What the feed cannot carry is not shown as 0.
			ps.preWritten = false
			for name := range ps.afiCounts {
				if isOCFamily(name) {
					s.del(change.AfiSafiPath(ps.ni, ps.addr, name, "state", "prefixes", "received-pre-policy"))
				}
			}
		}
		for k, n := range afi {
			i := len(k) - 1
			for k[i] != '/' {
				i--
			}
			if !isOCFamily(k[:i]) {
				continue
			}
			if k[i+1:] == "received-pre-policy" {
				ps.preWritten = true
			}
			s.set(change.AfiSafiPath(ps.ni, ps.addr, k[:i], "state", "prefixes", k[i+1:]), change.Uint(min(n, 1<<32-1)))
		}
	}
	s.b.m.routes.Set(float64(s.b.routeTotal.Add(int64(total) - r.lastTotal)))
	r.lastTotal = int64(total)
}

func isOCFamily(name string) bool {
	switch name {
	case "IPV4_UNICAST", "IPV6_UNICAST", "IPV4_LABELED_UNICAST", "IPV6_LABELED_UNICAST", "L3VPN_IPV4_UNICAST", "L3VPN_IPV6_UNICAST", "L2VPN_EVPN":
		return true
	}
	return false
}

func joinComma(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}
