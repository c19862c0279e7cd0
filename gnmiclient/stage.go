package gnmiclient

import (
	"encoding/json"
	"net/http"

	"github.com/meshd/meshd/stage"
)

func init() { stage.RegisterSource(stage.SourceInfo{Name: "gnmi", New: newSource}) }

// newSource builds the gNMI collector when the config names targets
// (its keys are at the top of meshd.yaml), and serves its targets'
// status at /api/gnmi/targets.
func newSource(env stage.Env) (stage.Source, error) {
	var cfg Config
	if ok, err := env.Decode("", &cfg); err != nil || !ok || (len(cfg.Targets) == 0 && cfg.TargetsFile == "") {
		return nil, err
	}
	opts := []Option{WithLogger(env.Log.With("part", "gnmi")), WithRegisterer(env.Registerer)}
	if env.Ownership != nil {
		opts = append(opts, WithOwnership(env.Ownership))
	}
	c, err := New(cfg, env.Applier, opts...)
	if err != nil {
		return nil, err
	}
	if env.Ops != nil {
		env.Ops.Handle("/api/gnmi/targets", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(c.Status())
		}))
	}
	return c, nil
}
