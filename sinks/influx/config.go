package influx

import (
	"fmt"
	"net/url"
	"time"
)

// Spool-full policies.
const (
	PolicyBlock      = "block"
	PolicyDropOldest = "drop-oldest"
)

// Config is the sink's configuration, the `influxdb` section of meshd's
// config. Key names follow gnmic's influxdb output where it has one.
type Config struct {
	// URL of the server, e.g. http://127.0.0.1:8086.
	URL string `yaml:"url"`
	// Database and RetentionPolicy name an InfluxDB 1.8 target; they
	// become the v2 bucket "db/rp" (or "db" without a policy).
	Database        string `yaml:"database"`
	RetentionPolicy string `yaml:"retention-policy"`
	// Username and Password authenticate to 1.8 as the token "user:pass".
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Token, Org and Bucket address an InfluxDB 2.x server; a Bucket
	// overrides Database/RetentionPolicy, a Token overrides the user.
	Token  string `yaml:"token"`
	Org    string `yaml:"org"`
	Bucket string `yaml:"bucket"`
	// CreateDatabase issues CREATE DATABASE (1.8) before the first write.
	CreateDatabase bool `yaml:"create-database"`
	// BatchSize is the most points per write request.
	BatchSize int `yaml:"batch-size"`
	// WritesInFlight is how many write requests may be outstanding at
	// once; batches are still acknowledged to the spool in order.
	WritesInFlight int `yaml:"writes-in-flight"`
	// FlushInterval is the longest a point waits for its batch to fill.
	FlushInterval time.Duration `yaml:"flush-timer"`
	// Timeout bounds one write request.
	Timeout time.Duration `yaml:"timeout"`
	// SnapshotInterval is how often every known neighbor's full state is
	// written, so graphs have steady points; 0 turns it off.
	SnapshotInterval time.Duration `yaml:"snapshot-interval"`
	// SpoolDir holds the on-disk spool (write-ahead log) of points not yet
	// acknowledged by InfluxDB.
	SpoolDir string `yaml:"spool-dir"`
	// SpoolMaxBytes bounds the spool on disk.
	SpoolMaxBytes int64 `yaml:"spool-max-bytes"`
	// SpoolFullPolicy is "block" (stop consuming; the merge core then
	// drops and counts) or "drop-oldest" (delete the oldest points,
	// counted).
	SpoolFullPolicy string `yaml:"spool-full-policy"`
	// SpoolSyncInterval is how often the spool is fsynced; 0 fsyncs every
	// append (slow). A host crash loses at most this much.
	SpoolSyncInterval time.Duration `yaml:"spool-sync-interval"`
	// Gzip compresses write requests.
	Gzip bool `yaml:"use-gzip"`
}

// Defaults for unset fields.
const (
	DefaultBatchSize         = 20000
	DefaultWritesInFlight    = 3
	DefaultFlushInterval     = time.Second
	DefaultTimeout           = 10 * time.Second
	DefaultSnapshotInterval  = time.Minute
	DefaultSpoolDir          = "/var/lib/meshd/spool/influx"
	DefaultSpoolMaxBytes     = 1 << 30
	DefaultSpoolSyncInterval = time.Second
)

// SetDefaults fills unset fields with defaults. SnapshotInterval and
// SpoolSyncInterval keep an explicit negative value as "off"/"every
// append" after Validate's normalisation, see there.
func (c *Config) SetDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.WritesInFlight == 0 {
		c.WritesInFlight = DefaultWritesInFlight
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = DefaultSnapshotInterval
	}
	if c.SpoolDir == "" {
		c.SpoolDir = DefaultSpoolDir
	}
	if c.SpoolMaxBytes == 0 {
		c.SpoolMaxBytes = DefaultSpoolMaxBytes
	}
	if c.SpoolFullPolicy == "" {
		c.SpoolFullPolicy = PolicyBlock
	}
	if c.SpoolSyncInterval == 0 {
		c.SpoolSyncInterval = DefaultSpoolSyncInterval
	}
}

// Validate checks the configuration; errors name the field.
func (c *Config) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return fieldErr("url", "required")
	case err != nil:
		return fieldErr("url", "%q: %v", c.URL, err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return fieldErr("url", "%q: want http(s)://host:port", c.URL)
	case c.Database == "" && c.Bucket == "":
		return fieldErr("database", "required (or bucket for InfluxDB 2.x)")
	case c.Token != "" && c.Username != "":
		return fieldErr("token", "set either token or username/password, not both")
	case c.Password != "" && c.Username == "":
		return fieldErr("username", "required with a password")
	case c.CreateDatabase && c.Database == "":
		return fieldErr("create-database", "needs database (it is an InfluxDB 1.8 operation)")
	case c.BatchSize <= 0 || c.BatchSize > 1_000_000:
		return fieldErr("batch-size", "%d: must be > 0 and <= 1000000", c.BatchSize)
	case c.WritesInFlight <= 0 || c.WritesInFlight > 16:
		return fieldErr("writes-in-flight", "%d: must be > 0 and <= 16", c.WritesInFlight)
	case c.FlushInterval <= 0:
		return fieldErr("flush-timer", "%s: must be > 0", c.FlushInterval)
	case c.Timeout <= 0:
		return fieldErr("timeout", "%s: must be > 0", c.Timeout)
	case c.SnapshotInterval > 0 && c.SnapshotInterval < time.Second:
		return fieldErr("snapshot-interval", "%s: must be >= 1s, or negative to turn it off", c.SnapshotInterval)
	case c.SpoolDir == "":
		return fieldErr("spool-dir", "required")
	case c.SpoolMaxBytes < 1<<20:
		return fieldErr("spool-max-bytes", "%d: must be >= 1048576", c.SpoolMaxBytes)
	case c.SpoolFullPolicy != PolicyBlock && c.SpoolFullPolicy != PolicyDropOldest:
		return fieldErr("spool-full-policy", "%q: want %q or %q", c.SpoolFullPolicy, PolicyBlock, PolicyDropOldest)
	}
	return nil
}

// bucket is the v2 bucket: the configured one, or "db/rp" for 1.8.
func (c *Config) bucket() string {
	if c.Bucket != "" {
		return c.Bucket
	}
	if c.RetentionPolicy != "" {
		return c.Database + "/" + c.RetentionPolicy
	}
	return c.Database
}

// token is the v2 token: the configured one, or "user:pass" for 1.8.
func (c *Config) token() string {
	if c.Token != "" {
		return c.Token
	}
	if c.Username != "" {
		return c.Username + ":" + c.Password
	}
	return ""
}

func fieldErr(field, format string, args ...any) error {
	return fmt.Errorf("influxdb.%s: %s", field, fmt.Sprintf(format, args...))
}
