package bmpbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/bmpbridge/decode"
	"github.com/meshd/meshd/change"
)

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
	// Malformed messages past the first badLogLimit are summed up in a
	// warning at most every badSummaryEvery: the last one's offset and
	// error, and how many since the last warning.
	badQuiet      int
	badLast       string
	badLastOffset int64
	badSummaryAt  time.Time
	msgs          uint64
	// admitted: the session counts as its router's (see Bridge.admit);
	// refused: its Initiation was refused; else it is pending.
	admitted, refused bool
	// relay is the address of the replica that relayed the session (""
	// when the router connected here), its path; standby: the router
	// already had a session on another path when this one began
	// (standby.go).
	relay   string
	standby bool
	// attached: a stream made inside meshd (Bridge.Attach).
	attached bool
	// routeSlab hands out the Routes of route events: one allocation per
	// maxEventBatch routes instead of one per route. Routes handed out
	// are never touched again; the slab lives as long as any of them.
	routeSlab []change.Route
}

const (
	maxEventBatch = 1024
	badLogLimit   = 5
)

// badSummaryEvery bounds how often a session that keeps sending
// malformed messages adds a warning to the log: a fuzzer or a broken
// router sends thousands a second, and a line each would drown the log.
// Each is logged at debug level, and counted.
const badSummaryEvery = 10 * time.Second

func (b *Bridge) serveConn(ctx context.Context, c net.Conn) {
	host := c.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	// rc is what the session reads: c itself, or after a look at the
	// first message in cluster mode, c with that message replayed.
	rc := c
	if reason, why := b.clusterRefusal(); reason != "" {
		b.refuse(reason)
		b.logs.warn(b.log, reason, "refusing BMP connection: "+why+"; the router connects again", slog.String("address", host))
		c.Close()
		b.leave("")
		return
	}
	if b.placement != nil {
		var done bool
		if rc, done = b.maybeRelay(ctx, c, host); done {
			c.Close()
			b.leave("")
			return
		}
	}
	s := &session{b: b, conn: c, addr: host, log: b.log.With(slog.String("address", host)), dec: decode.NewDecoder(b.cfg.VRFs)}
	_, s.attached = c.(*attachedConn)
	// Without route events the prefix text is needed only for the rare
	// origin-change event.
	s.dec.LazyPrefix = !*b.cfg.RouteEvents
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(b.initTimeout)) // lifted by start

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
		readErr = s.read(rc, frames, free, done)
	}()
	defer close(done)

	tick := time.NewTicker(b.cfg.FlushInterval)
	defer tick.Stop()
	// In cluster mode a session served here whose router another replica
	// owns (it connected before ownership was known, or ownership moved)
	// is handed over: ended, so that the router connects again and is
	// relayed to the owner, where its gNMI data and probe are joined.
	var ownerCheck <-chan time.Time
	if b.placement != nil {
		t := time.NewTicker(relayCheckEvery)
		defer t.Stop()
		ownerCheck = t.C
	}
