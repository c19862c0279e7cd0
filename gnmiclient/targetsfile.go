package gnmiclient

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/openconfig/gnmic/pkg/api/types"
	"gopkg.in/yaml.v3"

	"github.com/meshd/meshd/config/yamlcheck"
)

// A gnmic targets file is decoded into gnmic's own target type
// (pkg/api/types.TargetConfig): its yaml keys are the keys gnmic's file
// loader reads, so a key means here what it means to gnmic, and a key
// gnmic does not know is an error naming it. Every one of gnmic's keys is
// then used, warned about, or refused, as targetKeys says; none is
// dropped without a word. gnmic's loader parses YAML 1.1 (yaml.v2):
// yes/no and on/off are booleans there, and here too (yaml.v3 reads them
// so into a bool); a bare number is a duration in nanoseconds there,
// which meshd refuses with an error naming the key rather than read
// "timeout: 10" as 10ns.

// fileTarget is one entry of a targets file: gnmic's target and the keys
// meshd adds (gnmic's loader ignores keys it does not know, so a file
// carrying them still works with gnmic).
type fileTarget struct {
	types.TargetConfig `yaml:",inline"`
	MaxRetryTimer      time.Duration `yaml:"max-retry-timer,omitempty"`
	KeepaliveTime      time.Duration `yaml:"keepalive-time,omitempty"`
	KeepaliveTimeout   time.Duration `yaml:"keepalive-timeout,omitempty"`
	SyncTimeout        time.Duration `yaml:"sync-timeout,omitempty"`
	MaxMsgSize         int           `yaml:"max-msg-size,omitempty"`
}

// keyUse is what meshd does with one of gnmic's keys.
type keyUse int

const (
	keyUsed    keyUse = iota // meshd does what gnmic does with it
	keyWarned                // logged when set: it changes nothing meshd stores
	keyRefused               // an error when set: meshd would connect or authenticate otherwise than gnmic
)

type keyRule struct {
	use keyUse
	why string // for warned and refused keys, said in the message
}

// targetKeys decides every key of gnmic's TargetConfig (a test checks
// that none is missing, so a new gnmic key is decided when the pin moves).
var targetKeys = map[string]keyRule{
	"name":            {keyUsed, ""},
	"address":         {keyUsed, ""},
	"username":        {keyUsed, ""},
	"password":        {keyUsed, ""},
	"timeout":         {keyUsed, ""},
	"insecure":        {keyUsed, ""},
	"tls-ca":          {keyUsed, ""},
	"tls-cert":        {keyUsed, ""},
	"tls-key":         {keyUsed, ""},
	"skip-verify":     {keyUsed, ""},
	"tls-server-name": {keyUsed, ""},
	"subscriptions":   {keyUsed, ""},
	"retry-timer":     {keyUsed, ""},
	"encoding":        {keyUsed, ""},
	"grpc-keepalive":  {keyUsed, ""},

	"outputs":        {keyWarned, "gnmic's outputs, meshd writes to its own sinks"},
	"tags":           {keyWarned, "gnmic's target tags (for its clustering), meshd has none"},
	"event-tags":     {keyWarned, "gnmic's event-format tags, meshd's points carry the router's name"},
	"buffer-size":    {keyWarned, "gnmic's per-target buffer, meshd bounds its queues itself"},
	"proto-files":    {keyWarned, "meshd does not decode proto_bytes values, such leaves are counted as invalid"},
	"proto-dirs":     {keyWarned, "meshd does not decode proto_bytes values, such leaves are counted as invalid"},
	"gzip":           {keyWarned, "meshd does not compress gNMI streams, the data is the same"},
	"log-tls-secret": {keyWarned, "meshd writes no TLS key log"},
	"tcp-keepalive":  {keyWarned, "meshd keeps gRPC keepalive (grpc-keepalive, keepalive-time) and Go's TCP keepalive (15s)"},

	"token":              {keyRefused, "meshd sends no bearer token, it authenticates with username and password"},
	"auth-scheme":        {keyRefused, "meshd sends username and password as gNMI metadata only"},
	"metadata":           {keyRefused, "meshd sends no extra gRPC metadata"},
	"proxy":              {keyRefused, "meshd dials targets directly, not through a SOCKS5 proxy"},
	"tunnel-target-type": {keyRefused, "meshd has no gRPC tunnel server"},
	"tls-version":        {keyRefused, "meshd negotiates TLS 1.2 or 1.3 and cannot pin a version"},
	"tls-min-version":    {keyRefused, "meshd negotiates TLS 1.2 or 1.3 and cannot pin a version"},
	"tls-max-version":    {keyRefused, "meshd negotiates TLS 1.2 or 1.3 and cannot pin a version"},
	"cipher-suites":      {keyRefused, "meshd uses Go's default cipher suites"},
}

