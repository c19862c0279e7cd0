package gnmiclient

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
)

// Config is the gNMI collector's section of meshd's config. Target and
// subscription keys use gnmic's names, so a gnmic targets file or
// subscription block can be reused as it is.
type Config struct {
	// Targets by name; the name is the router's identity in meshd. They
	// are decoded as a gnmic targets file's entries are (decodeTargets):
	// a key means here what it means there.
	Targets Targets `yaml:"targets"`
	// TargetsFile is a gnmic-format targets file (name: {address: ...}),
	// watched for changes: targets are added, changed and removed live.
	TargetsFile string `yaml:"targets-file"`
	// Subscriptions by name. The built-in ones (bgp-neighbors,
	// meshd-probe, srl-bgp-neighbors) are there unless redefined.
	Subscriptions map[string]*Subscription `yaml:"subscriptions"`
	// Defaults fill in what a target leaves out.
	Defaults Target `yaml:"defaults"`
}

// Target is one gNMI target, with gnmic's field names.
type Target struct {
	Name          string        `yaml:"name,omitempty"`
	Address       string        `yaml:"address,omitempty"`
	Username      string        `yaml:"username,omitempty"`
	Password      string        `yaml:"password,omitempty"`
	Insecure      *bool         `yaml:"insecure,omitempty"`
	SkipVerify    *bool         `yaml:"skip-verify,omitempty"`
	TLSCA         string        `yaml:"tls-ca,omitempty"`
	TLSCert       string        `yaml:"tls-cert,omitempty"`
	TLSKey        string        `yaml:"tls-key,omitempty"`
	TLSServerName string        `yaml:"tls-server-name,omitempty"`
	Timeout       time.Duration `yaml:"timeout,omitempty"`
	RetryTimer    time.Duration `yaml:"retry-timer,omitempty"`
	MaxRetryTimer time.Duration `yaml:"max-retry-timer,omitempty"`
	// KeepaliveTime is the gRPC keepalive ping interval. The default (5m)
	// matches gRPC servers' default ping policy: shorter needs the server
	// to allow it.
	KeepaliveTime time.Duration `yaml:"keepalive-time,omitempty"`
	// KeepaliveTimeout is how long a keepalive ping may go unanswered
	// before the connection is given up (gnmic's grpc-keepalive.timeout).
	KeepaliveTimeout time.Duration `yaml:"keepalive-timeout,omitempty"`
	// SyncTimeout bounds the wait for sync_response; a target that sends
	// nothing for that long after subscribing is reconnected.
	SyncTimeout time.Duration `yaml:"sync-timeout,omitempty"`
	// MaxMsgSize is the largest message accepted from the target, in
	// bytes (default 64 MiB). A larger one ends the session with
	// RESOURCE_EXHAUSTED, counted as a session failure, and the session
	// is made again after the retry timer: one target's oversized
	// notification costs meshd no more than this, and no other target
	// anything.
	MaxMsgSize    int      `yaml:"max-msg-size,omitempty"`
	Subscriptions []string `yaml:"subscriptions,omitempty"`
	// Encoding overrides the subscriptions' encoding for this target.
	Encoding string `yaml:"encoding,omitempty"`

	// warnings name the gnmic keys of the target's config entry that
	// meshd reads but does not act on (Config.Warnings).
	warnings []string
}

