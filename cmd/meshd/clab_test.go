package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshd/meshd/config"
	"github.com/meshd/meshd/internal/testenv"
)

// The containerlab twin runs meshd's own image with command lines and a
// config file nothing else starts: they must pass the checks meshd makes
// at start-up (the namespace lab runs the same code, not these lines).
// This is the collector's half; cmd/meshd-probe checks the probes'.
func TestClabTwinCommands(t *testing.T) {
	twin := testenv.ReadClabTwin(t)
	dir, dockerfile := twin.Dir, twin.Dockerfile
	if !strings.Contains(dockerfile, "./cmd/meshd ") && !strings.Contains(dockerfile, "./cmd/meshd\n") {
		t.Errorf("clab/Dockerfile does not build ./cmd/meshd")
	}
	runs := 0
	for name, n := range twin.Nodes {
		if n.Image != "meshd:dev" {
			continue
		}
		args := strings.Fields(n.Cmd)
		if len(args) < 2 || args[0] != "meshd" {
			continue // meshd-probe's nodes: cmd/meshd-probe checks them
		}
		if args[1] != "run" {
			t.Errorf("%s: unknown command %q", name, n.Cmd)
			continue
		}
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
	}
	if runs != 1 {
		t.Errorf("%d meshd run nodes on meshd's image, want 1", runs)
	}
}
