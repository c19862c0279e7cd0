package bmpbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/ribview"
	"github.com/meshd/meshd/rpki"
	"github.com/meshd/meshd/stage"
)

// Option configures a Bridge.
type Option func(*Bridge)

// WithConfig sets the configuration (defaults fill what is unset).
func WithConfig(c Config) Option { return func(b *Bridge) { b.cfg = c } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(b *Bridge) { b.log = l } }

// WithRegisterer registers the bridge's metrics.
func WithRegisterer(reg prometheus.Registerer) Option { return func(b *Bridge) { b.reg = reg } }

// WithTargets names the routers meshd knows (gNMI target names), so a BMP
// session whose sysName or address equals one is given that name.
func WithTargets(names ...string) Option {
	return func(b *Bridge) {
		for _, n := range names {
			b.targets[n] = true
		}
	}
}

// WithTargetAddress says the gNMI target name is reached at the IP
// address ip, so a BMP session from that address (whose sysName names no
// target) is given that name. An address several targets share (targets
// on one host, behind one NAT) names none of them.
func WithTargetAddress(name string, ip netip.Addr) Option {
	return func(b *Bridge) {
		b.targets[name] = true
		a := ip.Unmap().String()
		if n, ok := b.targetAddrs[a]; ok && n != name {
			name = ""
		}
		b.targetAddrs[a] = name
	}
}

// Bridge accepts BMP sessions and feeds the merge core.
type Bridge struct {
	cfg         Config
	core        stage.Applier
	log         *slog.Logger
	reg         prometheus.Registerer
	m           *metrics
	targets     map[string]bool
	targetAddrs map[string]string // a target's IP address -> its name; "" when shared
	alias       map[string]string // sysName or address -> router name
	allow       []netip.Prefix
	logs        *logLimiter // refusals and budget overflows, per source or router
	initTimeout time.Duration
	placement   stage.Placement // cluster mode: where each router's data is joined (relay.go)
	rov         *rpki.Table     // nil: routes are not validated (rov.go)
	rovm        *rovMetrics
	rovPasses   atomic.Uint64       // RIB passes validating again, for tests
	obs         stage.RouteObserver // nil: routes are not judged
	ribs        *ribview.Hub        // nil: the RIBs are not served (ribread.go)

	mu      sync.Mutex
	routers map[string]*routerState
	// pending counts connections waiting for their Initiation; live
	// counts the open sessions of each router with one (max-routers
	// bounds both: routers, and connections not yet a router's).
	pending int
	live    map[string]int
	lns     []net.Listener
	conns   map[net.Conn]*connEntry
	// relayHeld: routers whose sessions are served here until then, as
	// their owner refused a relay (relay.go).
	relayHeld map[string]time.Time
	wg        sync.WaitGroup
	closed    bool

	routeTotal atomic.Int64
}

// connEntry is an open connection: its router's name once known, and what
// ends its session's waits (a paced read) when it is closed.
type connEntry struct {
	name   string
	cancel context.CancelFunc
}

// New returns a bridge feeding core.
func New(core stage.Applier, opts ...Option) (*Bridge, error) {
	if core == nil {
		return nil, errors.New("bmpbridge: nil merge core")
	}
	b := &Bridge{core: core, log: slog.Default(), targets: map[string]bool{}, targetAddrs: map[string]string{}, alias: map[string]string{},
		routers: map[string]*routerState{}, live: map[string]int{}, conns: map[net.Conn]*connEntry{}, m: newMetrics(), rovm: newROVMetrics(), logs: newLogLimiter(logInterval), initTimeout: initiationTimeout}
	for _, o := range opts {
		o(b)
	}
	b.cfg.SetDefaults()
	if err := b.cfg.Validate(); err != nil {
		return nil, err
	}
	if b.ribs != nil {
		b.ribs.SetSource(b)
	}
	for _, a := range b.cfg.Allow {
		p, _ := parseAllow(a) // Validate checked it
		b.allow = append(b.allow, p)
	}
	for name, as := range b.cfg.Aliases {
		for _, a := range as {
			b.alias[a] = name
		}
	}
	if b.reg != nil {
		b.m.register(b.reg)
		if b.rov != nil {
			for _, c := range b.rovm.collectors() {
				b.reg.MustRegister(c)
			}
		}
	}
	b.log = b.log.With(slog.String("component", "bmp"))
	return b, nil
}

// Listen opens every configured listen address and serves them until ctx
// ends or Close is called. It returns once the listeners are open.
func (b *Bridge) Listen(ctx context.Context) error {
	var lc net.ListenConfig
	for _, addr := range b.cfg.Listen {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			b.Close()
			return fmt.Errorf("bmp.listen %s: %w", addr, err)
		}
		go func() { _ = b.Serve(ctx, ln) }()
	}
	return nil
}

// Serve accepts BMP sessions on ln until ctx ends or Close is called.
func (b *Bridge) Serve(ctx context.Context, ln net.Listener) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	b.lns = append(b.lns, ln)
	b.mu.Unlock()
	b.log.Info("listening", slog.String("address", ln.Addr().String()))
	stop := context.AfterFunc(ctx, func() { b.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		if !b.allowed(c.RemoteAddr()) {
			b.refuse("not_allowed")
			host := hostOf(c.RemoteAddr())
			b.logs.warn(b.log, "addr:"+host, "refusing BMP connection: source not in bmp.allow", slog.String("address", host))
			c.Close()
			continue
		}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			c.Close()
			return nil
		}
		if b.cfg.MaxRouters > 0 && b.pending >= maxPending(b.cfg.MaxRouters) {
			b.mu.Unlock()
			b.refuse("max_routers")
			host := hostOf(c.RemoteAddr())
			b.logs.warn(b.log, "pending:"+host, "refusing BMP connection: twice max-routers connections already wait for their Initiation", slog.String("address", host), slog.Int("max_routers", b.cfg.MaxRouters))
			c.Close()
			continue
		}
		b.pending++
		b.spawn(ctx, c)
		b.m.accepted.WithLabelValues("accepted").Inc()
	}
}

