package gnmiserver

import "github.com/meshd/meshd/stage"

// The served tree is kept by path key: the feed carries them.
func init() {
	stage.RegisterSink(stage.SinkInfo{Name: "gnmi-server", New: newStageSink, Keys: true})
}

// newStageSink builds the gNMI target when the gnmi-server section names
// a listen address; Run listens.
func newStageSink(env stage.Env) (stage.Sink, error) {
	var cfg Config
	if ok, err := env.Decode("gnmi-server", &cfg); err != nil || !ok || cfg.Listen == "" {
		return nil, err
	}
	opts := []Option{WithRegisterer(env.Registerer), WithLogger(env.Log.With("part", "gnmi-server"))}
	if p, ok := env.Ownership.(stage.Placement); ok {
		opts = append(opts, WithPlacement(p))
	}
	if env.RIBs != nil {
		opts = append(opts, WithRIBs(env.RIBs))
	}
	s, err := New(cfg, env.State, opts...)
	if err != nil {
		return nil, err
	}
	return s, nil
}
