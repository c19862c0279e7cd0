package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/meshd/meshd/cluster"
	"github.com/meshd/meshd/config"
	"github.com/meshd/meshd/internal/ops"
	"github.com/meshd/meshd/internal/sessions"
	"github.com/meshd/meshd/merge"
	"github.com/meshd/meshd/monitor/alerts"
	"github.com/meshd/meshd/ribview"
	"github.com/meshd/meshd/rpki"
	"github.com/meshd/meshd/stage"
)

func init() { register(newRunCmd) }

func newRunCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run meshd: collect gNMI and BMP, merge, write to InfluxDB, serve gNMI",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			// The config's log settings apply unless given on the command line.
			if !cmd.Flags().Changed("log-level") && !cmd.Flags().Changed("log-format") {
				l, err := newLogger(cfg.Log.Level, cfg.Log.Format, os.Stderr)
				if err != nil {
					return err
				}
				slog.SetDefault(l)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, cfg)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "meshd.yaml", "config file")
	return cmd
}

// component is a running part of meshd that stops when its context ends.
type component struct {
	name string
	run  func(ctx context.Context) error
}

// run builds every part the config asks for, checks that each can start
// (listeners bound) before any runs, and runs them until ctx ends; then it
// stops sources first and drains sinks last.
func run(ctx context.Context, cfg *config.Config) error {
	log := slog.Default()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	applyMemoryLimit(log, cfg, reg)

	core, err := merge.New(merge.WithRegisterer(reg), merge.WithLogger(log))
	if err != nil {
		return err
	}
	opsSrv := ops.New(reg)
	h := cfg.HTTP
	sec := ops.Security{TLSCert: h.TLSCert, TLSKey: h.TLSKey, TLSCA: h.TLSCA, Username: h.Username, Password: h.Password}
	opsSrv.Secure(sec)
	if err := opsSrv.Listen(cfg.HTTP.Listen); err != nil {
		return err
	}

	if err := checkSections(cfg); err != nil {
		return err
	}
	env := stage.Env{Log: log, Registerer: reg, Ops: opsHooks{opsSrv}, Decode: decoder(cfg),
		Applier: core, State: core, Targets: targetHosts(cfg), RIBs: ribview.NewHub(reg)}
	var member *cluster.Member
	if len(cfg.Cluster.Endpoints) > 0 {
		if member, err = cluster.New(cfg.Cluster, log.With("part", "cluster")); err != nil {
			return err
		}
		defer member.Close()
		if err := member.Register(reg); err != nil {
			return err
		}
		env.Ownership = member
	}
	// Clustered, any replica's table answers for the fleet, as its gNMI
	// target does.
	var peers func() []string
	if member != nil {
		peers = member.HTTPPeers
	}
	// One client for the other replicas' listeners: FleetHandler bounds
	// its own reads (sessions.PeerTimeout); the status page's streams
	// last.
	client, scheme, err := sec.Client(0)
	if err != nil {
		return err
	}
	opsSrv.Handle("/api/sessions", sessions.FleetHandler(core, peers, client, scheme, log))
	if peers != nil {
		env.HTTPPeers, env.PeerHTTP, env.PeerScheme = peers, client, scheme
	}

	if cfg.RPKI.Enabled() {
		// Built before the sources: the BMP source validates its routes
		// against its table and follows its changes.
		if env.RPKI, err = rpki.NewManager(cfg.RPKI, log, reg); err != nil {
			return err
		}
	}
	var watch *alerts.Service
	if cfg.Monitor.Enabled() {
		// Built before the sources too: the BMP source hands it the
		// routes under watched prefixes.
		if watch, err = alerts.New(cfg.Monitor, core, log, reg); err != nil {
			return err
		}
		env.Routes = watch
	}
	// Sources bind their listeners when built: one that fails to build
	// releases those built before it (Run with a done context).
	var sources, sinks []component
	release := func() {
		done, cancel := context.WithCancel(context.Background())
		cancel()
		for _, c := range sources {
			_ = c.run(done)
		}
	}
	for _, info := range stage.Sources() {
		src, err := info.New(env)
		if err != nil {
			release()
			return fmt.Errorf("%s: %w", info.Name, err)
		}
		if src != nil {
			sources = append(sources, component{info.Name, src.Run})
		}
	}
	// Each sink gets its own queue on the core, closed once its Run has
	// drained.
	for _, info := range stage.Sinks() {
		snk, err := info.New(env)
		if err != nil {
			release()
			return fmt.Errorf("%s: %w", info.Name, err)
		}
		if snk == nil {
			continue
		}
		var opts []merge.SubscribeOption
		if info.Keys {
			opts = append(opts, merge.WithKeys())
		}
		if info.Wait {
			opts = append(opts, merge.WithWait(cfg.Merge.QueueWait))
		}
		feed := core.Subscribe(info.Name, cfg.Merge.QueueDepth, opts...)
		sinks = append(sinks, component{info.Name, func(ctx context.Context) error {
			defer feed.Close()
			return snk.Run(ctx, feed)
		}})
	}

	if env.RPKI != nil {
		// The validator caches' VRPs, followed over RTR beside the
		// sources (meshd_rpki_* metrics).
		sources = append(sources, component{"rpki", env.RPKI.Run})
	}
	if watch != nil {
		sources = append(sources, component{"monitor", watch.Run})
	}
	if member != nil {
		// With the sources: it starts and stops their targets, and on
		// the way out gives them up and revokes its lease, so the other
		// replicas take them at once.
		sources = append(sources, component{"cluster", member.Run})
	}
	log.Info("meshd running", slog.String("http", opsSrv.Addr()), slog.Int("sources", len(sources)), slog.Int("sinks", len(sinks)))
	var errs []error
	var mu sync.Mutex
	fail := func(name string, err error) {
		if err != nil && !errors.Is(err, context.Canceled) {
			mu.Lock()
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			mu.Unlock()
		}
	}
	go func() { fail("http", opsSrv.Serve()) }()

	// Sinks get their own context so they keep draining while sources stop.
	sinkCtx, stopSinks := context.WithCancel(context.Background())
	var sinkWG, srcWG sync.WaitGroup
	for _, c := range sinks {
		sinkWG.Add(1)
		go func(c component) { defer sinkWG.Done(); fail(c.name, c.run(sinkCtx)) }(c)
	}
	srcCtx, stopSources := context.WithCancel(ctx)
	for _, c := range sources {
		srcWG.Add(1)
		go func(c component) { defer srcWG.Done(); fail(c.name, c.run(srcCtx)) }(c)
	}
	<-ctx.Done()
	log.Info("shutting down: stopping sources, then draining sinks")
	stopSources()
	srcWG.Wait()
	stopSinks()
	done := make(chan struct{})
	go func() { sinkWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		errs = append(errs, errors.New("sinks did not drain within 30s"))
	}
	shCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = opsSrv.Shutdown(shCtx)
	mu.Lock()
	defer mu.Unlock()
	return errors.Join(errs...)
}
