package peering

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jwhited/corebgp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
	"github.com/meshd/meshd/bmpbridge/decode"
)

// Attacher takes a BMP stream made in process (bmpbridge.Bridge).
type Attacher interface {
	Attach(ctx context.Context, c net.Conn) error
}

// Source runs the peering sessions.
type Source struct {
	cfg   Config
	att   Attacher
	log   *slog.Logger
	id    netip.Addr
	taps  taps
	m     metrics
	mu    sync.Mutex
	ctx   context.Context
	byRtr map[string]*stream // by router name
	lns   []net.Listener
}

type metrics struct {
	sessions *prometheus.GaugeVec
	updates  *prometheus.CounterVec
	closes   *prometheus.CounterVec
}

// New builds the source; Run starts it.
func New(cfg Config, att Attacher, log *slog.Logger, reg prometheus.Registerer) (*Source, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	id, _ := netip.ParseAddr(cfg.RouterID)
	s := &Source{cfg: cfg, att: att, log: log.With(slog.String("component", "peering")), id: id, byRtr: map[string]*stream{},
		m: metrics{
			sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "meshd_peering_sessions_established",
				Help: "Peering sessions established, by router."}, []string{"router"}),
			updates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_peering_updates_total",
				Help: "UPDATE messages received on peering sessions, by router."}, []string{"router"}),
			closes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_peering_session_ends_total",
				Help: "Peering sessions that left Established, by router and by who ended them (router, meshd, unknown)."}, []string{"router", "by"}),
		}}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.m.sessions, s.m.updates, s.m.closes} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("peering: metrics: %w", err)
			}
		}
	}
	// Bound now, so that a port in use fails meshd's start. Passive
	// peers' MD5 keys are set on the listening sockets (Linux takes a
	// key per peer address there).
	md5 := map[netip.Addr]string{}
	for _, p := range cfg.Peers {
		if !p.Active && p.Password != "" {
			a, _ := netip.ParseAddr(p.Address)
			md5[a.Unmap()] = p.Password
		}
	}
	ctx := context.Background()
	for _, a := range s.cfg.Listen {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			for addr, key := range md5 {
				if err := setMD5(c, addr, key); err != nil {
					return err
				}
			}
			return nil
		}}
		ln, err := lc.Listen(ctx, "tcp", a)
		if err != nil {
			for _, l := range s.lns {
				l.Close()
			}
			return nil, fmt.Errorf("peering: listen %s: %w", a, err)
		}
		s.log.Info("listening for BGP", slog.String("address", ln.Addr().String()))
		s.lns = append(s.lns, &tapListener{Listener: ln, taps: &s.taps})
	}
	return s, nil
}

// Run serves the sessions until ctx ends.
func (s *Source) Run(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	srv, err := corebgp.NewServer(s.id)
	if err != nil {
		return fmt.Errorf("peering: %w", err)
	}
	for _, p := range s.cfg.Peers {
		addr, _ := netip.ParseAddr(p.Address)
		addr = addr.Unmap()
		opts := []corebgp.PeerOption{corebgp.WithHoldTime(uint16(s.cfg.HoldTime / time.Second))}
		if p.Active {
			opts = append(opts, corebgp.WithPort(p.Port))
			if p.Password != "" {
				key := p.Password
				opts = append(opts, corebgp.WithDialerControl(func(_, _ string, c syscall.RawConn) error {
					return setMD5(c, addr, key)
				}))
			}
		} else {
			opts = append(opts, corebgp.WithPassive())
		}
		pl := &plugin{s: s, cfg: p, addr: addr}
		if err := srv.AddPeer(corebgp.PeerConfig{RemoteAddress: addr, LocalAS: s.cfg.LocalAS, RemoteAS: p.AS}, pl, opts...); err != nil {
			return fmt.Errorf("peering: peer %s: %w", addr, err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(s.lns) }()
	select {
	case <-ctx.Done():
		srv.Close()
		<-done
		s.closeStreams()
		return nil
	case err := <-done:
		s.closeStreams()
		if errors.Is(err, corebgp.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("peering: %w", err)
	}
}

// setMD5 sets a TCP MD5 key for one address on a socket.
func setMD5(c syscall.RawConn, addr netip.Addr, key string) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		bits := uint8(32)
		if addr.Is6() {
			bits = 128
		}
		serr = corebgp.SetTCPMD5Signature(int(fd), addr, bits, key)
	})
	if err != nil {
		return err
	}
	return serr
}

