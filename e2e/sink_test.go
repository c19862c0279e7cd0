package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/merge"
	"github.com/meshd/meshd/sinks/gnmiserver"
)

// startSink runs meshd's gNMI target (the gnmi-server sink) over core
// with cfg, as `meshd run` wires it, until ctx ends or the test does; the
// test's cleanup waits for it and reports its error. It returns once the
// sink listens.
func startSink(t *testing.T, ctx context.Context, core *merge.Core, cfg gnmiserver.Config, reg prometheus.Registerer, opts ...gnmiserver.Option) *gnmiserver.Sink {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	sink, err := gnmiserver.New(cfg, core, append([]gnmiserver.Option{gnmiserver.WithRegisterer(reg)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	sub := core.Subscribe("gnmi-server", 1024, merge.WithKeys())
	done := make(chan error, 1)
	go func() { done <- sink.Run(ctx, sub) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gNMI sink: %v", err)
		}
		sub.Close()
	})
	testenv.WaitFor(t, 5*time.Second, "meshd's gNMI target listening", func() bool { return sink.Addr() != nil })
	return sink
}
