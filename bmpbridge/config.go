package bmpbridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
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
	// Allow lists the source prefixes (CIDRs, or bare addresses) BMP
	// sessions may come from; a connection from elsewhere is closed at
	// accept and counted in meshd_bmp_refused_total{reason="not_allowed"}.
	// Empty (the default) allows every source.
	Allow []string `yaml:"allow"`
	// MaxRouters bounds the routers with a BMP session open at once
	// (routers, by the name a session's Initiation gives it, not
	// connections: a router's second connection, as in a reconnect race,
	// counts once). A new router over it is refused at its Initiation;
	// and at most twice this many connections may wait for their
	// Initiation at once. 0 (the default) is no bound.
	MaxRouters int `yaml:"max-routers"`
	// MaxMessagesPerSecond and MaxBytesPerSecond are a router's rate
	// budget, over all its sessions (token buckets holding one second's
	// worth). A router over it is paced, not cut: meshd stops reading its
	// sessions until the budget refills, and TCP flow control slows the
	// router; nothing is dropped. The time spent paced is counted in
	// meshd_bmp_throttled_seconds_total{router}. 0 (the default) is no
	// budget.
	MaxMessagesPerSecond int `yaml:"max-messages-per-second"`
	MaxBytesPerSecond    int `yaml:"max-bytes-per-second"`
	// MaxRoutesPerRouter is a router's memory budget: the routes held in
	// its RIBs, over every peer and RIB view. At the budget, an announce
	// of a route not held is not stored and yields no route event; it is
	// counted in meshd_bmp_routes_over_budget_total{router}. Withdraws,
	// and announces of routes held, go on as ever. 0 (the default) is no
	// budget.
	MaxRoutesPerRouter int `yaml:"max-routes-per-router"`
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
	for i, a := range c.Allow {
		if _, err := parseAllow(a); err != nil {
			errs = append(errs, fmt.Errorf("bmp.allow[%d]: %v", i, err))
		}
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"max-routers", c.MaxRouters}, {"max-messages-per-second", c.MaxMessagesPerSecond}, {"max-bytes-per-second", c.MaxBytesPerSecond}, {"max-routes-per-router", c.MaxRoutesPerRouter}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("bmp.%s: must be >= 0", f.key))
		}
	}
	if c.MaxBytesPerSecond > 0 && c.MaxBytesPerSecond < c.maxMessage() {
		errs = append(errs, fmt.Errorf("bmp.max-bytes-per-second: must be 0 or at least bmp.max-message-size (%d)", c.maxMessage()))
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

func (c *Config) maxMessage() int {
	if c.MaxMessageSize == 0 {
		return decode.MaxMessage
	}
	return c.MaxMessageSize
}

// parseAllow reads an allow-list entry: a CIDR, or an address meaning
// itself alone.
func parseAllow(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() {
			return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped prefix; write the IPv4 prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR nor an address", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
