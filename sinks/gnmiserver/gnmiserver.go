// Package gnmiserver is meshd's re-serve sink: it keeps a gnmitarget store
// current from the merge core's change stream, one gNMI target per router.
package gnmiserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ondatra/gnmi/oc"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/gnmitarget"
	"github.com/meshd/meshd/merge"
	mygot "github.com/meshd/meshd/ygot"
)

// Snapshotter gives the merged state, router by router, for a
// resynchronisation after the sink missed batches. *merge.Core
// implements it.
type Snapshotter interface {
	Routers() []string
	Snapshot(router string) []change.Update
}

// Models are the models Capabilities reports. ondatra's gnmi/oc v0.6.0
// (the OpenConfig bindings the merge core validates against) carries no
// ΛModelData and no module revisions, so the OpenConfig entries name the
// modules without inventing a version.
var Models = []*gpb.ModelData{
	{Name: "openconfig-network-instance", Organization: "OpenConfig working group"},
	{Name: "openconfig-bgp", Organization: "OpenConfig working group"},
	{Name: "openconfig-bgp-types", Organization: "OpenConfig working group"},
	{Name: "meshd-bgp", Organization: "meshd", Version: "2026-11-21"},
}

// Option configures a Sink.
type Option func(*Sink)

// WithRegisterer registers the sink's and its target's metrics with reg.
func WithRegisterer(reg prometheus.Registerer) Option { return func(s *Sink) { s.reg = reg } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Sink) { s.log = l } }

// Sink serves the merged tree over gNMI.
type Sink struct {
	cfg  Config
	snap Snapshotter
	srv  *gnmitarget.Server
	reg  prometheus.Registerer
	log  *slog.Logger

	resyncs prometheus.Counter
	batches prometheus.Counter

	mu   sync.Mutex
	addr net.Addr
}

// New validates cfg and builds the sink; Run starts serving.
func New(cfg Config, snap Snapshotter, opts ...Option) (*Sink, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if snap == nil {
		return nil, errors.New("gnmi-server: a snapshot source is required")
	}
	s := &Sink{cfg: cfg, snap: snap, log: slog.Default()}
	for _, o := range opts {
		o(s)
	}
	s.resyncs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meshd_gnmiserver_resyncs_total",
		Help: "Resynchronisations from the merge core's snapshot after missed batches.",
	})
	s.batches = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meshd_gnmiserver_batches_total",
		Help: "Change batches applied to the served tree.",
	})
	ocs, ms, err := merge.Schemas()
	if err != nil {
		return nil, err
	}
	topts := []gnmitarget.Option{
		gnmitarget.WithModels(Models...),
		gnmitarget.WithSchema(ocs.RootSchema(), ms.RootSchema()),
		gnmitarget.WithEnumTypes(oc.ΛEnumTypes, mygot.ΛEnumTypes),
		gnmitarget.WithLogger(s.log),
		gnmitarget.WithMaxSubscriptionsPerClient(cfg.MaxSubscriptionsPerClient),
		gnmitarget.WithQueueSize(cfg.QueueSize),
		gnmitarget.WithMinSampleInterval(cfg.MinSampleInterval),
	}
	if cfg.TLSCert != "" {
		topts = append(topts, gnmitarget.WithTLS(cfg.TLSCert, cfg.TLSKey, cfg.TLSCA))
	}
	if cfg.Username != "" {
		topts = append(topts, gnmitarget.WithCredentials(cfg.Username, cfg.Password))
	}
	if s.reg != nil {
		for _, c := range []prometheus.Collector{s.resyncs, s.batches} {
			if err := s.reg.Register(c); err != nil {
				return nil, fmt.Errorf("gnmi-server: metrics: %w", err)
			}
		}
		topts = append(topts, gnmitarget.WithRegisterer(s.reg))
	}
	if s.srv, err = gnmitarget.New(topts...); err != nil {
		return nil, fmt.Errorf("gnmi-server: %w", err)
	}
	return s, nil
}

// Addr is the address served on, nil until Run is listening.
func (s *Sink) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Server is the underlying gNMI target.
func (s *Sink) Server() *gnmitarget.Server { return s.srv }

// Run serves gNMI and applies the batches of sub until ctx ends or sub is
// closed, then stops the server gracefully.
func (s *Sink) Run(ctx context.Context, sub *merge.Subscription) error {
	lis, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("gnmi-server: listen: %w", err)
	}
	s.mu.Lock()
	s.addr = lis.Addr()
	s.mu.Unlock()
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.srv.Serve(lis) }()
	s.log.Info("gnmi server listening", slog.String("addr", lis.Addr().String()),
		slog.Bool("tls", s.cfg.TLSCert != ""), slog.Bool("mtls", s.cfg.TLSCA != ""), slog.Bool("auth", s.cfg.Username != ""))
	defer s.srv.GracefulStop()

	a := &applier{s: s, sub: sub}
	a.resync()
	// A loss is reported by the next batch delivered; when none comes
	// (the fleet went quiet), this finds it.
	idle := time.NewTicker(lossCheck)
	defer idle.Stop()
	for !a.closed {
		select {
		case <-ctx.Done():
			return nil
		case err := <-serveErr:
			return fmt.Errorf("gnmi-server: serve: %w", err)
		case b, ok := <-sub.C():
			if !ok {
				return nil
			}
			a.take(b)
		case <-idle.C:
			a.checkLost()
		}
	}
	return nil
}