loop:
	for {
		// Only the applied session takes the router's VRP changes.
		var rovWake chan struct{}
		if s.r != nil && s.admitted && !s.standby {
			rovWake = s.r.rovWake
		}
		select {
		case <-rovWake:
			s.r.mu.Lock()
			s.now = time.Now()
			s.revalidate()
			s.flushLocked(true)
			s.r.mu.Unlock()
		case <-ownerCheck:
			if s.r == nil || !s.admitted {
				continue
			}
			if b.fenced() {
				// Another replica may own the router now: applying more
				// of its data here would split it from its gNMI data.
				b.m.refused.WithLabelValues("fenced").Inc()
				s.log.Warn("ending BMP session: this replica has lost its cluster lease; the router connects again, to a replica that holds one")
				c.Close()
				for range frames {
				}
				break loop
			}
			if to, remote := b.placement.BMPRoute(s.r.name); remote && !b.relayRefused(s.r.name) {
				b.m.relays.WithLabelValues("handed_over").Inc()
				s.log.Info("ending BMP session: its router is owned by another replica; the router connects again and is relayed there",
					slog.String("owner", to))
				c.Close()
				for range frames {
				}
				break loop
			}
		case rb, ok := <-frames:
			if !ok {
				break loop
			}
			keep := s.handleBatch(rb)
			n, size := len(rb.msgs), 0
			for i := range rb.msgs {
				size += rb.msgs[i].Length
			}
			select {
			case free <- rb:
			default:
			}
			if keep && s.r != nil && s.r.budget != nil && !s.standby {
				keep = s.pace(ctx, n, size)
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
	var ne net.Error
	switch {
	case s.r == nil && !s.refused && errors.As(readErr, &ne) && ne.Timeout():
		b.m.errors.WithLabelValues("no_initiation").Inc()
		b.logs.warn(s.log, "init:"+s.addr, "closing BMP connection: no Initiation in time", slog.Duration("timeout", b.initTimeout))
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
	switch {
	case s.admitted:
		b.leave(s.r.name)
	case !s.refused:
		b.leave("")
	}
}

// pace takes a batch of n messages of size bytes from the router's rate
// budget, waiting (so reading, and through TCP flow control the router,
// pauses) while the budget is spent. false: the session is ending.
func (s *session) pace(ctx context.Context, n, size int) bool {
	d, err := s.r.budget.wait(ctx, n, size)
	if d > 0 {
		s.b.m.throttled.WithLabelValues(s.r.name).Add(d.Seconds())
		s.b.logs.warn(s.log, "rate:"+s.r.name, "BMP router over its rate budget: reading paced",
			slog.Int("max_messages_per_second", s.b.cfg.MaxMessagesPerSecond),
			slog.Int("max_bytes_per_second", s.b.cfg.MaxBytesPerSecond), slog.Duration("paced", d))
	}
	return err == nil
}

// overBudget counts n announces of new routes not held because the
// router holds bmp.max-routes-per-router routes.
func (s *session) overBudget(n int) {
	s.b.m.overBudget.WithLabelValues(s.r.name).Add(float64(n))
	s.b.logs.warn(s.log, "routes:"+s.r.name, "BMP router over its route budget: new routes not held",
		slog.Int("max_routes_per_router", s.b.cfg.MaxRoutesPerRouter), slog.Int("not_held", n))
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
		return s.start(m.Initiation)
	}
	if s.standby {
		return true // read and counted, not applied
	}
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	r.messages++
	if err != nil {
		r.errors++
		s.bad++
		s.b.m.errors.WithLabelValues("malformed").Inc()
		s.malformed(r.name, m, err)
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
	case (m.Update != nil || m.Stats != nil) && s.peerNotUp(m):
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

// start makes the session its router's; false (the session is closed)
// when the router would be one more than max-routers.
func (s *session) start(in *decode.Initiation) bool {
	name := s.b.routerName(in.SysName, s.addr)
	if router, addr, ok := relayed(in.Strings); ok && s.b.placement != nil {
		// Relayed by another replica, which named the router as this
		// one would from its address.
		s.log.Info("BMP session relayed by another replica", slog.String("router", router), slog.String("router_address", addr), slog.String("relay", s.addr))
		name, s.relay, s.addr = router, s.addr, addr
		s.log = s.b.log.With(slog.String("address", addr))
	}
	if !s.b.admit(s.conn, name) {
		s.refused = true
		s.b.refuse("max_routers")
		s.b.logs.warn(s.log, "router:"+name, "refusing BMP session: max-routers routers already connected",
			slog.String("router", name), slog.String("sys_name", in.SysName), slog.Int("max_routers", s.b.cfg.MaxRouters))
		return false
	}
	s.admitted = true
	_ = s.conn.SetReadDeadline(time.Time{})
	s.r = s.b.router(name)
	s.log = s.log.With(slog.String("router", name))
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.holdAsStandby() {
		return true
	}
	s.r.activePath = s.relay
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
	return true
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
	if s.standby {
		s.endStandby()
		return
	}
	r := s.r
	r.mu.Lock()
	r.sessions--
	if r.sessions == 0 {
		s.endStandbys()
	}
	s.set(change.MeshdRouterPath("bmp-connected"), change.Bool(false))
	s.event(change.Event{Kind: change.EventRouterDown, Fields: map[string]any{"address": s.addr, "messages": int64(s.msgs), "errors": int64(s.bad)}})
	s.flushLocked(true)
	last := r.sessions == 0
	r.mu.Unlock()
	if last {
		s.b.core.ReleaseSource(r.name, change.SourceBMP)
	}
	s.flushBad(r.name)
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
		s.expireStale()
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

// errPeerNotUp is a Route Monitoring or Stats Report message for a BGP
// peer the router has sent no Peer Up for (RFC 7854 3.3: a router sends
// the Peer Up of each peer before its routes).
var errPeerNotUp = errors.New("message for a peer with no Peer Up")

// peerNotUp skips, counts and logs a message of a peer that is not up;
// the router's own pseudo-peers are exempt (FRR sends its Loc-RIB
// before that peer's Up). Keeping such a peer would let a router, or
// bytes gone wrong in a peer header, make a peer of every message, each
// with its RIB views, tree leaves and series, and every route's origin
// check would scan them all.
func (s *session) peerNotUp(m *decode.Message) bool {
	if isPseudo(m.Peer) {
		return false
	}
	if ps := s.r.peers[m.Peer.Key]; ps != nil && ps.up {
		return false
	}
	s.r.errors++
	s.bad++
	s.b.m.errors.WithLabelValues("peer_not_up").Inc()
	s.malformed(s.r.name, m, fmt.Errorf("%w: peer %s (distinguisher %d)", errPeerNotUp, m.Peer.Address, m.Peer.Key.RD))
	return true
}

// malformed logs a malformed message: the first badLogLimit of a session
// each at warning level, the rest each at debug level and summed up in a
// warning at most every badSummaryEvery.
func (s *session) malformed(router string, m *decode.Message, err error) {
	if s.badLogs < badLogLimit {
		s.badLogs++
		s.log.Warn("malformed BMP message skipped", slog.String("router", router), slog.String("type", m.Type), slog.Int64("offset", m.Offset), slog.Any("error", err))
		if s.badLogs == badLogLimit {
			s.badSummaryAt = time.Now()
		}
		return
	}
	s.log.Debug("malformed BMP message skipped", slog.String("router", router), slog.String("type", m.Type), slog.Int64("offset", m.Offset), slog.Any("error", err))
	s.badQuiet++
	s.badLast, s.badLastOffset = err.Error(), m.Offset
	if time.Since(s.badSummaryAt) >= badSummaryEvery {
		s.flushBad(router)
	}
}

// flushBad writes the warning that sums up the malformed messages not
// yet logged at warning level.
func (s *session) flushBad(router string) {
	if s.badQuiet == 0 {
		return
	}
	s.log.Warn("malformed BMP messages skipped (each at debug level)", slog.String("router", router), slog.Int("since_last_warning", s.badQuiet),
		slog.Int64("last_offset", s.badLastOffset), slog.String("last_error", s.badLast))
	s.badQuiet, s.badSummaryAt = 0, time.Now()
}
