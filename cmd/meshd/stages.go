package main

import (
	"fmt"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/meshd/meshd/config"
	"github.com/meshd/meshd/config/yamlcheck"
	"github.com/meshd/meshd/internal/ops"
	"github.com/meshd/meshd/stage"

	// The stages meshd run can build: each registers itself (package
	// stage). A new source or sink is one more line here.
	_ "github.com/meshd/meshd/bmpbridge"
	_ "github.com/meshd/meshd/gnmiclient"
	_ "github.com/meshd/meshd/sinks/gnmiserver"
	_ "github.com/meshd/meshd/sinks/influx"
	_ "github.com/meshd/meshd/sinks/jsonl"
	_ "github.com/meshd/meshd/sinks/web"
)

// decoder gives the stages their config sections (stage.Env.Decode): a
// section config.Config has a typed field for is that value, as
// config.Load filled in and checked it; any other is the entry of the
// same name under sinks: or sources:, decoded strictly.
func decoder(cfg *config.Config) func(section string, v any) (bool, error) {
	return func(section string, v any) (bool, error) {
		dst := reflect.ValueOf(v)
		if dst.Kind() != reflect.Pointer || dst.IsNil() {
			return false, fmt.Errorf("config section %q: decode into %T, not a pointer", section, v)
		}
		if f, ok := typedSection(reflect.ValueOf(cfg).Elem(), section, dst.Elem().Type()); ok {
			dst.Elem().Set(f)
			return true, nil
		}
		if f, ok := typedSection(reflect.ValueOf(cfg).Elem(), section, nil); ok {
			return true, fmt.Errorf("config section %q holds a %s, not a %s", section, f.Type(), dst.Elem().Type())
		}
		for _, m := range []struct {
			name string
			m    map[string]any
		}{{"sinks", cfg.Sinks}, {"sources", cfg.Sources}} {
			raw, ok := m.m[section]
			if !ok {
				continue
			}
			text, err := yaml.Marshal(raw)
			if err != nil {
				return true, fmt.Errorf("%s.%s: %w", m.name, section, err)
			}
			if err := yamlcheck.Decode(text, v); err != nil {
				return true, fmt.Errorf("%s.%s: %w", m.name, section, err)
			}
			return true, nil
		}
		return false, nil
	}
}

// typedSection finds the field of c (through inline fields) whose YAML key
// is section ("" for an inline one) and whose type is t (any type for nil).
func typedSection(c reflect.Value, section string, t reflect.Type) (reflect.Value, bool) {
	ct := c.Type()
	for i := range ct.NumField() {
		f := ct.Field(i)
		name, flags, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		inline := slices.Contains(strings.Split(flags, ","), "inline")
		if inline && section == "" && (t == nil || f.Type == t) && f.IsExported() {
			return c.Field(i), true
		}
		if inline && f.Type.Kind() == reflect.Struct {
			if v, ok := typedSection(c.Field(i), section, t); ok {
				return v, true
			}
			continue
		}
		if !inline && name == section && section != "" && (t == nil || f.Type == t) && f.IsExported() {
			return c.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// checkSections refuses an entry under sinks: or sources: that names no
// registered stage of that kind: a typo would otherwise be a sink that
// silently never runs.
func checkSections(cfg *config.Config) error {
	var sinks, sources []string
	for _, s := range stage.Sinks() {
		sinks = append(sinks, s.Name)
	}
	for _, s := range stage.Sources() {
		sources = append(sources, s.Name)
	}
	for _, k := range []struct {
		name  string
		m     map[string]any
		known []string
	}{{"sinks", cfg.Sinks, sinks}, {"sources", cfg.Sources, sources}} {
		for name := range k.m {
			if !slices.Contains(k.known, name) {
				return fmt.Errorf("config: %s.%s: no such %s (known: %s)", k.name, name, strings.TrimSuffix(k.name, "s"), strings.Join(k.known, ", "))
			}
		}
	}
	return nil
}

// targetHosts are the gNMI targets the config names, with the host of
// their address (config.Load filled in and checked the host:port).
func targetHosts(cfg *config.Config) map[string]string {
	out := map[string]string{}
	for name, t := range cfg.GNMI.Targets {
		host, _, _ := net.SplitHostPort(t.Address)
		out[name] = host
	}
	return out
}

// opsHooks is the ops server as stage.Ops.
type opsHooks struct{ s *ops.Server }

func (o opsHooks) Handle(pattern string, h http.Handler)    { o.s.Handle(pattern, h) }
func (o opsHooks) AddCheck(name string, check func() error) { o.s.AddCheck(name, check) }