// gnmicDefaultPort is the port gnmic adds to an address that has none.
const gnmicDefaultPort = "57400"

// ReadTargetsFile reads a gnmic-format targets file: a map of target name
// (or address) to its settings. The warnings name gnmic keys that meshd
// reads but does not act on.
func ReadTargetsFile(path string) (map[string]*Target, []string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("targets file: %w", err)
	}
	return parseTargetsFile(path, raw)
}

func parseTargetsFile(path string, raw []byte) (map[string]*Target, []string, error) {
	root, err := yamlcheck.Parse(raw)
	if err != nil {
		return nil, nil, fileError(path, err)
	}
	out, warns, errs := decodeTargets(root, "")
	if len(errs) > 0 {
		return nil, nil, fileError(path, yamlcheck.Join(errs))
	}
	ws := make([]string, len(warns))
	for i, w := range warns {
		ws[i] = w.Error()
	}
	return out, ws, nil
}

// decodeTargets is the one decoder of gnmic targets, for a targets file
// (path "") and for the targets key of meshd's config (path "targets"):
// the same keys mean the same there as in gnmic. It returns the targets,
// the warnings and the errors, each in line order. A nil node (an empty
// document) holds no targets.
func decodeTargets(n *yaml.Node, path string) (map[string]*Target, []*yamlcheck.Error, []*yamlcheck.Error) {
	in := map[string]*fileTarget{}
	if n != nil {
		if errs := yamlcheck.CheckNode(n, reflect.TypeOf(&in), path); len(errs) > 0 {
			return nil, nil, errs
		}
		if err := yamlcheck.DecodeNode(n, &in, path); err != nil {
			return nil, nil, []*yamlcheck.Error{{Path: path, Line: n.Line, Msg: err.Error()}}
		}
	}
	lines := keyLines(n)
	out := make(map[string]*Target, len(in))
	var errs, warns []*yamlcheck.Error
	for _, name := range sortedKeys(in) {
		t, w, err := in[name].target(name, keyPath(path, name), lines[name])
		errs = append(errs, err...)
		warns = append(warns, w...)
		out[name] = t
	}
	byLine := func(a, b *yamlcheck.Error) int { return cmp.Compare(a.Line, b.Line) }
	slices.SortStableFunc(errs, byLine)
	slices.SortStableFunc(warns, byLine)
	return out, warns, errs
}

func keyPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Targets are the targets of meshd's config (its targets key), decoded
// as a gnmic targets file's entries are (decodeTargets).
type Targets map[string]*Target

// CheckYAML reports what decodeTargets refuses, with the rest of the
// config's problems (yamlcheck.Checker).
func (Targets) CheckYAML(n *yaml.Node, path string) []*yamlcheck.Error {
	_, _, errs := decodeTargets(n, path)
	return errs
}

// UnmarshalYAML decodes the targets key of meshd's config; the warnings
// stay with their targets for Config.Warnings.
func (ts *Targets) UnmarshalYAML(n *yaml.Node) error {
	out, warns, errs := decodeTargets(n, "targets")
	if len(errs) > 0 {
		return yamlcheck.Join(errs)
	}
	for _, w := range warns {
		// A warning's path is targets.NAME.KEY.
		name := strings.TrimPrefix(w.Path, "targets.")
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[:i]
		}
		if t := out[name]; t != nil {
			t.warnings = append(t.warnings, w.Error())
		}
	}
	*ts = out
	return nil
}