// lossCheck is how often an idle sink looks for a loss no batch reported.
const lossCheck = time.Second

// maxWrite bounds the updates one write gathers from the queue: enough
// that a burst (a fleet's initial sync) costs a write per thousands of
// leaves rather than one per notification, few enough that the first
// leaf of a write does not wait long for the last.
const maxWrite = 8192

// applier is Run's state: it moves the queue's batches into the served
// tree and resynchronises it from the merge core after a loss.
//
// A resync must not undo itself. Batches wait in the queue, so when one
// says others were lost, those behind it are older than a snapshot taken
// now, and applying them after it would take their leaves back in time
// (and show subscribers old values with old timestamps). And a resync
// that stops the queue for the whole fleet's snapshot loses the batches
// that come meanwhile, so the next one starts another: at 200 routers x
// 100 neighbors a resync took seconds, every one of them was followed by
// another, and subscribers got their updates seconds late. So:
//   - the resync goes one router at a time, reading the subscription's
//     Seq before the router's snapshot; the router's batches numbered up
//     to it are in the snapshot and are skipped when they come;
//   - between two routers it applies what has queued meanwhile;
//   - a loss reported by a batch is ignored when every dropped batch is
//     older than the last resync's start (Subscription.LostSeq): markers
//     of losses a resync already covered do not start another.
type applier struct {
	s      *Sink
	sub    *merge.Subscription
	closed bool
	buf    []change.Update
	// cuts are the last resync's Seq per router; cut0 is the Seq read
	// before it listed the routers, for routers it did not see (gone from
	// the core, their queued batches are older than the snapshot).
	cuts   map[string]uint64
	cut0   uint64
	maxCut uint64
	// lostSeen is set when a batch reported a loss the last resync does
	// not cover.
	lostSeen bool
	lost     uint64 // updates reported lost since the last resync
}

// take applies b and whatever else is queued (up to maxWrite updates) in
// one write, then resynchronises if a batch reported an uncovered loss.
func (a *applier) take(b change.Batch) {
	a.add(b)
	for len(a.buf) < maxWrite && !a.closed {
		select {
		case nb, ok := <-a.sub.C():
			if !ok {
				a.closed = true
				break
			}
			a.add(nb)
			continue
		default:
		}
		break
	}
	a.flush()
	a.checkLost()
}

// checkLost resynchronises if a batch the last resync does not cover was
// dropped.
func (a *applier) checkLost() {
	if a.lostSeen || a.sub.LostSeq() > a.cut0 {
		a.s.log.Warn("gnmi server missed changes; resynchronising from the merged state", slog.Uint64("lost", a.lost))
		a.resync()
	}
}

// add queues b's updates for the next write, less those the last resync
// already holds.
func (a *applier) add(b change.Batch) {
	a.s.batches.Inc()
	if b.Lost > 0 && a.sub.LostSeq() > a.cut0 {
		a.lostSeen = true
		a.lost += b.Lost
	}
	if b.Seq > a.maxCut {
		a.buf = append(a.buf, b.Updates...)
		return
	}
	for _, u := range b.Updates {
		cut, ok := a.cuts[u.Router]
		if !ok {
			cut = a.cut0
		}
		if b.Seq > cut {
			a.buf = append(a.buf, u)
		}
	}
}

// flush writes the gathered updates: every subscriber wakes once for them.
func (a *applier) flush() {
	if len(a.buf) == 0 {
		return
	}
	a.s.srv.UpdateMany(a.buf)
	clear(a.buf) // the values are the core's; do not keep them alive
	a.buf = a.buf[:0]
}

// drain applies what is queued now, without waiting.
func (a *applier) drain() {
	for !a.closed {
		select {
		case b, ok := <-a.sub.C():
			if !ok {
				a.closed = true
				break
			}
			a.add(b)
			if len(a.buf) >= maxWrite {
				a.flush()
			}
			continue
		default:
		}
		break
	}
	a.flush()
}

// resync makes the served tree equal to the merge core's, router by
// router, and repeats while batches it may not cover were lost meanwhile.
func (a *applier) resync() {
	for pass := 0; ; pass++ {
		a.s.resyncs.Inc()
		a.lostSeen, a.lost = false, 0
		cut0 := a.sub.Seq()
		names := a.s.snap.Routers()
		seen := make(map[string]bool, len(names))
		for _, n := range names {
			seen[n] = true
		}
		// Targets served but no longer held are replaced by their (empty)
		// snapshot, which removes them unless they came back meanwhile.
		for _, t := range a.s.srv.Targets() {
			if !seen[t] {
				names = append(names, t)
			}
		}
		cuts := make(map[string]uint64, len(names))
		// The skipping below must already use this pass's cuts, so that
		// the batches drained between routers are judged by them.
		a.cuts, a.cut0, a.maxCut = cuts, cut0, cut0
		for _, n := range names {
			cut := a.sub.Seq()
			ups := a.s.snap.Snapshot(n)
			cuts[n] = cut
			a.maxCut = max(a.maxCut, cut)
			a.s.srv.Replace(n, ups)
			a.drain()
		}
		if a.closed || a.sub.LostSeq() <= cut0 {
			return
		}
		a.s.log.Warn("gnmi server missed changes during a resynchronisation; again", slog.Int("pass", pass+1))
	}
}
