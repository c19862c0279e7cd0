package influx

import (
	"context"
	"errors"
	"time"

	"github.com/meshd/meshd/stage"
)

// Registered as influx, its queue's name in meshd_merge_dropped_total
// {consumer}; its config section is influxdb. It asks for the core's
// wait (merge.queue-wait): it reads the store only with TryReadRouter.
func init() { stage.RegisterSink(stage.SinkInfo{Name: "influx", New: newStageSink, Wait: true}) }

// drainTimeout bounds the writes Close waits for at shutdown.
const drainTimeout = 20 * time.Second

// newStageSink builds the sink when the influxdb section names a URL; it
// is ready (/readyz) while InfluxDB takes its writes.
func newStageSink(env stage.Env) (stage.Sink, error) {
	var cfg Config
	if ok, err := env.Decode("influxdb", &cfg); err != nil || !ok || cfg.URL == "" {
		return nil, err
	}
	s, err := New(cfg, WithRegisterer(env.Registerer), WithLogger(env.Log.With("part", "influx")), WithSnapshotter(env.State))
	if err != nil {
		return nil, err
	}
	if env.Ops != nil {
		env.Ops.AddCheck("influxdb", s.Err)
	}
	return stageSink{s}, nil
}

type stageSink struct{ s *Sink }

// Run consumes feed until ctx ends, then writes out what the spool holds
// within drainTimeout.
func (x stageSink) Run(ctx context.Context, feed stage.Feed) error {
	err := x.s.Run(ctx, feed)
	cctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	return errors.Join(err, x.s.Close(cctx))
}