func fileError(path string, err error) error {
	if strings.Contains(err.Error(), "\n") { // several: one a line under the name
		return errors.Join(fmt.Errorf("targets file %s:", path), err)
	}
	return fmt.Errorf("targets file %s: %w", path, err)
}

// target turns a gnmic target into meshd's, as gnmic would fill it in:
// the entry's key is its name and, without an address, its address; an
// address without a port gets gnmic's default port.
func (f *fileTarget) target(key, path string, lines map[string]int) (*Target, []*yamlcheck.Error, []*yamlcheck.Error) {
	if f == nil {
		f = &fileTarget{}
	}
	var errs, warns []*yamlcheck.Error
	for _, k := range setKeys(&f.TargetConfig) {
		r := targetKeys[k]
		e := &yamlcheck.Error{Path: path + "." + k, Line: lines[k]}
		switch r.use {
		case keyWarned:
			e.Msg = "gnmic key ignored by meshd; " + r.why
			warns = append(warns, e)
		case keyRefused:
			e.Msg = "gnmic key meshd does not support; " + r.why
			errs = append(errs, e)
		}
	}
	tc := &f.TargetConfig
	t := &Target{
		Name: tc.Name, Address: tc.Address,
		Username: deref(tc.Username), Password: deref(tc.Password),
		Insecure: tc.Insecure, SkipVerify: tc.SkipVerify,
		TLSCA: deref(tc.TLSCA), TLSCert: deref(tc.TLSCert), TLSKey: deref(tc.TLSKey),
		TLSServerName: tc.TLSServerName, Timeout: tc.Timeout,
		RetryTimer: tc.RetryTimer, MaxRetryTimer: f.MaxRetryTimer,
		KeepaliveTime: f.KeepaliveTime, KeepaliveTimeout: f.KeepaliveTimeout, SyncTimeout: f.SyncTimeout,
		MaxMsgSize:    f.MaxMsgSize,
		Subscriptions: tc.Subscriptions, Encoding: deref(tc.Encoding),
	}
	if t.Name == "" {
		t.Name = key
	}
	if t.Address == "" {
		t.Address = key
	}
	addr, err := gnmicAddress(t.Address)
	if err != nil {
		errs = append(errs, &yamlcheck.Error{Path: path + ".address", Line: lines["address"], Msg: err.Error()})
	}
	t.Address = addr
	if ka := tc.GRPCKeepalive; ka != nil {
		// gnmic's grpc-keepalive and meshd's keepalive-time say the same
		// thing; one of them, so the file has one meaning.
		if f.KeepaliveTime != 0 || f.KeepaliveTimeout != 0 {
			errs = append(errs, &yamlcheck.Error{Path: path + ".grpc-keepalive", Line: lines["grpc-keepalive"],
				Msg: "set with keepalive-time or keepalive-timeout; keep one"})
		}
		// permit-without-stream changes nothing: meshd's connection
		// always carries its Subscribe stream.
		t.KeepaliveTime, t.KeepaliveTimeout = ka.Time, ka.Timeout
	}
	return t, warns, errs
}

// gnmicAddress reads an address as gnmic does: host:port, or a host
// alone, to which gnmic adds its default port.
func gnmicAddress(a string) (string, error) {
	switch {
	case strings.HasPrefix(a, "unix://"):
		return a, fmt.Errorf("%q: meshd dials TCP targets only", a)
	case strings.Contains(a, ","):
		return a, fmt.Errorf("%q: several addresses, which gnmic tries in turn; meshd dials one", a)
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) && (ae.Err == "missing port in address" || ae.Err == "too many colons in address") {
			return net.JoinHostPort(a, gnmicDefaultPort), nil
		}
		return a, fmt.Errorf("%q is not host:port", a)
	}
	return a, nil
}

