package gnmiclient

import (
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/openconfig/gnmic/pkg/api/types"
)

// TestTargetsFile reads gnmic-format targets files as gnmic's own
// TargetConfig: errors name the target, the key and the line, in the
// file's own words; every gnmic key is used, warned about or refused.
func TestTargetsFile(t *testing.T) {
	tests := []struct {
		file  string
		err   string   // the whole error after "targets file PATH:"; "" for none
		warns []string // the warnings, in order
		check func(t *testing.T, ts map[string]*Target)
	}{
		{file: "targets-typo.yaml", err: ` r2: unknown key "adress" (line 6); did you mean "address"?`},
		{file: "targets-types.yaml", err: "\n" +
			`r1.subscriptions: want a list of strings, got a string ("bgp-neighbors") (line 3)` + "\n" +
			`r1.timeout: want a duration (like 10s, 1m30s), got the number 10 (line 4)` + "\n" +
			`r2: want a mapping (key: value), got a list (line 5)`},
		{file: "targets-unknown.yaml", err: ` r1: unknown key "colour" (line 4); known keys: ` + strings.Join(fileKeys(), ", ")},
		{file: "targets-keepalive-typo.yaml", err: ` r1.grpc-keepalive: unknown key "permit-without-stream" (line 7); did you mean "permitwithoutstream"?`},
		{file: "targets-refused.yaml", err: "\n" +
			`r1.token: gnmic key meshd does not support (line 4); meshd sends no bearer token, it authenticates with username and password` + "\n" +
			`r1.tls-min-version: gnmic key meshd does not support (line 5); meshd negotiates TLS 1.2 or 1.3 and cannot pin a version` + "\n" +
			`r2.address: "127.0.0.1:57401,127.0.0.1:57402": several addresses, which gnmic tries in turn (line 7); meshd dials one` + "\n" +
			`r2.proxy: gnmic key meshd does not support (line 8); meshd dials targets directly, not through a SOCKS5 proxy` + "\n" +
			`r2.metadata: gnmic key meshd does not support (line 9); meshd sends no extra gRPC metadata`},
		{file: "targets-yaml11.yaml", err: ` r1.timeout: want a duration (like 10s, 1m30s), got the number 10 (line 7)`},
		{file: "targets-yes.yaml", check: func(t *testing.T, ts map[string]*Target) {
			if r := ts["r2"]; !isTrue(r.Insecure) || r.SkipVerify == nil || *r.SkipVerify {
				t.Errorf("r2 = %+v, want insecure true and skip-verify false, as gnmic reads yes and off", r)
			}
		}},
		{file: "targets-keepalive.yaml", err: ` r2.grpc-keepalive: set with keepalive-time or keepalive-timeout (line 11); keep one`},
		{file: "targets-warned.yaml", warns: []string{
			`r1.gzip: gnmic key ignored by meshd (line 6); meshd does not compress gNMI streams, the data is the same`,
			`r1.outputs: gnmic key ignored by meshd (line 7); gnmic's outputs, meshd writes to its own sinks`,
			`r1.tcp-keepalive: gnmic key ignored by meshd (line 8); meshd keeps gRPC keepalive (grpc-keepalive, keepalive-time) and Go's TCP keepalive (15s)`,
		}, check: func(t *testing.T, ts map[string]*Target) {
			if r := ts["r1"]; r.Address != "127.0.0.1:57400" || !isTrue(r.Insecure) {
				t.Errorf("r1 = %+v", r)
			}
		}},
		{file: "targets-gnmic.yaml", warns: []string{
			`srl1.outputs: gnmic key ignored by meshd (line 8); gnmic's outputs, meshd writes to its own sinks`,
			`srl1.tags: gnmic key ignored by meshd (line 9); gnmic's target tags (for its clustering), meshd has none`,
			`srl1.gzip: gnmic key ignored by meshd (line 10); meshd does not compress gNMI streams, the data is the same`,
			`srl1.buffer-size: gnmic key ignored by meshd (line 11); gnmic's per-target buffer, meshd bounds its queues itself`,
		}, check: func(t *testing.T, ts map[string]*Target) {
			s := ts["srl1"]
			if s == nil || s.Address != "172.20.20.2:57400" || !isTrue(s.SkipVerify) || s.Username != "admin" ||
				s.Password != "NokiaSrl1!" || !slices.Equal(s.Subscriptions, []string{"srl-bgp-neighbors"}) {
				t.Errorf("srl1 = %+v", s)
			}
			if a := ts["10.0.0.9:57400"]; a == nil || a.Name != "10.0.0.9:57400" || a.Address != "10.0.0.9:57400" {
				t.Errorf("address-only target = %+v", a)
			}
		}},
		{file: "targets-address.yaml", check: func(t *testing.T, ts map[string]*Target) {
			want := map[string]string{"r1": "192.0.2.1:57400", "r2": "[2001:db8::2]:57400", "10.0.0.9": "10.0.0.9:57400", "r4": "192.0.2.4:6030"}
			for name, addr := range want {
				if ts[name] == nil || ts[name].Address != addr || ts[name].Name != name {
					t.Errorf("%s = %+v, want address %s", name, ts[name], addr)
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			p := filepath.Join("testdata", tc.file)
			ts, warns, err := ReadTargetsFile(p)
			if tc.err != "" {
				if want := "targets file " + p + ":" + tc.err; err == nil || err.Error() != want {
					t.Errorf("error:\n%v\nwant:\n%s", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(warns, tc.warns) {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warns, "\n"), strings.Join(tc.warns, "\n"))
			}
			if tc.check != nil {
				tc.check(t, ts)
			}
		})
	}
}

// TestTargetsFileKeepalive: gnmic's grpc-keepalive sets what meshd's
// keepalive-time and keepalive-timeout set, and the config's defaults
// fill in what a file leaves out.
func TestTargetsFileKeepalive(t *testing.T) {
	ts, _, err := parseTargetsFile("t.yaml", []byte("r1:\n  address: 127.0.0.1:57400\n  grpc-keepalive:\n    time: 30s\n    timeout: 5s\nr2:\n  address: 127.0.0.1:57401\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Targets: ts}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if r := cfg.Targets["r1"]; r.KeepaliveTime != 30*time.Second || r.KeepaliveTimeout != 5*time.Second {
		t.Errorf("r1 keepalive = %v/%v, want 30s/5s", r.KeepaliveTime, r.KeepaliveTimeout)
	}
	if r := cfg.Targets["r2"]; r.KeepaliveTime != 5*time.Minute || r.KeepaliveTimeout != 20*time.Second {
		t.Errorf("r2 keepalive = %v/%v, want the defaults 5m/20s", r.KeepaliveTime, r.KeepaliveTimeout)
	}
}

// TestGnmicKeysDecided: every key of the pinned gnmic's target and
// subscription types has a decision, so a gnmic upgrade that adds one
// fails here instead of the key being dropped without a word.
func TestGnmicKeysDecided(t *testing.T) {
	for _, k := range gnmicTargetKeys() {
		if _, ok := targetKeys[k]; !ok {
			t.Errorf("gnmic target key %q: not in targetKeys", k)
		}
	}
	for k := range targetKeys {
		if !slices.Contains(gnmicTargetKeys(), k) {
			t.Errorf("targetKeys has %q, which gnmic's TargetConfig does not", k)
		}
	}
	// gnmic reads subscriptions with mapstructure: those are its keys.
	st := reflect.TypeFor[types.SubscriptionConfig]()
	ours := yamlKeys(reflect.TypeFor[Subscription]())
	for i := range st.NumField() {
		k, _, _ := strings.Cut(st.Field(i).Tag.Get("mapstructure"), ",")
		if !slices.Contains(ours, k) {
			t.Errorf("gnmic subscription key %q: not a key of meshd's Subscription", k)
		}
	}
	for k := range subscriptionKeys {
		if !slices.Contains(ours, k) {
			t.Errorf("subscriptionKeys has %q, which Subscription does not take", k)
		}
	}
}

// TestSubscriptionGnmicKeys: gnmic subscription keys meshd cannot honour
// are refused by name; those that change nothing are warned about.
func TestSubscriptionGnmicKeys(t *testing.T) {
	tests := []struct {
		sub  Subscription
		err  string
		warn string
	}{
		{sub: Subscription{Paths: []string{"/a"}, Depth: 2}, err: "subscriptions.s.depth: gnmic key meshd does not support: meshd sends no depth extension"},
		{sub: Subscription{Paths: []string{"/a"}, SetTarget: true}, err: "subscriptions.s.set-target: gnmic key meshd does not support"},
		{sub: Subscription{Paths: []string{"/a"}, StreamSubscriptions: []any{map[string]any{"paths": []any{"/b"}}}}, err: "subscriptions.s.stream-subscriptions: gnmic key meshd does not support"},
		{sub: Subscription{Paths: []string{"/a"}, Outputs: []string{"influx"}}, warn: "subscriptions.s.outputs: gnmic key ignored by meshd: gnmic's outputs, meshd writes to its own sinks"},
	}
	for _, tc := range tests {
		cfg := Config{Subscriptions: map[string]*Subscription{"s": &tc.sub}}
		cfg.SetDefaults()
		err := cfg.Validate()
		if tc.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
				t.Errorf("%+v: err = %v, want %s", tc.sub, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", tc.sub, err)
		}
		if w := cfg.Warnings(); len(w) != 1 || w[0] != tc.warn {
			t.Errorf("%+v: warnings %q, want %q", tc.sub, w, tc.warn)
		}
	}
}

// fileKeys are the keys a targets file entry takes: gnmic's and meshd's.
func fileKeys() []string {
	ks := yamlKeys(reflect.TypeFor[fileTarget]())
	sort.Strings(ks)
	return ks
}

func yamlKeys(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		k, flags, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if flags == "inline" {
			out = append(out, yamlKeys(f.Type)...)
			continue
		}
		if f.IsExported() && k != "" && k != "-" {
			out = append(out, k)
		}
	}
	return out
}

// max-msg-size, a key meshd adds, is read from a targets file.
func TestTargetsFileMaxMsgSize(t *testing.T) {
	ts, _, err := parseTargetsFile("t.yaml", []byte("r1:\n  address: 127.0.0.1:1\n  max-msg-size: 1048576\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := ts["r1"].MaxMsgSize; got != 1<<20 {
		t.Errorf("max-msg-size = %d, want %d", got, 1<<20)
	}
}
