package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/config"
	"github.com/meshd/meshd/internal/testenv"
)

// meshd run applies the config's memory-limit to the Go runtime, a
// GOMEMLIMIT in its environment wins over it, and /metrics says which
// limit is in force.
func TestRunAppliesMemoryLimit(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "meshd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	auto, _ := (&config.Config{MemoryLimit: config.MemoryLimitAuto}).MemoryLimitBytes()
	tests := []struct {
		name, setting, env string
		want               int64
		logged             string
	}{
		{"setting", "memory-limit: 800MiB\n", "", 800 << 20, "from=memory-limit"},
		{"environment wins", "memory-limit: 800MiB\n", "300MiB", 300 << 20, "from=GOMEMLIMIT"},
		{"off", "memory-limit: off\n", "", 0, "memory limit: none"},
		{"default", "", "", auto, "from=\"auto: 90% of "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
			cfg := filepath.Join(t.TempDir(), "meshd.yaml")
			if err := os.WriteFile(cfg, []byte(fmt.Sprintf("http: {listen: %q}\n%s", httpAddr, tc.setting)), 0o644); err != nil {
				t.Fatal(err)
			}
			var log testenv.SyncBuffer
			cmd := exec.Command(bin, "run", "-c", cfg)
			cmd.Env = os.Environ()
			for i, e := range cmd.Env {
				if strings.HasPrefix(e, "GOMEMLIMIT=") {
					cmd.Env[i] = "GOMEMLIMIT_UNSET_BY_TEST="
				}
			}
			if tc.env != "" {
				cmd.Env = append(cmd.Env, "GOMEMLIMIT="+tc.env)
			}
			cmd.Stdout, cmd.Stderr = &log, &log
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				if t.Failed() {
					t.Logf("meshd's log:\n%s", log.String())
				}
			})
			var got string
			testenv.WaitFor(t, 30*time.Second, "meshd_memory_limit_bytes on /metrics", func() bool {
				resp, err := http.Get("http://" + httpAddr + "/metrics")
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				for _, line := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(line, "meshd_memory_limit_bytes "); ok {
						got = v
						return true
					}
				}
				return false
			})
			if n, err := strconv.ParseFloat(got, 64); err != nil || int64(n) != tc.want {
				t.Errorf("meshd_memory_limit_bytes %s, want %d", got, tc.want)
			}
			if !strings.Contains(log.String(), tc.logged) {
				t.Errorf("log does not say %q:\n%s", tc.logged, log.String())
			}
		})
	}
}