// setKeys returns the yaml keys of tc's fields that hold a value, in
// field order. A key set to its zero value (gzip: false, token: "")
// asks for nothing gnmic would do, and is not reported.
func setKeys(tc *types.TargetConfig) []string {
	v := reflect.ValueOf(tc).Elem()
	var keys []string
	for i := range v.NumField() {
		f := v.Type().Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || key == "" || key == "-" {
			continue
		}
		fv := v.Field(i)
		for fv.Kind() == reflect.Pointer && !fv.IsNil() {
			fv = fv.Elem()
		}
		if !fv.IsZero() {
			keys = append(keys, key)
		}
	}
	return keys
}

// gnmicTargetKeys returns every yaml key of gnmic's TargetConfig.
func gnmicTargetKeys() []string {
	t := reflect.TypeFor[types.TargetConfig]()
	var keys []string
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if t.Field(i).IsExported() && key != "" && key != "-" {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	return keys
}

// keyLines returns, for each entry of a mapping of targets, the line of
// each of its keys.
func keyLines(n *yaml.Node) map[string]map[string]int {
	out := map[string]map[string]int{}
	if n == nil || n.Kind != yaml.MappingNode {
		return out
	}
	top := n.Content
	for i := 0; i+1 < len(top); i += 2 {
		m := map[string]int{}
		if v := top[i+1]; v.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(v.Content); j += 2 {
				m[v.Content[j].Value] = v.Content[j].Line
			}
		}
		out[top[i].Value] = m
	}
	return out
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// subscriptionKeys decides every key of gnmic's SubscriptionConfig that
// meshd's Subscription takes only to say what it does with it (a test
// checks that every gnmic key is a Subscription key).
var subscriptionKeys = map[string]keyRule{
	"name":                 {keyWarned, "a subscription's name is its key in subscriptions"},
	"outputs":              {keyWarned, "gnmic's outputs, meshd writes to its own sinks"},
	"set-target":           {keyRefused, "set target instead (the prefix target, the same for every router)"},
	"depth":                {keyRefused, "meshd sends no depth extension"},
	"history":              {keyRefused, "meshd sends no history extension"},
	"stream-subscriptions": {keyRefused, "meshd subscribes one list per target, give the paths and modes as separate subscriptions"},
}

// refuseGnmicKeys names the gnmic keys of s that meshd refuses.
func (s *Subscription) refuseGnmicKeys(field string) error {
	for _, k := range s.setGnmicKeys() {
		if r := subscriptionKeys[k]; r.use == keyRefused {
			return fmt.Errorf("%s.%s: gnmic key meshd does not support: %s", field, k, r.why)
		}
	}
	return nil
}

// gnmicWarnings names the gnmic keys of s that meshd reads and ignores.
func (s *Subscription) gnmicWarnings(field string) []string {
	var out []string
	for _, k := range s.setGnmicKeys() {
		if r := subscriptionKeys[k]; r.use == keyWarned {
			out = append(out, fmt.Sprintf("%s.%s: gnmic key ignored by meshd: %s", field, k, r.why))
		}
	}
	return out
}

func (s *Subscription) setGnmicKeys() []string {
	var keys []string
	for k, set := range map[string]bool{
		"name": s.GnmicName != "", "outputs": len(s.Outputs) > 0, "set-target": s.SetTarget,
		"depth": s.Depth != 0, "history": s.History != nil, "stream-subscriptions": s.StreamSubscriptions != nil,
	} {
		if set {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// Warnings names the gnmic keys in the config's targets and subscriptions that meshd
// reads but does not act on.
func (c *Config) Warnings() []string {
	var out []string
	for _, name := range sortedKeys(c.Targets) {
		if t := c.Targets[name]; t != nil {
			out = append(out, t.warnings...)
		}
	}
	for _, name := range sortedKeys(c.Subscriptions) {
		if s := c.Subscriptions[name]; s != nil {
			out = append(out, s.gnmicWarnings("subscriptions."+name)...)
		}
	}
	return out
}
