package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The version the release build links in is what `meshd version` prints.
func TestVersionCommand(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "meshd")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7 -X main.commit=0123abc", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "meshd v9.8.7\ncommit 0123abc\n" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if string(out) != want {
		t.Errorf("meshd version printed %q, want %q", out, want)
	}
}

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
		l, err := newLogger(tc.level, tc.format, f)
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