// stream is one router's BMP stream to the bridge, shared by the
// router's sessions with meshd.
type stream struct {
	mu sync.Mutex
	c  net.Conn
}

// streamKey is the stream a peer's messages go on: its router's name,
// or without one its address.
func (p Peer) streamKey() string {
	if p.Name != "" {
		return p.Name
	}
	return p.Address
}

// send writes BMP messages to the peer's router's stream, making it (with
// its Initiation) when there is none or the bridge ended the last one.
// It blocks while the bridge is behind: the router's TCP session then
// slows down, as a BMP router's does.
func (s *Source) send(peer Peer, addr netip.Addr, msgs []byte) error {
	key := peer.streamKey()
	s.mu.Lock()
	st := s.byRtr[key]
	if st == nil {
		st = &stream{}
		s.byRtr[key] = st
	}
	ctx := s.ctx
	s.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	for try := 0; try < 2; try++ {
		if st.c == nil {
			ours, theirs := net.Pipe()
			// The bridge names the router as a BMP router's: by the
			// sysName (the configured name), else by its address.
			if err := s.att.Attach(ctx, &pipeConn{Conn: theirs, addr: &net.TCPAddr{IP: addr.AsSlice()}}); err != nil {
				ours.Close()
				return err
			}
			st.c = ours
			init := bmpgen.AppendInitiation(nil, peer.Name, "meshd peering source (BGP session)")
			if _, err := st.c.Write(init); err != nil {
				st.c.Close()
				st.c = nil
				continue
			}
		}
		if _, err := st.c.Write(msgs); err != nil {
			st.c.Close()
			st.c = nil
			continue
		}
		return nil
	}
	return errors.New("the bridge ended the router's stream")
}

func (s *Source) closeStreams() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.byRtr {
		st.mu.Lock()
		if st.c != nil {
			_, _ = st.c.Write(bmpgen.AppendTermination(nil, 0, "meshd stopping"))
			st.c.Close()
			st.c = nil
		}
		st.mu.Unlock()
	}
}

// pipeConn is the bridge's end of a stream: its remote address is the
// router's, as a BMP connection's is.
type pipeConn struct {
	net.Conn
	addr net.Addr
}

func (c *pipeConn) RemoteAddr() net.Addr { return c.addr }

// plugin is one peer's CoreBGP plugin.
type plugin struct {
	s    *Source
	cfg  Peer
	addr netip.Addr

	mu       sync.Mutex
	routerID netip.Addr
	caps     []corebgp.Capability
	up       bool
	bmpPeer  bmpgen.Peer

	// updates counts the UPDATEs of the current session; stop ends its
	// reporter, which closes stopped.
	updates       atomic.Uint64
	stop, stopped chan struct{}

	// grTime is the restart time the router's OPEN gave in its Graceful
	// Restart capability (RFC 4724), 0 without one that names a family;
	// restarting: its session ended without a NOTIFICATION and meshd
	// holds its routes until it is back or grTimer fires.
	grTime     time.Duration
	restarting bool
	grTimer    *time.Timer
}

// capGracefulRestart is RFC 4724's capability code.
const capGracefulRestart = 64

// restartTime reads a Graceful Restart capability: the restart time,
// when the router lists a family whose routes it wants kept.
func restartTime(caps []corebgp.Capability) time.Duration {
	for _, c := range caps {
		if c.Code != capGracefulRestart || len(c.Value) < 2+4 {
			continue
		}
		return time.Duration(binary.BigEndian.Uint16(c.Value)&0x0fff) * time.Second
	}
	return 0
}

