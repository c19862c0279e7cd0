package main

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/config"
)

// applyMemoryLimit sets the Go runtime's soft memory limit from the
// config's memory-limit, unless GOMEMLIMIT is in the environment: the
// runtime has applied that at start, and it wins, as it does for every
// Go program. It logs the limit in force and exposes it as
// meshd_memory_limit_bytes (0 for none).
func applyMemoryLimit(log *slog.Logger, cfg *config.Config, reg prometheus.Registerer) {
	from := "GOMEMLIMIT"
	if env, ok := os.LookupEnv("GOMEMLIMIT"); !ok || env == "" {
		var n int64
		n, from = cfg.MemoryLimitBytes()
		if n <= 0 {
			n = math.MaxInt64 // the runtime's "no limit"
		}
		debug.SetMemoryLimit(n)
	}
	current := func() int64 {
		if n := debug.SetMemoryLimit(-1); n != math.MaxInt64 {
			return n
		}
		return 0
	}
	if n := current(); n > 0 {
		log.Info("memory limit", slog.Int64("bytes", n), slog.Float64("MiB", math.Round(float64(n)/(1<<20))), slog.String("from", from))
	} else {
		log.Info("memory limit: none", slog.String("from", from))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "meshd_memory_limit_bytes",
		Help: "The Go runtime's soft memory limit (memory-limit in the config, or GOMEMLIMIT); 0 for none.",
	}, func() float64 { return float64(current()) }))
}