// Subscription is one named subscription, with gnmic's field names. It
// is not gnmic's pkg/api types.SubscriptionConfig, as targets are
// TargetConfig: that type has no yaml tags in v0.1.9 (gnmic decodes it
// with mapstructure, through viper), so YAML would read it under other
// keys. Its keys are mirrored here instead; a test checks that every one
// of gnmic's keys is here and decided (subscriptionKeys), and
// TestBuildRequestAsGnmic that gnmic's own request builder makes the same
// SubscribeRequest from the same keys.
type Subscription struct {
	Paths  []string `yaml:"paths"`
	Prefix string   `yaml:"prefix,omitempty"`
	// Target goes in the request prefix: needed by servers that serve
	// several targets (meshd's own gNMI target, gNMI caches and proxies).
	Target            string        `yaml:"target,omitempty"`
	Mode              string        `yaml:"mode,omitempty"`        // stream, once, poll
	StreamMode        string        `yaml:"stream-mode,omitempty"` // on-change, sample, target-defined
	Encoding          string        `yaml:"encoding,omitempty"`    // json_ietf, json, proto
	SampleInterval    time.Duration `yaml:"sample-interval,omitempty"`
	HeartbeatInterval time.Duration `yaml:"heartbeat-interval,omitempty"`
	SuppressRedundant bool          `yaml:"suppress-redundant,omitempty"`
	UpdatesOnly       bool          `yaml:"updates-only,omitempty"`
	// Qos is the DSCP marking asked of the target (SubscriptionList.qos).
	Qos *uint32 `yaml:"qos,omitempty"`
	// Models restricts the subscription to these YANG modules, by name
	// (SubscriptionList.use_models).
	Models []string `yaml:"models,omitempty"`

	// gnmic's other subscription keys, named so that a gnmic
	// subscription block is refused or warned about key by key
	// (subscriptionKeys says which and why) instead of failing as unknown.
	GnmicName           string   `yaml:"name,omitempty"`
	Outputs             []string `yaml:"outputs,omitempty"`
	SetTarget           bool     `yaml:"set-target,omitempty"`
	Depth               uint32   `yaml:"depth,omitempty"`
	History             any      `yaml:"history,omitempty"`
	StreamSubscriptions any      `yaml:"stream-subscriptions,omitempty"`
}

// BGP neighbor state paths meshd keeps (OpenConfig). Keys are explicit
// wildcards: the same as omitted keys to a router, and what servers built
// on openconfig/gnmi's cache (meshd's own target among them) need.
var bgpNeighborPaths = []string{
	"/network-instances/network-instance[name=*]/protocols/protocol[identifier=*][name=*]/bgp/neighbors/neighbor[neighbor-address=*]/state",
	"/network-instances/network-instance[name=*]/protocols/protocol[identifier=*][name=*]/bgp/neighbors/neighbor[neighbor-address=*]/timers/state",
	"/network-instances/network-instance[name=*]/protocols/protocol[identifier=*][name=*]/bgp/neighbors/neighbor[neighbor-address=*]/afi-safis/afi-safi[afi-safi-name=*]/state/prefixes",
}

// DefaultMaxMsgSize is the largest message meshd takes from a target
// unless max-msg-size says otherwise: a full table of a large router's
// BGP neighbor state in one notification is a few megabytes.
const DefaultMaxMsgSize = 64 << 20

// minMaxMsgSize keeps max-msg-size above what one leaf's notification
// with its path may take.
const minMaxMsgSize = 4 << 10

// BuiltinSubscriptions returns the subscriptions meshd knows without
// configuration.
func BuiltinSubscriptions() map[string]*Subscription {
	return map[string]*Subscription{
		"bgp-neighbors": {
			Paths: append([]string(nil), bgpNeighborPaths...), Mode: "stream",
			StreamMode: "target-defined", SampleInterval: 10 * time.Second, Encoding: "json_ietf",
		},
		"meshd-probe": {
			Paths: []string{"/meshd/network-instances/network-instance[name=*]/neighbors/neighbor[neighbor-address=*]/probe/state"},
			Mode:  "stream", StreamMode: "on-change", Encoding: "proto",
		},
		"srl-bgp-neighbors": {
			Paths: []string{"/network-instance[name=*]/protocols/bgp/neighbor[peer-address=*]"},
			Mode:  "stream", StreamMode: "on-change", Encoding: "json_ietf",
		},
	}
}

