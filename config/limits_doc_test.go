package config

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/meshd/meshd/bmpbridge"
	"github.com/meshd/meshd/sinks/gnmiserver"
)

// TestLimitsDocumented holds the README's table of limits to the code:
// every limit key of the bmp: and gnmi-server: sections (allow, max-*,
// queue-size) has a row, and the row's default is the one SetDefaults
// gives.
func TestLimitsDocumented(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "## Limits that protect the process")
	if start < 0 {
		t.Fatal("README has no section \"Limits that protect the process\"")
	}
	end := strings.Index(text[start+3:], "\n## ")
	if end < 0 {
		end = len(text) - start - 3
	}
	// A row: | `key`[, `key`] [(note)] | default | ... |
	rows := map[string]string{}
	row := regexp.MustCompile("(?m)^\\| (`[^|]+) \\| ([^|]+) \\|")
	key := regexp.MustCompile("`([a-z-]+\\.[a-z-]+)`")
	for _, m := range row.FindAllStringSubmatch(text[start:start+3+end], -1) {
		for _, k := range key.FindAllStringSubmatch(m[1], -1) {
			rows[k[1]] = strings.TrimSpace(m[2])
		}
	}

	var bmp bmpbridge.Config
	bmp.SetDefaults()
	gs := gnmiserver.Defaults()
	want := map[string]string{}
	limits := func(section string, v any) {
		rv := reflect.ValueOf(v)
		for i := range rv.NumField() {
			tag := strings.Split(rv.Type().Field(i).Tag.Get("yaml"), ",")[0]
			if tag != "allow" && !strings.HasPrefix(tag, "queue-") && !strings.HasPrefix(tag, "max-") {
				continue
			}
			f := rv.Field(i)
			if f.Kind() == reflect.Slice {
				want[section+"."+tag] = "empty"
				continue
			}
			want[section+"."+tag] = fmt.Sprint(f.Interface())
		}
	}
	limits("bmp", bmp)
	limits("gnmi-server", gs)
	var c Config
	c.SetDefaults()
	limits("merge", c.Merge)
	limits("status-page", c.StatusPage)
	if len(want) < 10 {
		t.Fatalf("found only %d limit keys in the configs: %v", len(want), want)
	}
	for k, w := range want {
		got, ok := rows[k]
		if !ok {
			t.Errorf("README's limits table has no row for %s (default %s)", k, w)
			continue
		}
		if got != w && !strings.HasPrefix(got, w+" ") && !strings.HasPrefix(got, w+":") {
			t.Errorf("README: %s defaults to %q, the code to %s", k, got, w)
		}
	}
}

// TestLoadLimits loads a config with every limit set and checks each
// reaches its section's field.
func TestLoadLimits(t *testing.T) {
	c, err := Load("testdata/limits/all.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, g := c.BMP, c.GNMIServer
	got := []any{b.Allow, b.MaxRouters, b.MaxMessagesPerSecond, b.MaxBytesPerSecond, b.MaxRoutesPerRouter, b.MaxMessageSize,
		g.MaxSubscriptionsPerClient, g.MaxSubscriptions, g.MaxRecvMsgSize, g.MaxSendMsgSize, g.QueueSize}
	want := []any{[]string{"10.0.0.0/8", "::1/128", "192.0.2.7"}, 200, 100000, 67108864, 5000000, 1048576,
		16, 256, 1048576, 67108864, 32768}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("limits loaded as %v, want %v", got, want)
	}
}
