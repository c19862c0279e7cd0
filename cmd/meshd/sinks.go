package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/config"
	"github.com/meshd/meshd/internal/ops"
	"github.com/meshd/meshd/merge"
	"github.com/meshd/meshd/sinks/gnmiserver"
	"github.com/meshd/meshd/sinks/influx"
)

// buildSinks creates the sinks the config asks for, each with its own
// queue on the merge core.
func buildSinks(_ context.Context, cfg *config.Config, core *merge.Core, reg prometheus.Registerer, opsSrv *ops.Server) ([]component, error) {
	var out []component
	if cfg.InfluxEnabled() {
		s, err := influx.New(cfg.Influx, influx.WithRegisterer(reg), influx.WithLogger(slog.Default().With("part", "influx")),
			influx.WithSnapshotter(core))
		if err != nil {
			return nil, err
		}
		opsSrv.AddCheck("influxdb", s.Err)
		sub := core.Subscribe("influx", cfg.Merge.QueueDepth)
		out = append(out, component{"influxdb sink", func(ctx context.Context) error {
			err := s.Run(ctx, sub)
			sub.Close()
			cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			return errors.Join(err, s.Close(cctx))
		}})
	}
	if cfg.GNMIServerEnabled() {
		g, err := gnmiserver.New(cfg.GNMIServer, core, gnmiserver.WithRegisterer(reg), gnmiserver.WithLogger(slog.Default().With("part", "gnmi-server")))
		if err != nil {
			return nil, err
		}
		sub := core.Subscribe("gnmi-server", cfg.Merge.QueueDepth, merge.WithKeys())
		out = append(out, component{"gnmi server", func(ctx context.Context) error {
			defer sub.Close()
			return g.Run(ctx, sub)
		}})
	}
	return out, nil
}
