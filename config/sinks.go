package config

import (
	"github.com/meshd/meshd/sinks/influx"
)

// sinkSections holds the sinks' sections.
type sinkSections struct {
	Influx influx.Config `yaml:"influxdb"`
}

// InfluxEnabled reports whether the InfluxDB sink is configured.
func (s *sinkSections) InfluxEnabled() bool { return s.Influx.URL != "" }

func (s *sinkSections) setDefaults() {
	if s.InfluxEnabled() {
		s.Influx.SetDefaults()
	}
}

func (s *sinkSections) validate() []error {
	var errs []error
	if s.InfluxEnabled() {
		errs = append(errs, s.Influx.Validate())
	}
	return errs
}
