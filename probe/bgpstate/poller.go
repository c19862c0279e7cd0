package bgpstate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/change"
)

// Config selects and paces the daemon poll (`meshd probe --bgp ...`).
type Config struct {
	// Daemon is "frr", "gobgp", or empty (no polling).
	Daemon string `yaml:"daemon"`
	// VtySocket is FRR's vty socket directory (vtysh --vty_socket).
	VtySocket string `yaml:"vty-socket"`
	// Vtysh is the vtysh binary (default "vtysh").
	Vtysh string `yaml:"vtysh"`
	// GoBGPAPI is gobgpd's gRPC API address.
	GoBGPAPI string `yaml:"gobgp-api"`
	// Interval between polls.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one poll.
	Timeout time.Duration `yaml:"timeout"`
	// StaleAfter consecutive failed polls withdraw every served leaf, so a
	// dead daemon's last view is not taken for the truth.
	StaleAfter int `yaml:"stale-after"`
}

// SetDefaults fills in what the config leaves out.
func (c *Config) SetDefaults() {
	if c.Vtysh == "" {
		c.Vtysh = "vtysh"
	}
	if c.GoBGPAPI == "" {
		c.GoBGPAPI = "127.0.0.1:50051"
	}
	if c.Interval == 0 {
		c.Interval = 5 * time.Second
	}
	if c.Timeout == 0 {
		// vtysh starts slowly on a busy box; a poll may overrun the
		// interval (the next one then waits) rather than fail.
		c.Timeout = max(c.Interval, 10*time.Second)
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = 3
	}
}

// Validate reports the first bad field.
func (c *Config) Validate() error {
	switch c.Daemon {
	case "", "frr", "gobgp":
	default:
		return fmt.Errorf("bgp.daemon: %q is not frr or gobgp", c.Daemon)
	}
	if c.Interval < 100*time.Millisecond {
		return errors.New("bgp.interval: must be >= 100ms")
	}
	if c.Timeout <= 0 {
		return errors.New("bgp.timeout: must be > 0")
	}
	if c.StaleAfter < 1 {
		return errors.New("bgp.stale-after: must be >= 1")
	}
	return nil
}

// Reader is a BGP daemon that can be asked for its neighbors.
type Reader interface {
	Neighbors(ctx context.Context) ([]Neighbor, error)
}

// NewReader returns the reader cfg names; networkInstance names the
// daemon's default instance in the model, and ns is the network namespace
// the daemon runs in (gobgpd's API is dialled there; FRR's vty socket is a
// file and needs none).
func NewReader(cfg Config, networkInstance, ns string) (Reader, error) {
	switch cfg.Daemon {
	case "frr":
		return &FRR{Vtysh: cfg.Vtysh, Socket: cfg.VtySocket, DefaultInstance: networkInstance}, nil
	case "gobgp":
		return &GoBGP{Addr: cfg.GoBGPAPI, NetworkInstance: networkInstance, Netns: ns}, nil
	}
	return nil, fmt.Errorf("bgp.daemon: %q is not frr or gobgp", cfg.Daemon)
}

// Poller polls a Reader and publishes the leaves that changed since the
// previous poll, and deletes for what went away.
type Poller struct {
	cfg     Config
	r       Reader
	router  string
	publish func([]change.Change)
	log     *slog.Logger
	m       *metrics

	served   map[string]served // PathKey → last published leaf
	nbrs     map[string]nbrRef // neighbor PathKey → its path
	failures int
	poke     chan struct{}
}

type served struct {
	path  *gpb.Path
	val   *gpb.TypedValue
	nbr   string
	leaf  string
	alive bool
}

type nbrRef struct {
	path  *gpb.Path
	alive bool
}

// Option configures a Poller.
type Option func(*Poller)

// WithRegisterer registers the poller's metrics with reg.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(p *Poller) { p.m.reg = reg }
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(p *Poller) { p.log = l } }

// NewPoller returns a poller of r for router; publish receives the changed
// leaves of each poll (Source gNMI: they are the router's own view).
func NewPoller(cfg Config, r Reader, router string, publish func([]change.Change), opts ...Option) (*Poller, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if r == nil || publish == nil {
		return nil, errors.New("bgpstate: a reader and a publish function are required")
	}
	p := &Poller{cfg: cfg, r: r, router: router, publish: publish, log: slog.Default(),
		m: newMetrics(), served: map[string]served{}, nbrs: map[string]nbrRef{}, poke: make(chan struct{}, 1)}
	for _, o := range opts {
		o(p)
	}
	if p.m.reg != nil {
		if err := p.m.register(p.m.reg); err != nil {
			return nil, fmt.Errorf("bgpstate: metrics: %w", err)
		}
	}
	p.log = p.log.With(slog.String("router", router), slog.String("daemon", cfg.Daemon))
	return p, nil
}

