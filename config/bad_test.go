package config

import (
	"path/filepath"
	"testing"
)

// TestBadConfigs loads each config of testdata/bad and wants the exact
// error: said in the config's own words (key path, line, what was
// expected, what was found), never in Go's type names.
func TestBadConfigs(t *testing.T) {
	t.Setenv("MESHD_TEST_PASS", "s3cret")
	tests := []struct {
		file, want string
	}{
		{"target-typo.yaml", `targets.r2: unknown key "adress" (line 7); did you mean "address"?`},
		{"defaults-typo.yaml", `defaults: unknown key "pasword" (line 3); did you mean "password"?`},
		{"aliases-string.yaml", `bmp.aliases.r1: want a list of strings, got a string ("r1.example.net") (line 4)`},
		{"aliases-not-mapping.yaml", `bmp.aliases: want a mapping of names to lists of strings, got a list (line 3)`},
		{"listen-string.yaml", `bmp.listen: want a list of strings, got a string (":11019") (line 2)`},
		{"syntax.yaml", `line 1: YAML syntax: did not find expected ',' or ']'`},
		{"section-not-mapping.yaml", "\n" +
			`log: want a mapping (key: value), got a string ("debug") (line 1)` + "\n" +
			`targets: want a mapping of names to mappings, got a list (line 3)`},
		{"wrong-types.yaml", "\n" +
			`merge.queue-depth: want a whole number, got a string ("lots") (line 4)` + "\n" +
			`bmp.flush-interval: want a duration (like 10s, 1m30s), got the number 100 (line 6)` + "\n" +
			`bmp.route-events: want true or false, got a string ("sometimes") (line 7)` + "\n" +
			`gnmi-server.allow-insecure: want true or false, got a string ("yes please") (line 10)` + "\n" +
			`influxdb.timeout: want a duration (like 10s, 1m30s), got a string ("5x") (line 13)`},
		{"unknown-keys.yaml", "\n" +
			`line 1: unknown key "htpp"; did you mean "http"?` + "\n" +
			`influxdb: unknown key "batchsize" (line 5); did you mean "batch-size"?` + "\n" +
			`influxdb: unknown key "use_gzip" (line 6); did you mean "use-gzip"?` + "\n" +
			`subscriptions.mine: unknown key "sample_interval" (line 10); did you mean "sample-interval"?` + "\n" +
			`subscriptions.mine: unknown key "colour" (line 11); known keys: depth, encoding, heartbeat-interval, history, mode, models, name, outputs, paths, prefix, qos, sample-interval, set-target, stream-mode, stream-subscriptions, suppress-redundant, target, updates-only`},
		// Past decoding, validation speaks the same way.
		{"invalid-values.yaml", "\n" +
			`http.listen: "nohost" is not host:port: address nohost: missing port in address` + "\n" +
			`bmp.listen[0]: "x": address x: missing port in address`},
		{"limits.yaml", "\n" +
			`bmp.allow[1]: "router1" is neither a CIDR nor an address` + "\n" +
			`bmp.allow[2]: "10.0.0.0/40" is neither a CIDR nor an address` + "\n" +
			`bmp.max-routes-per-router: must be >= 0` + "\n" +
			`bmp.max-bytes-per-second: must be 0 or at least bmp.max-message-size (1048576)`},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			p := filepath.Join("testdata", "bad", tc.file)
			_, err := Load(p)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			sep := " "
			if tc.want[0] == '\n' {
				sep = ""
			}
			if want := "config " + p + ":" + sep + tc.want; err.Error() != want {
				t.Errorf("error:\n%s\nwant:\n%s", err, want)
			}
		})
	}
}
