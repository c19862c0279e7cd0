package cluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// Config is the cluster: section of meshd.yaml.
type Config struct {
	// Endpoints are etcd's client URLs; none means no cluster (one meshd
	// owns every target).
	Endpoints []string `yaml:"endpoints"`
	// Name is this replica's member name, unique in the cluster
	// (default: the host name).
	Name string `yaml:"name"`
	// Prefix is where in etcd's key space the cluster keeps its keys.
	Prefix string `yaml:"prefix"`
	// LeaseTTL is how long a replica that stopped answering keeps its
	// targets: the longest gap a dead replica leaves.
	LeaseTTL time.Duration `yaml:"lease-ttl"`
	// Settle is how long membership must stay unchanged at start-up
	// before this replica claims a target, so that replicas started
	// together do not each take the whole fleet first.
	Settle time.Duration `yaml:"settle"`
	// LoadFactor bounds a member's share: at most this times the average.
	LoadFactor float64 `yaml:"load-factor"`
	// Advertise is where the other replicas and operators reach this
	// one's listeners (host:port each; empty: not said), kept in its
	// member record and shown by `meshd cluster status`.
	Advertise Advertise `yaml:"advertise"`
}

// Advertise is a replica's addresses as others reach them.
type Advertise struct {
	BMP  string `yaml:"bmp" json:"bmp,omitempty"`
	GNMI string `yaml:"gnmi" json:"gnmi,omitempty"`
	HTTP string `yaml:"http" json:"http,omitempty"`
}

// memberRecord is a member key's value.
type memberRecord struct {
	Lease string `json:"lease"`
	Advertise
}

// Defaults.
const (
	DefaultPrefix   = "/meshd"
	DefaultLeaseTTL = 5 * time.Second
	DefaultSettle   = 3 * time.Second
)

// SetDefaults fills in what the config leaves out; a config without
// endpoints stays empty (no cluster).
func (c *Config) SetDefaults() {
	if len(c.Endpoints) == 0 {
		return
	}
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	c.Prefix = strings.TrimSuffix(c.Prefix, "/")
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.Settle == 0 {
		c.Settle = DefaultSettle
	}
	if c.LoadFactor == 0 {
		c.LoadFactor = DefaultLoadFactor
	}
}

// Validate checks a config SetDefaults has seen.
func (c *Config) Validate() error {
	if len(c.Endpoints) == 0 {
		return nil
	}
	var errs []error
	if c.Name == "" || strings.ContainsAny(c.Name, "/\n") {
		errs = append(errs, fmt.Errorf("cluster.name %q: set it (the host name is not known), without / or newline", c.Name))
	}
	if c.LeaseTTL < 2*time.Second {
		errs = append(errs, fmt.Errorf("cluster.lease-ttl %v: at least 2s (etcd's leases count whole seconds)", c.LeaseTTL))
	}
	if c.Settle < 0 {
		errs = append(errs, fmt.Errorf("cluster.settle %v: not negative", c.Settle))
	}
	if c.LoadFactor < 1 {
		errs = append(errs, fmt.Errorf("cluster.load-factor %v: at least 1", c.LoadFactor))
	}
	for key, a := range map[string]string{"bmp": c.Advertise.BMP, "gnmi": c.Advertise.GNMI, "http": c.Advertise.HTTP} {
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("cluster.advertise.%s %q: want host:port: %v", key, a, err))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) membersKey() string        { return c.Prefix + "/members/" }
func (c *Config) ownersKey() string         { return c.Prefix + "/owners/" }
func (c *Config) memberKey(n string) string { return c.membersKey() + n }
func (c *Config) ownerKey(t string) string  { return c.ownersKey() + t }
