package main

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/sinks/gnmiserver"
)

// The containerlab twin runs meshd's own image with command lines and a
// config file nothing else starts: they must pass the checks meshd makes
// at start-up (the namespace lab runs the same code, not these lines).
// This is the probe nodes' half; cmd/meshd checks the collector's.
func TestClabTwinCommands(t *testing.T) {
	twin := testenv.ReadClabTwin(t)
	dockerfile := twin.Dockerfile
	// The image is built on the routers' own FRR image (--bgp frr runs
	// vtysh, which must speak to those routers' daemons) and carries both
	// binaries, with no entrypoint: each node's cmd names its binary.
	if !strings.Contains(dockerfile, "./cmd/meshd-probe") || !strings.Contains(dockerfile, "ENTRYPOINT []") {
		t.Errorf("clab/Dockerfile does not build ./cmd/meshd-probe into an image without an entrypoint")
	}
	probes := 0
	for name, n := range twin.Nodes {
		if n.Image != "meshd:dev" {
			continue
		}
		args := strings.Fields(n.Cmd)
		if len(args) == 0 || (args[0] != "meshd" && args[0] != "meshd-probe") {
			t.Errorf("%s: command %q runs neither meshd nor meshd-probe", name, n.Cmd)
			continue
		}
		if args[0] != "meshd-probe" {
			continue
		}
		probes++
		f := &probeFlags{}
		if err := probeCommand(f).ParseFlags(args[1:]); err != nil {
			t.Errorf("%s: %q: %v", name, n.Cmd, err)
			continue
		}
		if err := f.check(); err != nil {
			t.Errorf("%s: %q: %v", name, n.Cmd, err)
		}
		if f.bgp.Daemon == "frr" && !strings.Contains(dockerfile, "FROM "+twin.Kinds["linux"].Image+"\n") {
			t.Errorf("%s runs --bgp frr, but clab/Dockerfile's image is not built on the routers' %s (vtysh)", name, twin.Kinds["linux"].Image)
		}
	}
	if probes != 2 {
		t.Errorf("%d meshd-probe nodes on meshd's image, want 2", probes)
	}
}

// The agent reports the same OpenConfig models as the collector's target.
func TestOCModelsMatchCollector(t *testing.T) {
	want := gnmiserver.Models[:len(ocModels)]
	for i, m := range ocModels {
		if !proto.Equal(m, want[i]) {
			t.Errorf("model %d: agent reports %v, collector %v", i, m, want[i])
		}
	}
	if len(gnmiserver.Models) <= len(ocModels) || gnmiserver.Models[len(ocModels)].GetName() != "meshd-bgp" {
		t.Errorf("the collector's models after the OpenConfig ones are %v, want meshd-bgp", gnmiserver.Models[len(ocModels):])
	}
}
