// Package cmd_test checks meshd's three binaries as shipped: what each
// links in (an agent on a router carries only what it uses) and what its
// version command prints.
package cmd_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// forbidden lists, per binary, the import paths (a path and everything
// under it) that must not be linked in.
var forbidden = []struct {
	bin  string
	deny []string
}{
	// The on-box agent: no InfluxDB client, no collector (merge core,
	// sinks, BMP, gNMI client), no lab, no simulator, no user-space wire,
	// and not the generated OpenConfig binding (ondatra's gnmi/oc, also
	// linked by meshd's schema package): it was two fifths of the agent,
	// which types its few OpenConfig leaves with probe/ocschema.
	{"meshd-probe", []string{
		"github.com/openconfig/ondatra",
		"github.com/meshd/meshd/schema",
		"github.com/influxdata",
		"github.com/meshd/meshd/sinks",
		"github.com/meshd/meshd/merge",
		"github.com/meshd/meshd/bmpbridge",
		"github.com/meshd/meshd/gnmiclient",
		"github.com/meshd/meshd/clab",
		"github.com/meshd/meshd/bench",
		"github.com/meshd/meshd/internal/wire",
	}},
	// The collector: no lab, no simulator, no wire, no agent.
	{"meshd", []string{
		"github.com/meshd/meshd/clab",
		"github.com/meshd/meshd/bench",
		"github.com/meshd/meshd/internal/wire",
		"github.com/meshd/meshd/probe",
	}},
	// The lab runs meshd and meshd-probe as processes; it links neither.
	{"meshd-lab", []string{
		"github.com/influxdata",
		"github.com/meshd/meshd/sinks",
		"github.com/meshd/meshd/merge",
		"github.com/meshd/meshd/bmpbridge",
		"github.com/meshd/meshd/probe",
	}},
}

func TestBinaryDeps(t *testing.T) {
	for _, tc := range forbidden {
		t.Run(tc.bin, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "./"+tc.bin).Output()
			if err != nil {
				var stderr []byte
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = ee.Stderr
				}
				t.Fatalf("go list -deps ./cmd/%s: %v\n%s", tc.bin, err, stderr)
			}
			deps := strings.Fields(string(out))
			if len(deps) < 10 {
				t.Fatalf("go list -deps ./cmd/%s listed only %q", tc.bin, deps)
			}
			for _, d := range deps {
				for _, p := range tc.deny {
					if d == p || strings.HasPrefix(d, p+"/") {
						t.Errorf("%s links %s (nothing under %s may ride in it)", tc.bin, d, p)
					}
				}
			}
		})
	}
}

// The version the release build links in is what `<bin> version` prints.
func TestVersionCommand(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range forbidden {
		t.Run(tc.bin, func(t *testing.T) {
			bin := filepath.Join(dir, tc.bin)
			build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7 -X main.commit=0123abc", "-o", bin, "./"+tc.bin)
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, out)
			}
			out, err := exec.Command(bin, "version").Output()
			if err != nil {
				t.Fatal(err)
			}
			want := tc.bin + " v9.8.7\ncommit 0123abc\n" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
			if string(out) != want {
				t.Errorf("%s version printed %q, want %q", tc.bin, out, want)
			}
		})
	}
}
