package config

import (
	"github.com/meshd/meshd/sinks/gnmiserver"
	"github.com/meshd/meshd/sinks/influx"
	"github.com/meshd/meshd/sinks/web"
)

// sinkSections holds the sinks' sections.
type sinkSections struct {
	Influx     influx.Config     `yaml:"influxdb"`
	GNMIServer gnmiserver.Config `yaml:"gnmi-server"`
	// StatusPage is the page on the HTTP listener, on unless disabled.
	StatusPage web.Config `yaml:"status-page"`

	// Sinks and Sources hold the sections of the stages registered
	// with package stage that have no typed section above (a new sink
	// needs no change here): each is decoded, and checked, by its own
	// stage when meshd run builds it (stage.Env.Decode).
	Sinks   map[string]any `yaml:"sinks"`
	Sources map[string]any `yaml:"sources"`
}

// InfluxEnabled reports whether the InfluxDB sink is configured.
func (s *sinkSections) InfluxEnabled() bool { return s.Influx.URL != "" }

// GNMIServerEnabled reports whether meshd's own gNMI target is configured.
func (s *sinkSections) GNMIServerEnabled() bool { return s.GNMIServer.Listen != "" }

func (s *sinkSections) setDefaults() {
	if s.InfluxEnabled() {
		s.Influx.SetDefaults()
	}
	if s.GNMIServerEnabled() {
		s.GNMIServer.SetDefaults()
	}
	s.StatusPage.SetDefaults()
}

func (s *sinkSections) validate() []error {
	var errs []error
	if s.InfluxEnabled() {
		errs = append(errs, s.Influx.Validate())
	}
	if s.GNMIServerEnabled() {
		errs = append(errs, s.GNMIServer.Validate())
	}
	return append(errs, s.StatusPage.Validate())
}
