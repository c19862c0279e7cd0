// Package web is meshd's status page: a sink that keeps one row per BGP
// session, each probed session's last hour of RTT, jitter, loss and hops,
// and the recent events, and serves them on meshd's HTTP listener as a
// page (at /, its assets embedded in the binary: no CDN, no outside
// fonts) and its API (under /api/status/).
//
// Live updates reach the page over Server-Sent Events: the stream opens
// with the whole fleet, then sends what changed, coalesced every
// interval (250 ms): changed rows, removed rows, new events, and the new
// probe points of the session a page watches. A client that cannot keep
// up is cut off and counted; the browser's EventSource reconnects and
// starts again from the whole fleet.
//
// In cluster mode the page answers for the fleet from any replica, as
// /api/sessions does: the sink follows the other replicas' own parts
// over their streams (remote.go).
//
// Its copy of the fleet is written in the sources' goroutines, as the
// gNMI target's is (package mirror), so it never falls behind and never
// resynchronises after a fleet's sync. The history is held here, not in
// InfluxDB, so the page works without it.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/sinks/mirror"
	"github.com/meshd/meshd/stage"
)

func init() { stage.RegisterSink(stage.SinkInfo{Name: "status-page", New: newStageSink}) }

// Config is the status-page section. The page is on unless disabled.
type Config struct {
	// Disable turns the page and its API off.
	Disable bool `yaml:"disable"`
	// History is how far back each session's probe plots reach (default 1h).
	History time.Duration `yaml:"history"`
	// Events is how many events the timeline keeps (default 2000).
	Events int `yaml:"events"`
	// Interval coalesces live updates (default 250ms).
	Interval time.Duration `yaml:"interval"`
	// MaxClients caps the pages streaming at once (default 64).
	MaxClients int `yaml:"max-clients"`
}

// SetDefaults fills in keys left out.
func (c *Config) SetDefaults() {
	if c.History == 0 {
		c.History = time.Hour
	}
	if c.Events == 0 {
		c.Events = 2000
	}
	if c.Interval == 0 {
		c.Interval = 250 * time.Millisecond
	}
	if c.MaxClients == 0 {
		c.MaxClients = 64
	}
}

// Validate checks the section.
func (c *Config) Validate() error {
	var errs []error
	if c.History < 0 {
		errs = append(errs, errors.New("status-page.history: must be > 0"))
	}
	if c.Events < 0 {
		errs = append(errs, errors.New("status-page.events: must be > 0"))
	}
	if c.Interval < 0 || c.Interval > time.Second {
		errs = append(errs, errors.New("status-page.interval: must be between 0 and 1s (updates reach the page within a second)"))
	}
	if c.MaxClients < 0 {
		errs = append(errs, errors.New("status-page.max-clients: must be > 0"))
	}
	return errors.Join(errs...)
}

func newStageSink(env stage.Env) (stage.Sink, error) {
	var cfg Config
	if _, err := env.Decode("status-page", &cfg); err != nil || cfg.Disable {
		return nil, err
	}
	s, err := New(cfg, env.State, env.Log, env.Registerer)
	if err != nil {
		return nil, err
	}
	if env.HTTPPeers != nil {
		s.rem = &remotes{peers: env.HTTPPeers, client: env.PeerHTTP, scheme: env.PeerScheme, st: s.st,
			log: s.log, running: map[string]context.CancelFunc{}}
	}
	s.Register(env.Ops)
	if !hasCharts() {
		s.log.Warn("the status page has no chart library in this build (make web-assets fetches it); its plots are off")
	}
	return s, nil
}

// Sink is the status page.
type Sink struct {
	cfg  Config
	snap stage.Snapshotter
	log  *slog.Logger
	st   *state
	hub  *hub
	rem  *remotes // cluster mode: the other replicas' parts

	resyncs, batches, cutOff prometheus.Counter
	clients                  prometheus.Gauge

	unreachable string // the replicas last said unreachable (Run's)
}

