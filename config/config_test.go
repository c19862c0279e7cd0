package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"USER": "ops", "PASS": "pa$$"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		in, want, err string
	}{
		{"u: ${USER}", "u: ops", ""},
		{"p: ${PASS}", "p: pa$$", ""},
		{"p: pa$word", "p: pa$word", ""},
		{"d: ${NOPE:-dflt}", "d: dflt", ""},
		{"d: ${NOPE:-}", "d: ", ""},
		{"a: 1\nb: ${NOPE}", "", "line 2: environment variable NOPE is not set"},
	}
	for _, tc := range tests {
		got, err := ExpandEnv([]byte(tc.in), lookup)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ExpandEnv(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("ExpandEnv(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestLoad(t *testing.T) {
	t.Setenv("MESHD_TEST_PASS", "s3cret")
	tests := []struct {
		name, yaml string
		errs       []string
	}{
		{"good", `
http: {listen: "127.0.0.1:9100"}
bmp: {listen: [":11019"]}
targets:
  r1: {address: "127.0.0.1:57400", username: admin, password: "${MESHD_TEST_PASS}", insecure: true}
`, nil},
		{"unknown field", "bmp: {listne: [':1']}\n", []string{`bmp: unknown key "listne" (line 1); did you mean "listen"?`}},
		{"bad fields", `
http: {listen: "nohost"}
log: {level: loud}
bmp: {listen: ["x"]}
`, []string{"http.listen", "log.level", "bmp.listen[0]"}},
		{"unset env", "targets: {r1: {address: '${MESHD_NOT_SET_ANYWHERE}'}}\n", []string{"MESHD_NOT_SET_ANYWHERE is not set"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "meshd.yaml")
			if err := os.WriteFile(p, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := Load(p)
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if c.GNMI.Targets["r1"].Password != "s3cret" {
					t.Errorf("password not expanded: %+v", c.GNMI.Targets["r1"])
				}
				return
			}
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
		})
	}
}
