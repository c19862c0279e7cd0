package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStatusPageBeyondLoopback: the status page and its API are refused
// beyond loopback without TLS and credentials, unless opted out, as the
// gNMI target is.
func TestStatusPageBeyondLoopback(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		refused    bool
	}{
		{"loopback", `http: {listen: "127.0.0.1:9100"}`, false},
		{"loopback by name", `http: {listen: "localhost:9100"}`, false},
		{"IPv6 loopback", `http: {listen: "[::1]:9100"}`, false},
		{"every interface", `http: {listen: "0.0.0.0:9100"}`, true},
		{"every interface, empty host", `http: {listen: ":9100"}`, true},
		{"TLS without credentials", `http: {listen: "0.0.0.0:9100", tls-cert: c.pem, tls-key: k.pem}`, true},
		{"credentials without TLS", `http: {listen: "0.0.0.0:9100", username: u, password: p}`, true},
		{"TLS and credentials", `http: {listen: "0.0.0.0:9100", tls-cert: c.pem, tls-key: k.pem, username: u, password: p}`, false},
		{"opted out", `http: {listen: "0.0.0.0:9100", allow-insecure: true}`, false},
		{"no page", "http: {listen: \"0.0.0.0:9100\"}\nstatus-page: {disable: true}", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "meshd.yaml")
			if err := os.WriteFile(f, []byte(c.yaml+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(f)
			refused := err != nil && strings.Contains(err.Error(), "beyond loopback without TLS and credentials")
			if refused != c.refused || (err != nil && !refused) {
				t.Errorf("Load = %v; want refused %v", err, c.refused)
			}
		})
	}
}
