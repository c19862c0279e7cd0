package cli

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestNewLogger(t *testing.T) {
	for _, tc := range []struct {
		level, format string
		err           string
	}{
		{"info", "json", ""},
		{"debug", "text", ""},
		{"loud", "json", "--log-level"},
		{"info", "xml", "--log-format"},
	} {
		f, err := os.CreateTemp(t.TempDir(), "log")
		if err != nil {
			t.Fatal(err)
		}
		l, err := NewLogger(tc.level, tc.format, f)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s/%s: error %v, want one naming %s", tc.level, tc.format, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s/%s: %v", tc.level, tc.format, err)
		}
		l.Info("session up", "router", "r1")
		l.Debug("detail")
		b, _ := os.ReadFile(f.Name())
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if want := map[string]int{"info": 1, "debug": 2}[tc.level]; len(lines) != want {
			t.Errorf("%s/%s: %d lines logged, want %d:\n%s", tc.level, tc.format, len(lines), want, b)
		}
		if tc.format == "json" {
			var rec map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil || rec["msg"] != "session up" || rec["router"] != "r1" || rec["level"] != "INFO" {
				t.Errorf("json log line %s: %v", lines[0], err)
			}
		}
	}
}
