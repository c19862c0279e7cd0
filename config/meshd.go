package config

import (
	"errors"
	"github.com/meshd/meshd/bmpbridge"
	"github.com/meshd/meshd/cluster"
	"github.com/meshd/meshd/gnmiclient"
	"github.com/meshd/meshd/monitor"
	"github.com/meshd/meshd/peering"
	"github.com/meshd/meshd/rpki"
	"strings"
)

// Config is meshd's whole configuration. A part whose section is absent
// (no bmp.listen, no influxdb.url, no gnmi-server.listen, no targets) is
// not started.
type Config struct {
	Log   Log   `yaml:"log"`
	HTTP  HTTP  `yaml:"http"`
	Merge Merge `yaml:"merge"`
	// MemoryLimit is the Go runtime's soft memory limit: a size (1GiB,
	// 800MiB), 0 or off for none, or auto (the default): see memlimit.go.
	MemoryLimit string `yaml:"memory-limit"`
	// The gNMI collector's keys (targets, targets-file, subscriptions,
	// defaults) sit at the top level, as in gnmic's config.
	GNMI gnmiclient.Config `yaml:",inline"`
	BMP  bmpbridge.Config  `yaml:"bmp"`
	// Cluster shares the gNMI targets among replicas through etcd; no
	// endpoints: this meshd collects every target.
	Cluster cluster.Config `yaml:"cluster"`
	// RPKI names the validator caches whose VRPs meshd follows over RTR;
	// none: no origin validation.
	RPKI rpki.Config `yaml:"rpki"`
	// Monitor watches the operator's prefixes in the routes the routers'
	// BMP RIBs hold, and raises alerts; none: no alerts.
	Monitor monitor.Config `yaml:"monitor"`
	// Peering lists the routers meshd peers with over BGP as a route
	// collector (routers without BMP); their routes join the BMP RIBs.
	Peering      peering.Config `yaml:"peering"`
	sinkSections `yaml:",inline"`
}

// Load reads a config file, expands ${ENV}, applies defaults and
// validates it. Every problem found is reported, each naming its field.
func Load(path string) (*Config, error) {
	c := &Config{}
	if err := readFile(path, c); err != nil {
		return nil, err
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, fileError(path, err)
	}
	return c, nil
}

// SetDefaults fills in what the file leaves out.
func (c *Config) SetDefaults() {
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = "127.0.0.1:9100"
	}
	if c.MemoryLimit == "" {
		c.MemoryLimit = MemoryLimitAuto
	}
	if c.Merge.QueueDepth == 0 {
		c.Merge.QueueDepth = 4096
	}
	if c.Merge.QueueWait == 0 {
		c.Merge.QueueWait = DefaultQueueWait
	}
	c.GNMI.SetDefaults()
	c.BMP.SetDefaults()
	c.Cluster.SetDefaults()
	c.Peering.SetDefaults()
	c.sinkSections.setDefaults()
}

// Validate checks every section.
func (c *Config) Validate() error {
	errs := []error{c.Log.Validate(), c.HTTP.Validate(), c.GNMI.Validate(), c.BMP.Validate(), c.Cluster.Validate(), c.RPKI.Validate(), c.Monitor.Validate(), c.Peering.Validate()}
	if c.Merge.QueueDepth < 1 {
		errs = append(errs, fieldErr("merge.queue-depth", "must be >= 1"))
	}
	if _, err := ParseMemoryLimit(c.MemoryLimit); err != nil {
		errs = append(errs, fieldErr("memory-limit", "%v", err))
	}
	errs = append(errs, c.sinkSections.validate()...)
	if h := &c.HTTP; !c.StatusPage.Disable && h.Validate() == nil && !h.Loopback() && !h.Secure() && !h.AllowInsecure {
		var missing []string
		if h.TLSCert == "" {
			missing = append(missing, "tls-cert", "tls-key")
		}
		if h.Username == "" {
			missing = append(missing, "username", "password")
		}
		errs = append(errs, fieldErr("http.listen", "%q serves the status page and its API beyond loopback without TLS and credentials: set http.%s, or http.allow-insecure: true to accept the risk, or status-page.disable: true",
			h.Listen, strings.Join(missing, ", http.")))
	}
	return errors.Join(errs...)
}
