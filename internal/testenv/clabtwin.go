package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

// ClabTwin is the containerlab twin as its files say: clab/meshd.clab.yml's
// kinds and nodes, and the Dockerfile meshd's image is built from.
type ClabTwin struct {
	Dir        string // clab/, for the paths the nodes bind
	Kinds      map[string]ClabNode
	Nodes      map[string]ClabNode
	Dockerfile string
}

// ClabNode is one node (or kind) of the twin's topology.
type ClabNode struct {
	Image string   `yaml:"image"`
	Cmd   string   `yaml:"cmd"`
	Binds []string `yaml:"binds"`
}

// ReadClabTwin reads the twin from clab/, seen from a test two folders
// below the module root (cmd/<binary>).
func ReadClabTwin(t *testing.T) ClabTwin {
	t.Helper()
	dir := filepath.Join("..", "..", "clab")
	b, err := os.ReadFile(filepath.Join(dir, "meshd.clab.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var topo struct {
		Topology struct {
			Kinds map[string]ClabNode `yaml:"kinds"`
			Nodes map[string]ClabNode `yaml:"nodes"`
		} `yaml:"topology"`
	}
	if err := yaml.Unmarshal(b, &topo); err != nil {
		t.Fatal(err)
	}
	df, err := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	return ClabTwin{Dir: dir, Kinds: topo.Topology.Kinds, Nodes: topo.Topology.Nodes, Dockerfile: string(df)}
}