// reportEvery is how often a session's message counts go to the bridge
// when they changed.
const reportEvery = time.Second

// stats is a Stats Report of the session's messages as the router
// counts them (decode.StatUpdatesSent...): it sends UPDATEs to meshd (and
// receives none); a NOTIFICATION either way.
func stats(bp *bmpgen.Peer, updates, notifSent, notifRcvd uint64, restart ...uint64) []byte {
	bp.Time = time.Now()
	st := []bmpgen.Stat{
		{Type: decode.StatUpdatesSent, Value: updates, Len: 8},
		{Type: decode.StatNotificationsSent, Value: notifSent, Len: 8},
		{Type: decode.StatNotificationsRcvd, Value: notifRcvd, Len: 8},
	}
	for _, rt := range restart {
		st = append(st, bmpgen.Stat{Type: decode.StatGracefulRestart, Value: rt, Len: 8})
	}
	return bmpgen.AppendStats(nil, bp, st)
}

// report sends the session's message counts every reportEvery while
// they change, until stop.
func (p *plugin) report(bp bmpgen.Peer, stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	t := time.NewTicker(reportEvery)
	defer t.Stop()
	last := uint64(0)
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if n := p.updates.Load(); n != last {
				last = n
				if err := p.s.send(p.cfg, p.addr, stats(&bp, n, 0, 0)); err != nil {
					p.s.log.Warn("peering: the bridge took no Stats Report", slog.String("router", p.cfg.streamKey()), slog.Any("error", err))
				}
			}
		}
	}
}

// families are the AFI/SAFIs meshd takes: those BMP's decoder reads.
var families = []struct {
	afi  uint16
	safi uint8
}{{1, 1}, {2, 1}, {1, 4}, {2, 4}}

func (p *plugin) GetCapabilities(corebgp.PeerConfig) []corebgp.Capability {
	caps := make([]corebgp.Capability, 0, len(families)+3)
	for _, f := range families {
		caps = append(caps, corebgp.NewMPExtensionsCapability(f.afi, f.safi))
	}
	caps = append(caps, corebgp.Capability{Code: corebgp.CAP_ROUTE_REFRESH})
	// Graceful Restart as a helper only: no family (meshd keeps no
	// forwarding state), the restart time FRR defaults to.
	caps = append(caps, corebgp.Capability{Code: capGracefulRestart, Value: binary.BigEndian.AppendUint16(nil, 120)})
	caps = append(caps, corebgp.NewAddPathCapability([]corebgp.AddPathTuple{{AFI: 1, SAFI: 1, Rx: true}, {AFI: 2, SAFI: 1, Rx: true}}))
	return caps
}

func (p *plugin) OnOpenMessage(_ corebgp.PeerConfig, routerID netip.Addr, caps []corebgp.Capability) *corebgp.Notification {
	p.mu.Lock()
	p.routerID, p.caps = routerID, caps
	p.grTime = restartTime(caps)
	p.mu.Unlock()
	return nil
}

