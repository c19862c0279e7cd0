package testenv

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Influxd is a real InfluxDB 1.8 server on a loopback port, with its data
// in a test's temporary folder.
type Influxd struct {
	URL  string // http://127.0.0.1:PORT
	Dir  string
	conf string
	bin  string
	cmd  *exec.Cmd
	t    testing.TB
}

// StartInfluxd starts influxd (1.8.10, see Install) on a free loopback
// port and stops it at test cleanup.
func StartInfluxd(t testing.TB) *Influxd {
	t.Helper()
	bin := Binary(t, "influxd")
	dir := t.TempDir()
	httpPort, rpcPort := FreePort(t), FreePort(t)
	conf := filepath.Join(dir, "influxdb.conf")
	cfg := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = %q
  logging-enabled = false
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
  wal-fsync-delay = "0s"
[http]
  bind-address = "127.0.0.1:%d"
  log-enabled = false
  flux-enabled = false
[monitor]
  store-enabled = false
[logging]
  level = "warn"
[continuous_queries]
  enabled = false
`, rpcPort, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), httpPort)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatalf("influxd config: %v", err)
	}
	in := &Influxd{URL: fmt.Sprintf("http://127.0.0.1:%d", httpPort), Dir: dir, conf: conf, bin: bin, t: t}
	in.Start()
	t.Cleanup(in.Stop)
	return in
}

// Start (re)starts the server and waits until it answers /ping.
func (in *Influxd) Start() {
	in.t.Helper()
	if in.cmd != nil {
		return
	}
	in.cmd = startDaemon(in.t, in.Dir, "influxd.log", in.bin, "run", "-config", in.conf)
	waitHTTP(in.t, in.URL+"/ping", http.StatusNoContent, in.Dir, "influxd.log")
}

// PID is the running server's process ID (0 when stopped), for figures
// from /proc.
func (in *Influxd) PID() int {
	if in.cmd == nil {
		return 0
	}
	return in.cmd.Process.Pid
}

// Stop stops the server (SIGTERM, then SIGKILL) and keeps its data.
func (in *Influxd) Stop() {
	if in.cmd == nil {
		return
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = in.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = in.cmd.Process.Kill()
		<-done
	}
	in.cmd = nil
}

// Query runs an InfluxQL query against db and returns the raw JSON answer.
func (in *Influxd) Query(db, q string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, in.URL+"/query", nil)
	if err != nil {
		return nil, err
	}
	v := req.URL.Query()
	v.Set("db", db)
	v.Set("q", q)
	v.Set("epoch", "ns")
	req.URL.RawQuery = v.Encode()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("query %q: HTTP %d: %s", q, resp.StatusCode, body)
	}
	return body, nil
}

// CreateDB creates a database.
func (in *Influxd) CreateDB(t testing.TB, db string) {
	t.Helper()
	resp, err := http.PostForm(in.URL+"/query", map[string][]string{"q": {fmt.Sprintf("CREATE DATABASE %q", db)}})
	if err != nil {
		t.Fatalf("create database: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create database %s: HTTP %d", db, resp.StatusCode)
	}
}
