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

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ondatra/gnmi/oc"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/gnmitarget"
	"github.com/meshd/meshd/merge"
	mygot "github.com/meshd/meshd/ygot"
)

// Snapshotter gives the merged state in full, for a resynchronisation
// after the sink missed batches. *merge.Core implements it.
type Snapshotter interface {
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

	s.resync()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-serveErr:
			return fmt.Errorf("gnmi-server: serve: %w", err)
		case b, ok := <-sub.C():
			if !ok {
				return nil
			}
			s.Apply(b)
		}
	}
}

// Apply applies one batch: its updates per router, or, when the batch
// says batches were lost, a full resynchronisation from the snapshot.
func (s *Sink) Apply(b change.Batch) {
	s.batches.Inc()
	if b.Lost > 0 {
		s.log.Warn("gnmi server missed changes; resynchronising from the merged state", slog.Uint64("lost", b.Lost))
		s.resync()
		return
	}
	// One write for the whole batch: every subscriber wakes once for it.
	s.srv.UpdateMany(b.Updates)
}

// resync makes the served tree equal to the merge core's snapshot.
func (s *Sink) resync() {
	s.resyncs.Inc()
	snap := s.snap.Snapshot("")
	seen := map[string]bool{}
	for i := 0; i < len(snap); {
		j := i + 1
		for j < len(snap) && snap[j].Router == snap[i].Router {
			j++
		}
		seen[snap[i].Router] = true
		s.srv.Replace(snap[i].Router, snap[i:j])
		i = j
	}
	for _, t := range s.srv.Targets() {
		if !seen[t] {
			s.srv.DeleteTarget(t)
		}
	}
}