func (p *plugin) OnEstablished(pc corebgp.PeerConfig, _ corebgp.UpdateMessageWriter) corebgp.UpdateMessageHandler {
	s := p.s
	now := time.Now()
	var routerOpen, meshdOpen []byte
	local, remote := netip.AddrPort{}, netip.AddrPortFrom(p.addr, uint16(p.cfg.Port))
	if t := s.taps.get(p.addr); t != nil && !p.cfg.Active {
		t.mu.Lock()
		routerOpen, meshdOpen = t.routerOpen, t.meshdOpen
		local, remote = t.local, t.remote
		t.mu.Unlock()
	}
	p.mu.Lock()
	if p.restarting {
		p.restarting = false
		p.grTimer.Stop()
		s.log.Info("peering: the router is back within its restart time; its routes not sent again before End-of-RIB go", slog.String("router", p.cfg.streamKey()))
	}
	if routerOpen == nil {
		routerOpen = openMsg(p.cfg.AS, uint16(s.cfg.HoldTime/time.Second), p.routerID, p.caps)
	}
	if meshdOpen == nil {
		meshdOpen = openMsg(s.cfg.LocalAS, uint16(s.cfg.HoldTime/time.Second), s.id, append(p.GetCapabilities(pc),
			corebgp.Capability{Code: corebgp.CAP_FOUR_OCTET_AS, Value: binary.BigEndian.AppendUint32(nil, s.cfg.LocalAS)}))
	}
	// The BMP peer is meshd: the router's neighbor on this session.
	meshdAddr := local.Addr()
	var flags uint8 = bmpgen.FlagO | bmpgen.FlagL
	if meshdAddr.Is6() {
		flags |= bmpgen.FlagV
	}
	p.bmpPeer = bmpgen.Peer{Flags: flags, Addr: meshdAddr, AS: s.cfg.LocalAS, BGPID: s.id, Time: now}
	p.up = true
	bp := p.bmpPeer
	p.updates.Store(0)
	p.stop, p.stopped = make(chan struct{}), make(chan struct{})
	stop, stopped := p.stop, p.stopped
	p.mu.Unlock()
	up := bmpgen.AppendPeerUpMsgs(nil, &bp, remote.Addr(), remote.Port(), local.Port(), routerOpen, meshdOpen)
	up = append(up, stats(&bp, 0, 0, 0)...)
	if err := s.send(p.cfg, p.addr, up); err != nil {
		s.log.Warn("peering: the bridge took no Peer Up", slog.String("router", p.cfg.streamKey()), slog.Any("error", err))
	}
	go p.report(bp, stop, stopped)
	s.m.sessions.WithLabelValues(p.cfg.streamKey()).Inc()
	s.log.Info("peering session established", slog.String("router", p.cfg.streamKey()), slog.String("address", p.addr.String()), slog.String("router_id", p.routerID.String()))
	var buf, msg []byte
	updates := s.m.updates.WithLabelValues(p.cfg.streamKey())
	return func(_ corebgp.PeerConfig, update []byte) *corebgp.Notification {
		updates.Inc()
		p.updates.Add(1)
		// A Route Monitoring message carries the whole BGP message:
		// CoreBGP hands over the body. Both buffers are the session's,
		// reused: send has written them before it returns.
		bp.Time = time.Now()
		msg = append(msg[:0], marker[:]...)
		msg = binary.BigEndian.AppendUint16(msg, uint16(bgpHeaderLen+len(update)))
		msg = append(msg, msgUpdate)
		msg = append(msg, update...)
		buf = bmpgen.AppendRouteMonitoringMsg(buf[:0], &bp, msg)
		if err := s.send(p.cfg, p.addr, buf); err != nil {
			s.log.Warn("peering: the bridge took no UPDATE", slog.String("router", p.cfg.streamKey()), slog.Any("error", err))
		}
		return nil
	}
}

