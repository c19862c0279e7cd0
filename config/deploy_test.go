package config

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestDeployExamplesLoad holds the deployment examples (deploy/) to the
// config meshd reads: the systemd replica's file, and the meshd.yaml in
// the Kubernetes ConfigMap (with the pod name its env gives).
func TestDeployExamplesLoad(t *testing.T) {
	k8s, err := os.ReadFile("../deploy/kubernetes/meshd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var fromMap string
	dec := yaml.NewDecoder(bytes.NewReader(k8s))
	for {
		var doc struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("deploy/kubernetes/meshd.yaml: %v", err)
		}
		if doc.Kind == "ConfigMap" {
			fromMap = doc.Data["meshd.yaml"]
		}
	}
	if fromMap == "" {
		t.Fatal("deploy/kubernetes/meshd.yaml: no ConfigMap with meshd.yaml")
	}
	mapFile := filepath.Join(t.TempDir(), "meshd.yaml")
	if err := os.WriteFile(mapFile, []byte(fromMap), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POD_NAME", "meshd-1")
	t.Setenv("GNMI_PASSWORD", "secret")
	t.Setenv("MESHD_GNMI_PASSWORD", "secret")
	t.Setenv("HOSTNAME", "meshd-a")
	tests := []struct {
		name, path, member string
	}{
		{"systemd", "../deploy/systemd/meshd.yaml", ""},
		{"kubernetes", mapFile, "meshd-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Cluster.Endpoints) == 0 {
				t.Error("no cluster.endpoints")
			}
			if tt.member != "" && c.Cluster.Name != tt.member {
				t.Errorf("cluster.name %q, want %q", c.Cluster.Name, tt.member)
			}
		})
	}
}