// spawn serves c as a BMP session in its own goroutine; b.mu is held and
// is let go.
func (b *Bridge) spawn(ctx context.Context, c net.Conn) {
	sctx, cancel := context.WithCancel(ctx)
	b.conns[c] = &connEntry{cancel: cancel}
	b.wg.Add(1)
	b.mu.Unlock()
	b.m.sessions.Inc()
	go func() {
		defer b.wg.Done()
		b.serveConn(sctx, c)
		cancel()
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
		b.m.sessions.Dec()
	}()
}

// Attach serves c, a BMP stream made inside meshd (the peering source's
// BGP sessions), as a router's session: the same reading, RIBs, events
// and checks as a connection from a router, without the listener's
// allow-list (the source admits its own peers). It returns at once;
// net.ErrClosed when the bridge is closed.
func (b *Bridge) Attach(ctx context.Context, c net.Conn) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		c.Close()
		return net.ErrClosed
	}
	b.pending++
	b.spawn(ctx, &attachedConn{c})
	b.m.accepted.WithLabelValues("attached").Inc()
	return nil
}

// attachedConn marks a stream made inside meshd (Attach): its session's
// experimental Stats Report types are the peering source's message
// counts (decode.StatUpdatesSent...).
type attachedConn struct{ net.Conn }

func hostOf(a net.Addr) string {
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// initiationTimeout is how long a connection may take to send its
// Initiation (RFC 7854 4.3: a router sends it first, at once); then it is
// closed and counted as no_initiation, so silent connections neither
// hold a pending slot nor a file descriptor for good.
const initiationTimeout = 30 * time.Second

// maxPending bounds the connections waiting for their Initiation: twice
// max-routers, so that every router connecting at once, each with a
// second session (two collectors configured, a reconnect), still fits.
func maxPending(maxRouters int) int { return 2 * maxRouters }

// refuse counts a connection refused, by reason.
func (b *Bridge) refuse(reason string) {
	b.m.accepted.WithLabelValues("rejected").Inc()
	b.m.refused.WithLabelValues(reason).Inc()
	if reason == "max_routers" {
		b.m.errors.WithLabelValues("too_many_routers").Inc()
	}
}

// admit makes a connection that sent its Initiation a session of router
// name, unless that would make more than max-routers routers connected:
// a router already connected (a second session, as in a reconnect race)
// counts once.
func (b *Bridge) admit(c net.Conn, name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending--
	if b.cfg.MaxRouters > 0 && b.live[name] == 0 && len(b.live) >= b.cfg.MaxRouters {
		return false
	}
	b.live[name]++
	if e := b.conns[c]; e != nil {
		e.name = name
	}
	return true
}

// leave ends the bookkeeping of a connection: pending when it never
// became a session of router name ("").
func (b *Bridge) leave(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if name == "" {
		b.pending--
		return
	}
	if b.live[name]--; b.live[name] <= 0 {
		delete(b.live, name)
	}
}

// Disconnect closes the BMP sessions of a router, so that it reconnects
// and re-sends everything: an operator's resync. It returns how many
// sessions it closed. meshd keeps the router's RIBs across, so the
// re-send makes no duplicate route events.
func (b *Bridge) Disconnect(router string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for c, e := range b.conns {
		if e.name == router {
			e.cancel()
			c.Close()
			n++
		}
	}
	return n
}

// Addrs returns the addresses the bridge listens on.
func (b *Bridge) Addrs() []net.Addr {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]net.Addr, 0, len(b.lns))
	for _, ln := range b.lns {
		out = append(out, ln.Addr())
	}
	return out
}

// Close stops the listeners, ends every session and waits for them.
func (b *Bridge) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.wg.Wait()
		return nil
	}
	b.closed = true
	for _, ln := range b.lns {
		ln.Close()
	}
	for c, e := range b.conns {
		e.cancel()
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
	return nil
}

// routerName resolves a BMP session's router name: an alias of its
// sysName or address, a known target named like its sysName, the target
// at its address, a target named like its address, else the sysName,
// else the address.
func (b *Bridge) routerName(sysName, addr string) string {
	if n, ok := b.alias[sysName]; ok && sysName != "" {
		return n
	}
	if n, ok := b.alias[addr]; ok {
		return n
	}
	if b.targets[sysName] && sysName != "" {
		return sysName
	}
	if n := b.targetAddrs[addr]; n != "" {
		return n
	}
	if b.targets[addr] {
		return addr
	}
	if sysName != "" {
		return sysName
	}
	return addr
}

func (b *Bridge) router(name string) *routerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.routers[name]
	if r == nil {
		r = newRouterState(name)
		r.budget = newBudget(&b.cfg)
		b.routers[name] = r
	}
	return r
}

// RouteCount returns the routes held for a router in one RIB view of one
// neighbor (all views when view is ""), for tests and diagnostics.
func (b *Bridge) RouteCount(router, ni, neighbor, view string) int {
	b.mu.Lock()
	r := b.routers[router]
	b.mu.Unlock()
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, p := range r.peers {
		if p.ni != ni || p.addr != neighbor {
			continue
		}
		for v, vs := range p.views {
			if view == "" || v == view {
				n += vs.t.Len()
			}
		}
	}
	return n
}
