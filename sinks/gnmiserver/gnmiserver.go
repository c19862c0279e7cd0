// Package gnmiserver is meshd's re-serve sink: it keeps a gnmitarget store
// current from the merge core's change stream, one gNMI target per router.
//
// Get's JSON and JSON_IETF values are not rendered from that store but by
// ygot from the merge core's generated structs (render.go, through
// stage.Trees): the structs are the one store of the merged values, and
// ygot's RFC 7951 encoder is the field's reference. It is the slow way:
// BenchmarkGet's router of 100 neighbors takes 80-160 ms a JSON_IETF Get
// against 7-13 ms rendered from the served tree's leaves (15x the
// allocations), one neighbor's state 1.4-1.8 ms against 0.25-0.36 ms, on
// this 2-core machine under load. The router's lock is held only while
// the asked-for structs are copied (9 ms for the whole router), so its
// sources wait no longer than they did for the served tree's lock. The store finds which
// nodes a Get's path matches, serves PROTO and every subscription: its
// index of nodes is what per-leaf change fan-out needs; the value it
// keeps beside is 40 of the 366 bytes a leaf costs there (gnmitarget's
// BenchmarkStoreHeap).
//
// It starts from the core's snapshot, router by router, then takes the
// core's batches as they are published, in the sources' goroutines
// (merge.Subscription.Deliver), not from a queue: the store's write is
// bounded in-memory work (each subscriber has a coalescing queue of its
// own, so a slow subscriber delays no one), and a sink goroutine fed by a
// queue was starved by the collector goroutines during a fleet's sync,
// lost batches and resynchronised for tens of seconds, during which
// subscribers got updates seconds late. A re-served update keeps the
// timestamp its source gave it.
package gnmiserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/goyang/pkg/yang"
	"github.com/openconfig/ondatra/gnmi/oc"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/gnmitarget"
	"github.com/meshd/meshd/ribview"
	"github.com/meshd/meshd/schema"
	"github.com/meshd/meshd/sinks/mirror"
	"github.com/meshd/meshd/stage"
	mygot "github.com/meshd/meshd/ygot"
)

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

// WithRIBs serves the routers' RIBs under their bgp/rib paths
// (openconfig-rib-bgp) from h.
func WithRIBs(h *ribview.Hub) Option { return func(s *Sink) { s.ribs = h } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Sink) { s.log = l } }

// Sink serves the merged tree over gNMI.
type Sink struct {
	cfg  Config
	snap stage.Snapshotter
	srv  *gnmitarget.Server
	reg  prometheus.Registerer
	log  *slog.Logger
	// place and fwd: cluster mode, where Get answers for the whole fleet
	// (forward.go).
	place stage.Placement
	fwd   *forwarder
	ribs  *ribview.Hub

	resyncs prometheus.Counter
	batches prometheus.Counter

	mu   sync.Mutex
	addr net.Addr
}

// New validates cfg and builds the sink; Run starts serving.
func New(cfg Config, snap stage.Snapshotter, opts ...Option) (*Sink, error) {
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
	ocs, ms, err := schema.Schemas()
	if err != nil {
		return nil, err
	}
	topts := []gnmitarget.Option{
		gnmitarget.WithModels(Models...),
		gnmitarget.WithSchema(ocs.RootSchema(), ms.RootSchema()),
		gnmitarget.WithEnumTypes(oc.ΛEnumTypes, mygot.ΛEnumTypes),
		gnmitarget.WithLogger(s.log),
		gnmitarget.WithMaxSubscriptionsPerClient(cfg.MaxSubscriptionsPerClient),
		gnmitarget.WithMaxSubscriptions(max(cfg.MaxSubscriptions, 0)),
		gnmitarget.WithMaxRecvMsgSize(cfg.MaxRecvMsgSize),
		gnmitarget.WithMaxSendMsgSize(cfg.MaxSendMsgSize),
		gnmitarget.WithQueueSize(cfg.QueueSize),
		gnmitarget.WithQueueBytes(max(cfg.QueueBytes, 0)),
		gnmitarget.WithMinSampleInterval(cfg.MinSampleInterval),
	}
	if trees, ok := snap.(stage.Trees); ok {
		r := &treeRenderer{trees: trees, schemas: []*yang.Entry{ocs.RootSchema(), ms.RootSchema()}}
		topts = append(topts, gnmitarget.WithRenderer(r.render))
	}
	if cfg.TLSCert != "" {
		topts = append(topts, gnmitarget.WithTLS(cfg.TLSCert, cfg.TLSKey, cfg.TLSCA))
	}
	if cfg.Username != "" {
		topts = append(topts, gnmitarget.WithCredentials(cfg.Username, cfg.Password))
	}
	if s.ribs != nil {
		topts = append(topts, gnmitarget.WithSubtree(ribSubtree{s.ribs}))
	}
	if s.place != nil {
		s.fwd = &forwarder{place: s.place, cfg: cfg}
		topts = append(topts, gnmitarget.WithCluster(s.fwd))
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
func (s *Sink) Run(ctx context.Context, sub stage.Feed) error {
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
	if s.fwd != nil {
		defer s.fwd.close()
	}

	// Serve what the core holds, then take batches as the core publishes
	// them, in its sources' goroutines (package mirror).
	m := mirror.Metrics{Resyncs: s.resyncs, Batches: s.batches}
	if !mirror.Follow(sub, s.snap, storeCopy{s.srv}, m, s.log.With(slog.String("part", "gnmi-server"))) {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-serveErr:
			return fmt.Errorf("gnmi-server: serve: %w", err)
		case _, ok := <-sub.C(): // nothing comes; closed by Close
			if !ok {
				return nil
			}
		}
	}
}

// storeCopy is the served tree as the mirror writes it; events are no
// part of it.
type storeCopy struct{ *gnmitarget.Server }

func (c storeCopy) Write(ups []change.Update, _ []change.Event) { c.UpdateMany(ups) }
func (c storeCopy) Routers() []string                           { return c.Targets() }
