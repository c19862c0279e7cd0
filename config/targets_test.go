package config

import (
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/gnmiclient"
)

// TestTargetsAsGnmic loads meshd configs whose targets key uses gnmic's
// keys: each means what it means in a gnmic targets file (an address
// without a port gets 57400, YAML 1.1 booleans, grpc-keepalive), and a
// key meshd refuses or does not know is an error naming it.
func TestTargetsAsGnmic(t *testing.T) {
	tests := []struct {
		file  string
		err   string   // the error after "config PATH: "; "" for none
		warns []string // Config.GNMI.Warnings, in order
		check func(t *testing.T, ts gnmiclient.Targets)
	}{
		{file: "ports.yaml", check: func(t *testing.T, ts gnmiclient.Targets) {
			want := map[string]string{"r1": "192.0.2.1:57400", "r2": "[2001:db8::2]:57400", "10.0.0.9": "10.0.0.9:57400", "r4": "192.0.2.4:6030"}
			for name, addr := range want {
				if ts[name] == nil || ts[name].Address != addr || ts[name].Name != name {
					t.Errorf("%s = %+v, want address %s", name, ts[name], addr)
				}
			}
		}},
		{file: "yaml11.yaml", check: func(t *testing.T, ts gnmiclient.Targets) {
			r := ts["r1"]
			if r.Insecure == nil || !*r.Insecure || r.SkipVerify == nil || *r.SkipVerify {
				t.Errorf("r1 = %+v, want insecure true and skip-verify false, as gnmic reads yes and off", r)
			}
		}},
		{file: "keepalive.yaml", check: func(t *testing.T, ts gnmiclient.Targets) {
			if r := ts["r1"]; r.KeepaliveTime != 30*time.Second || r.KeepaliveTimeout != 5*time.Second {
				t.Errorf("r1 keepalive %v/%v, want 30s/5s", r.KeepaliveTime, r.KeepaliveTimeout)
			}
		}},
		{file: "token.yaml", err: `targets.r1.token: gnmic key meshd does not support (line 5); meshd sends no bearer token, it authenticates with username and password`},
		{file: "unknown.yaml", err: `targets.r1: unknown key "colour" (line 5); known keys: address, `},
		{file: "bare-duration.yaml", err: `targets.r1.timeout: want a duration (like 10s, 1m30s), got the number 10 (line 5)`},
		{file: "warned.yaml", warns: []string{
			`targets.r1.gzip: gnmic key ignored by meshd (line 5); meshd does not compress gNMI streams, the data is the same`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			p := filepath.Join("testdata", "targets", tc.file)
			c, err := Load(p)
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), "config "+p+": "+tc.err) {
					t.Fatalf("error:\n%v\nwant it to begin:\n%s", err, "config "+p+": "+tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if w := c.GNMI.Warnings(); !slices.Equal(w, tc.warns) {
				t.Errorf("warnings:\n%q\nwant:\n%q", w, tc.warns)
			}
			if tc.check != nil {
				tc.check(t, c.GNMI.Targets)
			}
		})
	}
}

// TestTargetsSameAsFile: the same targets under meshd.yaml's targets key
// and in a gnmic targets file decode, with the same defaults, to the
// same targets.
func TestTargetsSameAsFile(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "targets", "same.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ts, warns, err := gnmiclient.ReadTargetsFile(filepath.Join("testdata", "targets", "same-targets-file.yaml"))
	if err != nil || len(warns) > 0 {
		t.Fatalf("targets file: %v %q", err, warns)
	}
	file := gnmiclient.Config{Targets: ts, Subscriptions: c.GNMI.Subscriptions, Defaults: c.GNMI.Defaults}
	file.SetDefaults()
	if err := file.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.GNMI.Targets) != 3 || !reflect.DeepEqual(c.GNMI.Targets, file.Targets) {
		for name, tgt := range c.GNMI.Targets {
			t.Errorf("config %s = %+v\n  file %s = %+v", name, tgt, name, file.Targets[name])
		}
	}
	if s := c.GNMI.Targets["srl1"]; s.Address != "172.20.20.2:57400" || s.KeepaliveTime != time.Minute {
		t.Errorf("srl1 = %+v", s)
	}
}
