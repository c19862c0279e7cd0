package peering

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{Listen: []string{"0.0.0.0:179"}, LocalAS: 65000, RouterID: "10.0.0.1", Peers: []Peer{{Address: "192.0.2.1", AS: 65001}}}
	tests := []struct {
		name string
		edit func(c *Config)
		want string // "" for valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no peers: off", func(c *Config) { *c = Config{} }, ""},
		{"no local AS", func(c *Config) { c.LocalAS = 0 }, "peering.local-as"},
		{"router ID not IPv4", func(c *Config) { c.RouterID = "2001:db8::1" }, "peering.router-id"},
		{"hold time too short", func(c *Config) { c.HoldTime = time.Second }, "peering.hold-time"},
		{"peer twice", func(c *Config) { c.Peers = append(c.Peers, c.Peers[0]) }, "given twice"},
		{"peer without AS", func(c *Config) { c.Peers[0].AS = 0 }, "peers[0].as"},
		{"bad address", func(c *Config) { c.Peers[0].Address = "router1" }, "peers[0].address"},
		{"passive peer, no listener", func(c *Config) { c.Listen = nil }, "peering.listen"},
		{"active peers need no listener", func(c *Config) { c.Listen = nil; c.Peers[0].Active = true }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			c.Peers = append([]Peer(nil), ok.Peers...)
			tt.edit(&c)
			c.SetDefaults()
			err := c.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Config{Peers: []Peer{{Address: "192.0.2.1", AS: 1}, {Address: "192.0.2.2", AS: 1, Name: "edge2", Active: true}}}
	c.SetDefaults()
	if c.HoldTime != 90*time.Second || c.Peers[0].Name != "" || c.Peers[1].Name != "edge2" || c.Peers[1].Port != 179 {
		t.Errorf("defaults: %+v", c)
	}
}
