package bmpbridge

import (
	"context"
	"net/netip"

	"github.com/meshd/meshd/stage"
)

func init() { stage.RegisterSource(stage.SourceInfo{Name: "bmp", New: newSource}) }

// newSource builds the BMP listener the bmp section asks for, bound
// already, so a port in use fails meshd's start.
func newSource(env stage.Env) (stage.Source, error) {
	var cfg Config
	if ok, err := env.Decode("bmp", &cfg); err != nil || !ok || len(cfg.Listen) == 0 {
		return nil, err
	}
	opts := []Option{WithConfig(cfg), WithLogger(env.Log.With("part", "bmp")), WithRegisterer(env.Registerer)}
	if p, ok := env.Ownership.(stage.Placement); ok {
		opts = append(opts, WithPlacement(p))
	}
	for name, host := range env.Targets {
		opts = append(opts, WithTargets(name))
		// A router exporting BMP from the address meshd reaches its
		// gNMI at joins its gNMI record whatever its sysName. (A host
		// name is not resolved: give the router an alias instead.)
		if ip, err := netip.ParseAddr(host); err == nil {
			opts = append(opts, WithTargetAddress(name, ip))
		}
	}
	if env.RPKI != nil {
		opts = append(opts, WithRPKI(env.RPKI.Table))
	}
	if env.Routes != nil {
		opts = append(opts, WithObserver(env.Routes))
	}
	b, err := New(env.Applier, opts...)
	if err != nil {
		return nil, err
	}
	if env.RPKI != nil {
		env.RPKI.Follow(b.Revalidate)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := b.Listen(ctx); err != nil {
		cancel()
		return nil, err
	}
	return &source{b: b, cancel: cancel}, nil
}

type source struct {
	b      *Bridge
	cancel context.CancelFunc
}

// Run serves until ctx ends, then closes every session: each hands what
// it holds to the core before Run returns.
func (s *source) Run(ctx context.Context) error {
	<-ctx.Done()
	s.cancel()
	return s.b.Close()
}
