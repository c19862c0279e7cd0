package peering

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Config is the peering: section.
type Config struct {
	// Listen are the addresses BGP connections are accepted on
	// ("0.0.0.0:179", "[::]:179"); routers not in peers are refused.
	Listen []string `yaml:"listen"`
	// LocalAS is meshd's AS in its OPENs.
	LocalAS uint32 `yaml:"local-as"`
	// RouterID is meshd's BGP identifier (an IPv4 address).
	RouterID string `yaml:"router-id"`
	// HoldTime is the hold time meshd offers (default 90s).
	HoldTime time.Duration `yaml:"hold-time"`
	// Peers are the routers meshd peers with.
	Peers []Peer `yaml:"peers"`
}

// Peer is one router's session with meshd.
type Peer struct {
	// Address is the router's address on the session.
	Address string `yaml:"address"`
	// AS is the router's AS.
	AS uint32 `yaml:"as"`
	// Name names the router as BMP's sysName does (bmp.aliases apply).
	// Without one the router is named as a BMP router without a sysName
	// is: the gNMI target at its address, else the address. Several
	// sessions of one router (IPv4 and IPv6) share its name.
	Name string `yaml:"name"`
	// Active makes meshd connect to the router (to Port, default 179);
	// by default meshd waits for the router to connect.
	Active bool `yaml:"active"`
	Port   int  `yaml:"port"`
	// Password turns on TCP MD5 signatures (RFC 2385) with this key.
	Password string `yaml:"password"`
}

// SetDefaults fills in what was left out.
func (c *Config) SetDefaults() {
	if c.HoldTime == 0 {
		c.HoldTime = 90 * time.Second
	}
	for i := range c.Peers {
		p := &c.Peers[i]
		if p.Active && p.Port == 0 {
			p.Port = 179
		}
	}
}

// Enabled reports whether any peer is configured.
func (c *Config) Enabled() bool { return len(c.Peers) > 0 }

// Validate checks the section.
func (c *Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	if c.LocalAS == 0 {
		errs = append(errs, errors.New("peering.local-as: required"))
	}
	if id, err := netip.ParseAddr(c.RouterID); err != nil || !id.Is4() {
		errs = append(errs, fmt.Errorf("peering.router-id: %q is no IPv4 address", c.RouterID))
	}
	if h := c.HoldTime; h != 0 && (h < 3*time.Second || h > 65535*time.Second) {
		errs = append(errs, fmt.Errorf("peering.hold-time: %v, want 3s to 65535s (or 0 for 90s)", h))
	}
	seen := map[netip.Addr]bool{}
	passive := false
	for i, p := range c.Peers {
		a, err := netip.ParseAddr(p.Address)
		if err != nil {
			errs = append(errs, fmt.Errorf("peering.peers[%d].address: %v", i, err))
			continue
		}
		if seen[a.Unmap()] {
			errs = append(errs, fmt.Errorf("peering.peers[%d].address: %s given twice", i, a))
		}
		seen[a.Unmap()] = true
		if p.AS == 0 {
			errs = append(errs, fmt.Errorf("peering.peers[%d].as: required", i))
		}
		if p.Port < 0 || p.Port > 65535 {
			errs = append(errs, fmt.Errorf("peering.peers[%d].port: %d", i, p.Port))
		}
		passive = passive || !p.Active
	}
	if passive && len(c.Listen) == 0 {
		errs = append(errs, errors.New("peering.listen: required for peers meshd does not connect to (active: false)"))
	}
	return errors.Join(errs...)
}