var marker = [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func (p *plugin) OnClose(corebgp.PeerConfig) {
	s := p.s
	p.mu.Lock()
	if !p.up {
		p.mu.Unlock()
		return
	}
	p.up = false
	bp := p.bmpPeer
	stop, stopped := p.stop, p.stopped
	p.mu.Unlock()
	// The reporter ends first: its last report must not follow the
	// Peer Down.
	close(stop)
	<-stopped
	bp.Time = time.Now()
	// BMP's reasons are the monitored router's view: 1, it sent a
	// NOTIFICATION; 3, its peer (meshd) did; 2, it closed without one.
	var down []byte
	var notifSent, notifRcvd uint64
	by := "unknown"
	if t := s.taps.get(p.addr); t != nil && !p.cfg.Active {
		t.mu.Lock()
		switch {
		case t.routerNotif != nil:
			down, by, notifSent = bmpgen.AppendPeerDownMsg(nil, &bp, 1, t.routerNotif), "router", 1
		case t.meshdNotif != nil:
			down, by, notifRcvd = bmpgen.AppendPeerDownMsg(nil, &bp, 3, t.meshdNotif), "meshd", 1
		case t.routerClosed:
			down, by = bmpgen.AppendPeerDown(nil, &bp, 2, 0, 0, nil, 0), "router"
		}
		t.mu.Unlock()
	}
	if down == nil {
		down = bmpgen.AppendPeerDown(nil, &bp, 4, 0, 0, nil, 0)
	}
	p.mu.Lock()
	graceful := by == "router" && notifSent == 0 && p.grTime > 0
	p.mu.Unlock()
	if graceful {
		p.holdForRestart(bp, down)
		s.m.sessions.WithLabelValues(p.cfg.streamKey()).Dec()
		s.m.closes.WithLabelValues(p.cfg.streamKey(), "graceful_restart").Inc()
		return
	}
	down = append(stats(&bp, p.updates.Load(), notifSent, notifRcvd), down...)
	if err := s.send(p.cfg, p.addr, down); err != nil {
		s.log.Warn("peering: the bridge took no Peer Down", slog.String("router", p.cfg.streamKey()), slog.Any("error", err))
	}
	s.m.sessions.WithLabelValues(p.cfg.streamKey()).Dec()
	s.m.closes.WithLabelValues(p.cfg.streamKey(), by).Inc()
	s.log.Info("peering session ended", slog.String("router", p.cfg.streamKey()), slog.String("address", p.addr.String()), slog.String("by", by))
}

// holdForRestart keeps a router's routes, stale, for its restart time
// after its session ended without a NOTIFICATION (RFC 4724 4.2): the
// bridge is told so (decode.StatGracefulRestart), and down, the Peer
// Down, goes only if the router is not back by then.
func (p *plugin) holdForRestart(bp bmpgen.Peer, down []byte) {
	s := p.s
	p.mu.Lock()
	defer p.mu.Unlock()
	rt := p.grTime
	if err := s.send(p.cfg, p.addr, stats(&bp, p.updates.Load(), 0, 0, uint64(rt/time.Second))); err != nil {
		s.log.Warn("peering: the bridge took no graceful restart", slog.String("router", p.cfg.streamKey()), slog.Any("error", err))
	}
	s.log.Info("peering session lost without a NOTIFICATION; the router restarts gracefully: its routes are kept, stale, for its restart time",
		slog.String("router", p.cfg.streamKey()), slog.Duration("restart_time", rt))
	p.restarting = true
	p.grTimer = time.AfterFunc(rt, func() {
		// Under p.mu, so that a session established meanwhile sends
		// its Peer Up after this Peer Down, never before.
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.restarting {
			return
		}
		p.restarting = false
		if err := s.send(p.cfg, p.addr, down); err != nil {
			s.log.Warn("peering: the bridge took no Peer Down", slog.String("router", p.cfg.streamKey()), slog.Any("error", err))
		}
		s.log.Info("peering: the router did not come back within its restart time; its routes go", slog.String("router", p.cfg.streamKey()))
	})
}

// openMsg builds an OPEN as CoreBGP's session had it, for a session with
// no tap.
func openMsg(as uint32, hold uint16, id netip.Addr, caps []corebgp.Capability) []byte {
	var params []byte
	for _, c := range caps {
		params = append(params, 2, byte(2+len(c.Value)), c.Code, byte(len(c.Value)))
		params = append(params, c.Value...)
	}
	b := append([]byte{}, marker[:]...)
	b = append(b, 0, 0, msgOpen, 4)
	myAS := uint16(as)
	if as > 65535 {
		myAS = 23456
	}
	b = binary.BigEndian.AppendUint16(b, myAS)
	b = binary.BigEndian.AppendUint16(b, hold)
	v4 := id.As4()
	b = append(b, v4[:]...)
	b = append(b, byte(len(params)))
	b = append(b, params...)
	binary.BigEndian.PutUint16(b[16:], uint16(len(b)))
	return b
}
