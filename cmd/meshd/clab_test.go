package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/meshd/meshd/config"
)

// The containerlab twin runs meshd's own image with command lines and a
// config file nothing else starts: they must pass the checks meshd makes
// at start-up (the namespace lab runs the same code, not these lines).
func TestClabTwinCommands(t *testing.T) {
	dir := filepath.Join("..", "..", "clab")
	b, err := os.ReadFile(filepath.Join(dir, "meshd.clab.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var topo struct {
		Topology struct {
			Kinds map[string]struct {
				Image string `yaml:"image"`
			} `yaml:"kinds"`
			Nodes map[string]struct {
				Image string   `yaml:"image"`
				Cmd   string   `yaml:"cmd"`
				Binds []string `yaml:"binds"`
			} `yaml:"nodes"`
		} `yaml:"topology"`
	}
	if err := yaml.Unmarshal(b, &topo); err != nil {
		t.Fatal(err)
	}
	dockerfile, err := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	probes, runs := 0, 0
	for name, n := range topo.Topology.Nodes {
		if n.Image != "meshd:dev" {
			continue
		}
		args := strings.Fields(n.Cmd)
		if len(args) == 0 {
			t.Errorf("%s: no command", name)
			continue
		}
		switch args[0] {
		case "probe":
			probes++
			f := &probeFlags{}
			if err := probeCommand(f).ParseFlags(args[1:]); err != nil {
				t.Errorf("%s: %q: %v", name, n.Cmd, err)
				continue
			}
			if err := f.check(); err != nil {
				t.Errorf("%s: %q: %v", name, n.Cmd, err)
			}
			// --bgp frr runs vtysh: the image must have one that speaks
			// to the routers' FRR, so it is built on their image.
			if f.bgp.Daemon == "frr" && !strings.Contains(string(dockerfile), "FROM "+topo.Topology.Kinds["linux"].Image+"\n") {
				t.Errorf("%s runs --bgp frr, but clab/Dockerfile's image is not built on the routers' %s (vtysh)", name, topo.Topology.Kinds["linux"].Image)
			}
		case "run":
			runs++
			var path string
			for i, a := range args {
				if (a == "-c" || a == "--config") && i+1 < len(args) {
					path = args[i+1]
				}
			}
			host := ""
			for _, bind := range n.Binds {
				if src, dst, ok := strings.Cut(bind, ":"); ok && dst == path {
					host = filepath.Join(dir, src)
				}
			}
			if host == "" {
				t.Errorf("%s: config %q is not bound from the repo", name, path)
				continue
			}
			if _, err := config.Load(host); err != nil {
				t.Errorf("%s: %s: %v", name, host, err)
			}
		default:
			t.Errorf("%s: unknown command %q", name, n.Cmd)
		}
	}
	if probes != 2 || runs != 1 {
		t.Errorf("%d probe and %d run nodes on meshd's image, want 2 and 1", probes, runs)
	}
}
