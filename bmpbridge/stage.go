package bmpbridge

import (
	"context"
	"errors"
	"net/netip"

	"github.com/meshd/meshd/peering"
	"github.com/meshd/meshd/stage"
)

func init() { stage.RegisterSource(stage.SourceInfo{Name: "bmp", New: newSource}) }

// newSource builds the BMP listener the bmp section asks for, bound
// already, so a port in use fails meshd's start, and the peering source
// (the peering section), whose BGP sessions reach the same bridge as
// BMP streams made in process.
func newSource(env stage.Env) (stage.Source, error) {
	var cfg Config
	ok, err := env.Decode("bmp", &cfg)
	if err != nil {
		return nil, err
	}
	var pcfg peering.Config
	if _, err := env.Decode("peering", &pcfg); err != nil {
		return nil, err
	}
	if (!ok || len(cfg.Listen) == 0) && !pcfg.Enabled() {
		return nil, nil
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
	if env.RIBs != nil {
		opts = append(opts, WithRIBHub(env.RIBs))
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
	src := &source{b: b, cancel: cancel}
	if pcfg.Enabled() {
		if src.peer, err = peering.New(pcfg, b, env.Log, env.Registerer); err != nil {
			cancel()
			b.Close()
			return nil, err
		}
	}
	return src, nil
}

type source struct {
	b      *Bridge
	peer   *peering.Source
	cancel context.CancelFunc
}

// Run serves until ctx ends, then closes every session: each hands what
// it holds to the core before Run returns.
func (s *source) Run(ctx context.Context) error {
	var perr error
	if s.peer != nil {
		pctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.peer.Run(pctx) }()
		select {
		case <-ctx.Done():
			perr = <-done
		case perr = <-done:
			// The peering failed: the BMP listener goes on (meshd's
			// start checked the configuration and bound the ports).
			if perr != nil {
				s.b.log.Error("peering source stopped", "error", perr)
			}
			<-ctx.Done()
		}
		stop()
	} else {
		<-ctx.Done()
	}
	s.cancel()
	return errors.Join(perr, s.b.Close())
}
