package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Daemon is a BGP speaker (gobgpd or FRR's bgpd) running inside a test's
// network namespace; it is stopped at test cleanup.
type Daemon struct {
	Name string // "gobgpd" or "bgpd"
	NS   *Netns
	Dir  string // config, log and sockets
	Conf string // config file path
	cmd  *exec.Cmd
	log  *SyncBuffer
	t    testing.TB
	args []string
	bin  string
}

// StartGobgpd starts gobgpd (v4) in ns with the TOML config conf, its gRPC
// API on the namespace's loopback, and stops it at cleanup. Use Gobgp to
// run the gobgp CLI against it.
func StartGobgpd(t testing.TB, ns *Netns, conf string) *Daemon {
	t.Helper()
	bin := Binary(t, "gobgpd")
	Binary(t, "gobgp")
	dir := t.TempDir()
	path := filepath.Join(dir, "gobgpd.toml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatalf("gobgpd config: %v", err)
	}
	d := &Daemon{Name: "gobgpd", NS: ns, Dir: dir, Conf: path, t: t, bin: bin,
		args: []string{"-f", path, "-t", "toml", "-p", "--api-hosts", "127.0.0.1:50051", "--pprof-disable", "--log-level", "info"}}
	d.Start()
	t.Cleanup(d.Stop)
	WaitFor(t, 15*time.Second, "gobgpd API in "+ns.Name, func() bool {
		_, err := Exec("ip", "netns", "exec", ns.Name, "gobgp", "-u", "127.0.0.1", "-p", "50051", "global")
		return err == nil
	})
	return d
}

// StartFRR starts FRR's bgpd with the BMP module in ns, with the config
// conf (frr.conf syntax), without zebra, and stops it at cleanup. Use
// Vtysh to talk to it.
func StartFRR(t testing.TB, ns *Netns, conf string) *Daemon {
	t.Helper()
	bin := Binary(t, "bgpd")
	Binary(t, "vtysh")
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatalf("frr dir: %v", err)
	}
	path := filepath.Join(dir, "bgpd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatalf("bgpd config: %v", err)
	}
	d := &Daemon{Name: "bgpd", NS: ns, Dir: dir, Conf: path, t: t, bin: bin,
		args: []string{"-f", path, "-M", "bmp", "-Z", "-S", "-i", filepath.Join(dir, "bgpd.pid"),
			"--vty_socket", dir, "-z", filepath.Join(dir, "zserv.api"), "--log", "stdout", "-u", "root", "-g", "root"}}
	d.Start()
	t.Cleanup(d.Stop)
	WaitFor(t, 15*time.Second, "bgpd vty in "+ns.Name, func() bool {
		_, err := Exec("ip", "netns", "exec", ns.Name, "vtysh", "--vty_socket", dir, "-d", "bgpd", "-c", "show bgp summary")
		return err == nil
	})
	return d
}

// Start (re)starts the daemon.
func (d *Daemon) Start() {
	d.t.Helper()
	if d.cmd != nil {
		return
	}
	if d.log == nil {
		d.log = &SyncBuffer{}
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", d.NS.Name, d.bin}, d.args...)...)
	cmd.Stdout, cmd.Stderr = d.log, d.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("start %s: %v", d.Name, err)
	}
	d.cmd = cmd
}

// Stop stops the daemon (SIGTERM, then SIGKILL after 5 s).
func (d *Daemon) Stop() {
	if d.cmd == nil {
		return
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	d.cmd = nil
	if d.t.Failed() {
		d.t.Logf("%s log (%s):\n%s", d.Name, d.NS.Name, d.Log())
	}
}

// Kill stops the daemon at once (SIGKILL), as a crash would.
func (d *Daemon) Kill() {
	if d.cmd == nil {
		return
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	_ = d.cmd.Wait()
	d.cmd = nil
}

// Log returns what the daemon wrote so far.
func (d *Daemon) Log() string {
	if d.log == nil {
		return ""
	}
	return d.log.String()
}

// SyncBuffer is a buffer several goroutines (or two pipes) can write to
// at once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Gobgp runs the gobgp CLI against this gobgpd and returns its output,
// failing the test on error.
func (d *Daemon) Gobgp(t testing.TB, args ...string) string {
	t.Helper()
	return d.NS.Run(t, "gobgp", append([]string{"-u", "127.0.0.1", "-p", "50051"}, args...)...)
}

// Vtysh runs vtysh commands against this bgpd and returns the output,
// failing the test on error.
func (d *Daemon) Vtysh(t testing.TB, cmds ...string) string {
	t.Helper()
	args := []string{"--vty_socket", d.Dir, "-d", "bgpd"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	return d.NS.Run(t, "vtysh", args...)
}

// String describes the daemon for messages.
func (d *Daemon) String() string {
	return fmt.Sprintf("%s in %s (%s)", d.Name, d.NS.Name, strings.Join(d.args, " "))
}

// HostVeth joins the test's own (root) network namespace to ns with a veth
// pair and gives each end an address (CIDR form), so a listener in the
// test process is reachable from daemons in ns. The pair goes with ns.
func HostVeth(t testing.TB, ns *Netns, hostCIDR, nsCIDR string) (hostIf, nsIf string) {
	t.Helper()
	n := nsSeq.Add(1)
	hostIf, nsIf = fmt.Sprintf("vh%d-%d", os.Getpid()%10000, n), fmt.Sprintf("vn%d", n)
	Run(t, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", nsIf, "netns", ns.Name)
	t.Cleanup(func() { _, _ = Exec("ip", "link", "del", hostIf) })
	args := []string{"addr", "add", hostCIDR, "dev", hostIf}
	if strings.Contains(hostCIDR, ":") {
		args = append(args, "nodad")
	}
	Run(t, "ip", args...)
	ns.AddAddr(t, nsIf, nsCIDR)
	Run(t, "ip", "link", "set", hostIf, "up")
	ns.Run(t, "ip", "link", "set", nsIf, "up")
	return hostIf, nsIf
}
