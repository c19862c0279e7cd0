package bmpbridge

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/meshd/meshd/bmpbridge/decode"
)

// Config is the BMP listener's configuration (the `bmp:` section).
type Config struct {
	// Listen holds TCP addresses to accept BMP sessions on, e.g.
	// ":11019" or "[::]:11019".
	Listen []string `yaml:"listen"`
	// Aliases maps a router name (the gNMI target name) to the sysNames
	// and source addresses its BMP sessions may arrive with.
	Aliases map[string][]string `yaml:"aliases"`
	// VRFs maps a route distinguisher ("65000:1", "10.0.0.1:5") to a
	// network-instance name, for RD and Loc-RIB peers whose Peer Up has
	// no VRF/table-name TLV.
	VRFs map[string]string `yaml:"vrfs"`
	// MaxRouters bounds concurrent BMP sessions; 0 means no bound.
	MaxRouters int `yaml:"max-routers"`
	// MaxMessageSize is the largest BMP message accepted, in bytes.
	MaxMessageSize int `yaml:"max-message-size"`
	// FlushInterval is how often route counters are written to the
	// merge core and pending route events are emitted.
	FlushInterval time.Duration `yaml:"flush-interval"`
	// History is how many Peer Up/Down events are kept per neighbor.
	History int `yaml:"history"`
	// RouteEvents turns per-route events (announce/withdraw) on; counts
	// and origin-change events are kept either way.
	RouteEvents *bool `yaml:"route-events"`
	// StaleTimeout is how long after a BMP reconnect the router has to
	// re-announce (Peer Up or routes) the peers meshd knew; peers it has
	// not re-announced by then are expired and their routes cleared.
	StaleTimeout time.Duration `yaml:"stale-timeout"`
}

// DefaultPort is the BMP port IANA assigned (RFC 7854 leaves it open;
// 11019 is common practice, gobgp's default).
const DefaultPort = 11019

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = decode.MaxMessage
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
	if c.History == 0 {
		c.History = 16
	}
	if c.StaleTimeout == 0 {
		c.StaleTimeout = 2 * time.Minute
	}
	if c.RouteEvents == nil {
		t := true
		c.RouteEvents = &t
	}
}

// Validate checks the configuration; errors name the field.
func (c *Config) Validate() error {
	var errs []error
	for i, l := range c.Listen {
		if _, _, err := net.SplitHostPort(l); err != nil {
			errs = append(errs, fmt.Errorf("bmp.listen[%d]: %q: %v", i, l, err))
		}
	}
	seen := map[string]string{}
	for name, as := range c.Aliases {
		if name == "" {
			errs = append(errs, errors.New("bmp.aliases: empty router name"))
		}
		for _, a := range as {
			if other, dup := seen[a]; dup && other != name {
				errs = append(errs, fmt.Errorf("bmp.aliases: %q is an alias of both %q and %q", a, other, name))
			}
			seen[a] = name
		}
	}
	for rd, ni := range c.VRFs {
		if ni == "" {
			errs = append(errs, fmt.Errorf("bmp.vrfs[%s]: empty network-instance name", rd))
		}
	}
	if c.MaxRouters < 0 {
		errs = append(errs, errors.New("bmp.max-routers: must be >= 0"))
	}
	if c.MaxMessageSize != 0 && (c.MaxMessageSize < 4096 || c.MaxMessageSize > 16<<20) {
		errs = append(errs, errors.New("bmp.max-message-size: must be between 4096 and 16777216"))
	}
	if c.FlushInterval < 0 {
		errs = append(errs, errors.New("bmp.flush-interval: must be > 0"))
	}
	if c.StaleTimeout < 0 {
		errs = append(errs, errors.New("bmp.stale-timeout: must be > 0"))
	}
	if c.History < 0 {
		errs = append(errs, errors.New("bmp.history: must be >= 0"))
	}
	return errors.Join(errs...)
}
