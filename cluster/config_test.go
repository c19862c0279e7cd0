package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{"no cluster", Config{}, ""},
		{"defaults", Config{Endpoints: []string{"http://127.0.0.1:2379"}, Name: "a"}, ""},
		{"short lease", Config{Endpoints: []string{"x"}, Name: "a", LeaseTTL: time.Second}, "lease-ttl"},
		{"slash in name", Config{Endpoints: []string{"x"}, Name: "a/b"}, "cluster.name"},
		{"load factor under 1", Config{Endpoints: []string{"x"}, Name: "a", LoadFactor: 0.5}, "load-factor"},
		{"advertise without port", Config{Endpoints: []string{"x"}, Name: "a", Advertise: Advertise{GNMI: "meshd-a"}}, "cluster.advertise.gnmi"},
		{"advertise", Config{Endpoints: []string{"x"}, Name: "a", Advertise: Advertise{GNMI: "meshd-a:57400", BMP: "[2001:db8::1]:11019"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			c.SetDefaults()
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate: %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
