package testenv

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
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
	e.cmd = startDaemon(e.t, e.Dir, "etcd.log", e.bin, e.args...)
	waitHTTP(e.t, e.Endpoint+"/health", http.StatusOK, e.Dir, "etcd.log")
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