// SetDefaults fills in what the config leaves out.
func (c *Config) SetDefaults() {
	if c.Subscriptions == nil {
		c.Subscriptions = map[string]*Subscription{}
	}
	for name, s := range BuiltinSubscriptions() {
		if _, ok := c.Subscriptions[name]; !ok {
			c.Subscriptions[name] = s
		}
	}
	for _, s := range c.Subscriptions {
		s.setDefaults()
	}
	d := &c.Defaults
	if d.Timeout == 0 {
		d.Timeout = 10 * time.Second
	}
	if d.RetryTimer == 0 {
		d.RetryTimer = time.Second
	}
	if d.MaxRetryTimer == 0 {
		d.MaxRetryTimer = time.Minute
	}
	if d.KeepaliveTime == 0 {
		d.KeepaliveTime = 5 * time.Minute
	}
	if d.KeepaliveTimeout == 0 {
		d.KeepaliveTimeout = 20 * time.Second
	}
	if d.SyncTimeout == 0 {
		d.SyncTimeout = time.Minute
	}
	if d.MaxMsgSize == 0 {
		d.MaxMsgSize = DefaultMaxMsgSize
	}
	if len(d.Subscriptions) == 0 {
		d.Subscriptions = []string{"bgp-neighbors"}
	}
	for name, t := range c.Targets {
		if t == nil {
			t = &Target{}
			c.Targets[name] = t
		}
		t.fill(name, d)
	}
}

func (s *Subscription) setDefaults() {
	if s.Mode == "" {
		s.Mode = "stream"
	}
	if s.StreamMode == "" {
		s.StreamMode = "target-defined"
	}
	if s.Encoding == "" {
		s.Encoding = "json_ietf"
	}
}

