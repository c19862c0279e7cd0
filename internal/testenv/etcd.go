package testenv

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Etcd is a real single-member etcd (Debian's etcd-server, see Install) on
// loopback ports below the ephemeral range, with its data in a test's
// temporary folder.
type Etcd struct {
	Endpoint string // http://127.0.0.1:PORT
	Dir      string
	args     []string
	bin      string
	cmd      *exec.Cmd
	t        testing.TB
}

// StartEtcd starts etcd and stops it at test cleanup.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	bin := Binary(t, "etcd")
	dir := t.TempDir()
	client, peer := FreePort(t), FreePort(t)
	cu, pu := fmt.Sprintf("http://127.0.0.1:%d", client), fmt.Sprintf("http://127.0.0.1:%d", peer)
	e := &Etcd{Endpoint: cu, Dir: dir, bin: bin, t: t, args: []string{
		"--name", "meshd-test", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", cu, "--advertise-client-urls", cu,
		"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
		"--initial-cluster", "meshd-test=" + pu, "--initial-cluster-state", "new",
		"--logger", "zap", "--log-level", "warn",
	}}
	e.Start()
	t.Cleanup(e.Stop)
	return e
}

// Start (re)starts etcd on its data and waits until it is healthy.
func (e *Etcd) Start() {
	e.t.Helper()
	if e.cmd != nil {
		return
	}
	logf, err := os.OpenFile(filepath.Join(e.Dir, "etcd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		e.t.Fatalf("etcd log: %v", err)
	}
	cmd := exec.Command(e.bin, e.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start etcd: %v", err)
	}
	logf.Close()
	e.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(e.Endpoint + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(e.Dir, "etcd.log"))
			e.t.Fatalf("etcd not healthy after 30 s at %s: %v\n%s", e.Endpoint, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills etcd (its data stays for Start).
func (e *Etcd) Stop() {
	if e.cmd == nil {
		return
	}
	_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
	_ = e.cmd.Wait()
	e.cmd = nil
}