// New builds the page's sink; Register adds its endpoints, Run feeds it.
func New(cfg Config, snap stage.Snapshotter, log *slog.Logger, reg prometheus.Registerer) (*Sink, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Sink{
		cfg: cfg, snap: snap, log: log.With(slog.String("part", "status-page")),
		st: newState(cfg.History, cfg.Events),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_statuspage_resyncs_total",
			Help: "Resynchronisations of the status page's copy from the merge core's snapshot."}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_statuspage_batches_total",
			Help: "Change batches applied to the status page's copy."}),
		cutOff: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_statuspage_clients_cut_off_total",
			Help: "Live streams ended because the page did not keep up (it reconnects)."}),
		clients: prometheus.NewGauge(prometheus.GaugeOpts{Name: "meshd_statuspage_clients",
			Help: "Pages streaming live updates."}),
	}
	s.hub = &hub{joins: make(chan *client), running: make(chan struct{}), stopped: make(chan struct{}), clients: map[*client]struct{}{}}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.resyncs, s.batches, s.cutOff, s.clients} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("status-page: metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Register adds the page and its API to the HTTP listener.
func (s *Sink) Register(ops stage.Ops) {
	ops.Handle("GET /{$}", http.HandlerFunc(s.page))
	ops.Handle("GET /assets/", assetHandler())
	ops.Handle("GET /api/status/fleet", http.HandlerFunc(s.fleet))
	ops.Handle("GET /api/status/session", http.HandlerFunc(s.session))
	ops.Handle("GET /api/status/stream", http.HandlerFunc(s.stream))
}

// Run keeps the page's copy level with the merge core and sends what
// changed to the streaming pages, until ctx ends or the feed closes.
func (s *Sink) Run(ctx context.Context, feed stage.Feed) error {
	if !mirror.Follow(feed, s.snap, s.st, mirror.Metrics{Resyncs: s.resyncs, Batches: s.batches}, s.log) {
		return nil
	}
	close(s.hub.running)
	defer close(s.hub.stopped)
	if s.rem != nil {
		rctx, stop := context.WithCancel(ctx)
		defer stop()
		go s.rem.run(rctx)
	}
	closed := make(chan struct{})
	go func() {
		for range feed.C() {
		}
		close(closed)
	}()
	defer s.hub.closeAll()
	var last uint64 // the last event sent
	tick := time.NewTimer(0)
	<-tick.C
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-closed:
			return nil
		case c := <-s.hub.joins:
			last = s.join(c, last)
			continue
		case <-s.st.wake:
		}
		// Coalesce: what changes within the interval goes out together.
		tick.Reset(s.cfg.Interval)
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case c := <-s.hub.joins:
				last = s.join(c, last)
			case <-tick.C:
				break wait
			}
		}
		last = s.send(last)
	}
}

// send takes what changed and broadcasts it; it returns the last event
// sent.
func (s *Sink) send(last uint64) uint64 {
	live := s.hub.count() > 0
	d := s.st.take(last, live)
	if n := len(d.events); n > 0 {
		last = d.events[n-1].Seq
	}
	if !live {
		return last
	}
	var fleet, local []sse
	if len(d.rows) > 0 || len(d.removed) > 0 {
		fleet = append(fleet, encode("rows", map[string]any{"rows": d.rows, "removed": d.removed}))
	}
	if len(d.localRows) > 0 || len(d.localRemoved) > 0 {
		local = append(local, encode("rows", map[string]any{"rows": d.localRows, "removed": d.localRemoved}))
	}
	if len(d.events) > 0 {
		fleet = append(fleet, encode("events", d.events))
		if own := slices.DeleteFunc(slices.Clone(d.events), func(e Event) bool { return e.Replica != "" }); len(own) > 0 {
			local = append(local, encode("events", own))
		}
	}
	if d.alerts != nil {
		fleet = append(fleet, encode("alerts", d.alerts))
		local = append(local, encode("alerts", d.localAlerts))
	}
	if u := strings.Join(d.unreachable, ","); u != s.unreachable {
		s.unreachable = u
		fleet = append(fleet, encode("cluster", map[string]any{"unreachable": d.unreachable}))
	}
	s.hub.broadcast(fleet, local, d.points, s.cutOff, s.clients)
	return last
}