// Poke asks for a poll soon, out of turn: the probe calls it when the wire
// shows a session changing (an OPEN, a NOTIFICATION, a connection
// closed), so a reset is served within a fraction of a second rather than
// at the next interval. It never blocks; pokes close together make one
// poll.
func (p *Poller) Poke() {
	select {
	case p.poke <- struct{}{}:
	default:
	}
}

// pokeSettle is how long a poke waits before polling: the daemon has seen
// the message the probe saw at about the same time, and needs a moment to
// act on it. A second poll follows pokeFollow later, for the state the
// session settles in (a reset session comes back up).
const (
	pokeSettle = 100 * time.Millisecond
	pokeFollow = time.Second
)

// Run polls every interval, and soon after a Poke, until ctx ends.
func (p *Poller) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	var follow <-chan time.Time
	for {
		_ = p.Poll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-follow:
			follow = nil
		case <-p.poke:
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(pokeSettle):
			}
			select { // pokes while settling are this poll's too
			case <-p.poke:
			default:
			}
			follow = time.After(pokeFollow)
			p.m.pokes.Inc()
		}
	}
}

// Poll asks the daemon once and publishes what changed. A failed poll is
// counted and logged when the daemon turns unreachable and again when it
// is back; after StaleAfter failures in a row every served leaf is
// withdrawn.
func (p *Poller) Poll(parent context.Context) error {
	ctx, cancel := context.WithTimeout(parent, p.cfg.Timeout)
	defer cancel()
	t0 := time.Now()
	ns, err := p.r.Neighbors(ctx)
	p.m.duration.Observe(time.Since(t0).Seconds())
	if err != nil {
		if parent.Err() != nil {
			// Shutting down: not the daemon's fault.
			return err
		}
		p.m.polls.WithLabelValues("error").Inc()
		p.failures++
		if p.failures == 1 {
			p.log.Warn("bgp daemon poll failed; keeping the last view", slog.Any("err", err))
		}
		if p.failures == p.cfg.StaleAfter {
			p.log.Warn("bgp daemon unreachable; withdrawing its neighbor state", slog.Int("failures", p.failures))
			p.apply(nil, time.Now())
		}
		return err
	}
	if p.failures > 0 {
		p.log.Info("bgp daemon poll works again", slog.Int("failures", p.failures))
		p.failures = 0
	}
	p.m.polls.WithLabelValues("ok").Inc()
	p.m.neighbors.Set(float64(len(ns)))
	p.apply(ns, time.Now())
	return nil
}

// apply diffs ns against what was served and publishes the difference.
func (p *Poller) apply(ns []Neighbor, now time.Time) {
	for k, s := range p.served {
		s.alive = false
		p.served[k] = s
	}
	for k, n := range p.nbrs {
		n.alive = false
		p.nbrs[k] = n
	}
	var out []change.Change
	emit := func(path *gpb.Path, v *gpb.TypedValue) {
		out = append(out, change.Change{Router: p.router, Path: path, Value: v, Time: now, Source: change.SourceGNMI})
	}
	for i := range ns {
		n := &ns[i]
		np := change.NeighborPath(n.NetworkInstance, n.Address)
		nk := change.PathKey(np)
		p.nbrs[nk] = nbrRef{path: np, alive: true}
		for _, l := range n.Leaves() {
			k := change.PathKey(l.Path)
			old, ok := p.served[k]
			if !ok || !proto.Equal(old.val, l.Value) {
				emit(l.Path, l.Value)
			}
			last := l.Path.Elem[len(l.Path.Elem)-1].Name
			p.served[k] = served{path: l.Path, val: l.Value, nbr: nk, leaf: last, alive: true}
		}
	}
	for nk, n := range p.nbrs {
		if !n.alive {
			emit(n.path, nil)
			delete(p.nbrs, nk)
		}
	}
	for k, s := range p.served {
		if s.alive {
			continue
		}
		if _, nbrAlive := p.nbrs[s.nbr]; nbrAlive {
			if sticky[s.leaf] {
				continue
			}
			emit(s.path, nil)
		}
		delete(p.served, k)
	}
	if len(out) > 0 {
		p.m.leaves.Add(float64(len(out)))
		p.publish(out)
	}
}

type metrics struct {
	reg       prometheus.Registerer
	polls     *prometheus.CounterVec
	duration  prometheus.Histogram
	neighbors prometheus.Gauge
	leaves    prometheus.Counter
	pokes     prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshd_probe_bgp_polls_total", Help: "Polls of the local BGP daemon's neighbor state, by result (ok, error).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "meshd_probe_bgp_poll_duration_seconds", Help: "Time one poll of the BGP daemon took.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}),
		neighbors: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshd_probe_bgp_neighbors", Help: "Neighbors the BGP daemon reported in the last successful poll.",
		}),
		leaves: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshd_probe_bgp_leaf_changes_total", Help: "OpenConfig leaves published (changed or deleted) from the daemon's state.",
		}),
		pokes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshd_probe_bgp_poked_polls_total", Help: "Polls made out of turn because the wire showed a session changing.",
		}),
	}
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.polls, m.duration, m.neighbors, m.leaves, m.pokes} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
