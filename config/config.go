// Package config reads meshd's YAML configuration: ${ENV} expansion, strict
// field names, defaults, and validation that names the field at fault, so a
// wrong config stops meshd before anything starts.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/meshd/meshd/config/yamlcheck"
	"github.com/meshd/meshd/internal/ops"
)

// HTTP is the operator HTTP listener: /metrics, /healthz, /readyz, Go's
// profiles, the status page and its API, and /api/sessions.
type HTTP struct {
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey are PEM files of the server certificate and key:
	// the whole listener speaks HTTPS. TLSCA, when set, is a PEM file of
	// the CAs client certificates must chain to (mutual TLS).
	TLSCert string `yaml:"tls-cert"`
	TLSKey  string `yaml:"tls-key"`
	TLSCA   string `yaml:"tls-ca"`
	// Username and Password, when set, are asked (HTTP basic auth) of
	// every request but /metrics, /healthz and /readyz, which Prometheus
	// and a liveness probe must reach without them.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// AllowInsecure permits serving the status page and its API beyond
	// loopback without TLS and credentials; without it such a
	// configuration is refused, as the gNMI target's is.
	AllowInsecure bool `yaml:"allow-insecure"`
}

// Loopback reports whether the listener only accepts local connections.
func (h *HTTP) Loopback() bool {
	host, _, err := net.SplitHostPort(h.Listen)
	return err == nil && ops.Loopback(host)
}

// Secure reports whether the listener has both TLS and credentials.
func (h *HTTP) Secure() bool { return h.TLSCert != "" && h.Username != "" }

// Log sets logging.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// DefaultQueueWait is merge.queue-wait's default: a consumer starved of
// CPU by a burst catches up in milliseconds once the sources wait, and a
// second is short of gnmiclient's stall timeouts.
const DefaultQueueWait = time.Second

// Merge tunes the merge core's consumer queues.
type Merge struct {
	// QueueDepth is the number of batches each sink may fall behind by
	// before batches are dropped (and counted) for it.
	QueueDepth int `yaml:"queue-depth"`
	// QueueWait is how long the sources are held back waiting for room
	// in a sink's full queue before a batch is dropped for it (the
	// InfluxDB sink's; the gNMI server's never fills). A sink that is
	// only behind catches up within it; one that is stuck (a full spool)
	// costs one wait, then drops at once until it has room again.
	// Negative turns the wait off.
	QueueWait time.Duration `yaml:"queue-wait"`
}

// Validate checks the section.
func (h *HTTP) Validate() error {
	if h.Listen == "" {
		return nil
	}
	var errs []error
	if _, _, err := net.SplitHostPort(h.Listen); err != nil {
		errs = append(errs, fieldErr("http.listen", "%q is not host:port: %v", h.Listen, err))
	}
	if (h.TLSCert == "") != (h.TLSKey == "") {
		errs = append(errs, fieldErr("http.tls-cert", "set both http.tls-cert and http.tls-key, or neither"))
	}
	if h.TLSCA != "" && h.TLSCert == "" {
		errs = append(errs, fieldErr("http.tls-ca", "client certificates need http.tls-cert and http.tls-key"))
	}
	if (h.Username == "") != (h.Password == "") {
		errs = append(errs, fieldErr("http.username", "set both http.username and http.password, or neither"))
	}
	return errors.Join(errs...)
}

// Validate checks the section.
func (l *Log) Validate() error {
	switch strings.ToLower(l.Level) {
	case "", "debug", "info", "warn", "error":
	default:
		return fieldErr("log.level", "%q: want debug, info, warn or error", l.Level)
	}
	switch strings.ToLower(l.Format) {
	case "", "text", "json":
	default:
		return fieldErr("log.format", "%q: want text or json", l.Format)
	}
	return nil
}

// FieldError is a config error tied to one field.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// ExpandEnv replaces ${VAR} and ${VAR:-default} in text. A lone $ is left
// alone (passwords contain them); a ${VAR} that is unset and has no
// default is an error naming the variable and its line.
func ExpandEnv(text []byte, lookup func(string) (string, bool)) ([]byte, error) {
	var errs []error
	out := envRef.ReplaceAllFunc(text, func(m []byte) []byte {
		sub := envRef.FindSubmatch(m)
		name := string(sub[1])
		if v, ok := lookup(name); ok {
			return []byte(v)
		}
		if sub[2] != nil {
			return sub[3]
		}
		line := 1 + bytes.Count(text[:bytes.Index(text, m)], []byte("\n"))
		errs = append(errs, fmt.Errorf("line %d: environment variable %s is not set (use ${%s:-default} for a default)", line, name, name))
		return m
	})
	return out, errors.Join(errs...)
}

// readFile reads, expands and decodes a config file into v.
func readFile(path string, v any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	text, err := ExpandEnv(raw, os.LookupEnv)
	if err != nil {
		return fileError(path, err)
	}
	// Unknown keys are errors, so a typo is not a silently ignored
	// setting; every error names the key path and line.
	if err := yamlcheck.Decode(text, v); err != nil {
		return fileError(path, err)
	}
	return nil
}

// fileError puts the file's name before its errors: on the same line when
// there is one, above them when there are several.
func fileError(path string, err error) error {
	if strings.Contains(err.Error(), "\n") {
		return errors.Join(errors.New("config "+path+":"), err)
	}
	return fmt.Errorf("config %s: %w", path, err)
}