// join sends a new page the whole fleet, then adds it to the hub: every
// delta after it holds only changes made after the snapshot's rows were
// read, or again those in it (the page's apply is idempotent), so it
// never takes a row back in time.
func (s *Sink) join(c *client, last uint64) uint64 {
	// Changes made before the snapshot must not reach the page after it.
	last = s.send(last)
	rows, events, alerts, unreachable := s.st.fleet(200, c.local)
	first := []sse{encode("fleet", map[string]any{"rows": rows, "events": events}), encode("alerts", alerts)}
	if !c.local {
		first = append(first, encode("cluster", map[string]any{"unreachable": unreachable}))
	}
	if c.watching {
		if d, ok := s.st.detail(c.watch, 0); ok {
			first = append(first, encode("points", map[string]any{"id": c.watch.ID(), "series": d.History}))
		}
	}
	s.hub.add(c, first, s.clients)
	return last
}

// sse is one Server-Sent Events message, framed.
type sse []byte

func encode(event string, v any) sse {
	b, err := json.Marshal(v)
	if err != nil {
		// Every value here is built of strings, numbers and maps of
		// them; this would be a bug.
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	out := make([]byte, 0, len(b)+len(event)+16)
	out = append(out, "event: "...)
	out = append(out, event...)
	out = append(out, "\ndata: "...)
	out = append(out, b...)
	return append(out, "\n\n"...)
}

// client is one streaming page: local when it asked for this replica's
// own part only (another replica's page).
type client struct {
	ch       chan sse
	local    bool
	watching bool
	watch    key
	done     chan struct{} // closed when the hub cuts it off
	once     sync.Once
}

func (c *client) cut() { c.once.Do(func() { close(c.done) }) }

// clientQueue is how many messages a page may be behind before it is cut
// off: at one message of each kind every interval, 16 s of a stalled tab.
const clientQueue = 64

// hub holds the streaming pages. Only the sink's Run goroutine adds to it
// and broadcasts; handlers remove their own client when the request ends.
type hub struct {
	joins chan *client
	// running is closed when Run takes joins, stopped when it no longer
	// does.
	running, stopped chan struct{}
	mu               sync.Mutex
	clients          map[*client]struct{}
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

func (h *hub) add(c *client, first []sse, gauge prometheus.Gauge) {
	for _, m := range first {
		c.ch <- m // a new client's queue is empty
	}
	h.mu.Lock()
	h.clients[c] = struct{}{}
	gauge.Set(float64(len(h.clients)))
	h.mu.Unlock()
}

func (h *hub) remove(c *client, gauge prometheus.Gauge) {
	h.mu.Lock()
	delete(h.clients, c)
	gauge.Set(float64(len(h.clients)))
	h.mu.Unlock()
}

func (h *hub) broadcast(fleet, local []sse, points map[key][]point, cutOff prometheus.Counter, gauge prometheus.Gauge) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		out := fleet
		if c.local {
			out = local
		}
		if pts := points[c.watch]; c.watching && len(pts) > 0 {
			out = append(out[:len(out):len(out)], encode("points", map[string]any{"id": c.watch.ID(), "series": seriesOf(pts)}))
		}
		for _, m := range out {
			select {
			case c.ch <- m:
				continue
			default:
			}
			delete(h.clients, c)
			cutOff.Inc()
			c.cut()
			break
		}
	}
	gauge.Set(float64(len(h.clients)))
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		c.cut()
		delete(h.clients, c)
	}
}
