//go:build integration

package netlab

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/meshd/meshd/internal/testenv"
)

// Debian's bird parses the config the lab writes for every BIRD router of
// a 20-router lab (bird -p checks a config and exits).
func TestBirdConfigParses(t *testing.T) {
	bin := testenv.Binary(t, "bird")
	topo, err := NewTopology(20)
	if err != nil {
		t.Fatal(err)
	}
	l := &Lab{Topo: topo, State: State{Dir: t.TempDir()}}
	for _, r := range topo.Routers {
		if r.Daemon != "bird" {
			continue
		}
		dir := l.BIRDDir(r)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"hijack4.conf", "hijack6.conf"} {
			if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// A hijack route, as Hijack appends it.
		if err := os.WriteFile(filepath.Join(dir, "hijack6.conf"), []byte("route 2001:db8:99::/48 blackhole;\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(dir, "bird.conf")
		if err := os.WriteFile(conf, []byte(l.birdConfig(r)), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "-p", "-c", conf).CombinedOutput(); err != nil {
			t.Errorf("%s: bird -p: %v\n%s", r.Name, err, out)
		}
	}
}