// fill completes a target from its name (gnmic: the key is the address
// when no address is given) and the defaults.
func (t *Target) fill(key string, d *Target) {
	if t.Name == "" {
		t.Name = key
	}
	if t.Address == "" {
		t.Address = key
	}
	// As gnmic: a host alone gets gnmic's port. An address gnmic reads
	// otherwise is left for validate to name.
	if a, err := gnmicAddress(t.Address); err == nil {
		t.Address = a
	}
	str := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	dur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	str(&t.Username, d.Username)
	str(&t.Password, d.Password)
	str(&t.TLSCA, d.TLSCA)
	str(&t.TLSCert, d.TLSCert)
	str(&t.TLSKey, d.TLSKey)
	str(&t.TLSServerName, d.TLSServerName)
	str(&t.Encoding, d.Encoding)
	dur(&t.Timeout, d.Timeout)
	dur(&t.RetryTimer, d.RetryTimer)
	dur(&t.MaxRetryTimer, d.MaxRetryTimer)
	dur(&t.KeepaliveTime, d.KeepaliveTime)
	dur(&t.KeepaliveTimeout, d.KeepaliveTimeout)
	dur(&t.SyncTimeout, d.SyncTimeout)
	if t.MaxMsgSize == 0 {
		t.MaxMsgSize = d.MaxMsgSize
	}
	if t.Insecure == nil {
		t.Insecure = d.Insecure
	}
	if t.SkipVerify == nil {
		t.SkipVerify = d.SkipVerify
	}
	if len(t.Subscriptions) == 0 {
		t.Subscriptions = append([]string(nil), d.Subscriptions...)
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

// Validate checks the config; errors name the field at fault. It expects
// SetDefaults to have run.
func (c *Config) Validate() error {
	var errs []error
	for _, name := range sortedKeys(c.Subscriptions) {
		if err := c.Subscriptions[name].validate("subscriptions." + name); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range sortedKeys(c.Targets) {
		if err := c.Targets[name].validate("targets."+name, c.Subscriptions); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Subscription) validate(field string) error {
	if s == nil {
		return fmt.Errorf("%s: empty subscription", field)
	}
	if len(s.Paths) == 0 {
		return fmt.Errorf("%s.paths: at least one path needed", field)
	}
	for _, p := range s.Paths {
		if _, err := parsePath(p); err != nil {
			return fmt.Errorf("%s.paths: %v", field, err)
		}
	}
	if s.Prefix != "" {
		if _, err := parsePath(s.Prefix); err != nil {
			return fmt.Errorf("%s.prefix: %v", field, err)
		}
	}
	if _, err := parseMode(s.Mode); err != nil {
		return fmt.Errorf("%s.mode: %v", field, err)
	}
	sm, err := parseStreamMode(s.StreamMode)
	if err != nil {
		return fmt.Errorf("%s.stream-mode: %v", field, err)
	}
	if _, err := ParseEncoding(s.Encoding); err != nil {
		return fmt.Errorf("%s.encoding: %v", field, err)
	}
	if sm == gpb.SubscriptionMode_SAMPLE && s.SampleInterval <= 0 {
		return fmt.Errorf("%s.sample-interval: must be > 0 for stream-mode sample", field)
	}
	if s.SampleInterval < 0 || s.HeartbeatInterval < 0 {
		return fmt.Errorf("%s.sample-interval: must be >= 0", field)
	}
	return s.refuseGnmicKeys(field)
}

func (t *Target) validate(field string, subs map[string]*Subscription) error {
	if _, err := gnmicAddress(t.Address); err != nil {
		return fmt.Errorf("%s.address: %v", field, err)
	}
	if (t.TLSCert == "") != (t.TLSKey == "") {
		return fmt.Errorf("%s.tls-key: tls-cert and tls-key go together", field)
	}
	if isTrue(t.Insecure) && (t.TLSCA != "" || t.TLSCert != "") {
		return fmt.Errorf("%s.insecure: insecure (no TLS) with tls-ca/tls-cert set", field)
	}
	for _, f := range []struct{ name, path string }{{"tls-ca", t.TLSCA}, {"tls-cert", t.TLSCert}, {"tls-key", t.TLSKey}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("%s.%s: %v", field, f.name, err)
		}
	}
	if t.RetryTimer <= 0 || t.MaxRetryTimer < t.RetryTimer {
		return fmt.Errorf("%s.retry-timer: must be > 0 and <= max-retry-timer", field)
	}
	if t.Timeout <= 0 {
		return fmt.Errorf("%s.timeout: must be > 0", field)
	}
	if t.MaxMsgSize < minMaxMsgSize {
		return fmt.Errorf("%s.max-msg-size: %d bytes; must be at least %d", field, t.MaxMsgSize, minMaxMsgSize)
	}
	if t.Encoding != "" {
		if _, err := ParseEncoding(t.Encoding); err != nil {
			return fmt.Errorf("%s.encoding: %v", field, err)
		}
	}
	if len(t.Subscriptions) == 0 {
		return fmt.Errorf("%s.subscriptions: none", field)
	}
	var enc string
	for _, s := range t.Subscriptions {
		sub, ok := subs[s]
		if !ok {
			return fmt.Errorf("%s.subscriptions: unknown subscription %q", field, s)
		}
		if sub.Mode != "stream" {
			return fmt.Errorf("%s.subscriptions: %q has mode %s; a collector target needs stream (once and poll are for meshd get/subscribe)", field, s, sub.Mode)
		}
		// One Subscribe session per target carries one encoding.
		e := strings.ToLower(sub.Encoding)
		if enc != "" && e != enc && t.Encoding == "" {
			return fmt.Errorf("%s.subscriptions: %q uses encoding %s, another %s; set the target's encoding", field, s, e, enc)
		}
		enc = e
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// ParseEncoding maps gnmic's encoding names to gNMI's.
func ParseEncoding(s string) (gpb.Encoding, error) {
	switch strings.ToLower(strings.ReplaceAll(s, "-", "_")) {
	case "json_ietf":
		return gpb.Encoding_JSON_IETF, nil
	case "json":
		return gpb.Encoding_JSON, nil
	case "proto":
		return gpb.Encoding_PROTO, nil
	}
	return 0, fmt.Errorf("%q: want json_ietf, json or proto", s)
}

func parseMode(s string) (gpb.SubscriptionList_Mode, error) {
	switch strings.ToLower(s) {
	case "stream":
		return gpb.SubscriptionList_STREAM, nil
	case "once":
		return gpb.SubscriptionList_ONCE, nil
	case "poll":
		return gpb.SubscriptionList_POLL, nil
	}
	return 0, fmt.Errorf("%q: want stream, once or poll", s)
}

func parseStreamMode(s string) (gpb.SubscriptionMode, error) {
	switch strings.ToLower(strings.ReplaceAll(s, "_", "-")) {
	case "on-change":
		return gpb.SubscriptionMode_ON_CHANGE, nil
	case "sample":
		return gpb.SubscriptionMode_SAMPLE, nil
	case "target-defined", "":
		return gpb.SubscriptionMode_TARGET_DEFINED, nil
	}
	return 0, fmt.Errorf("%q: want on-change, sample or target-defined", s)
}
