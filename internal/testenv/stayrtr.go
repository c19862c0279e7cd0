package testenv

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/meshd/meshd/rpki/vrpfile"
)

// StayRTR is a real RPKI cache: Debian's stayrtr serving the VRPs of a
// JSON file the test writes (rpki-client's format), on loopback ports
// below the ephemeral range. It reads the file again every second and
// tells its clients (Serial Notify); its RTR refresh and retry intervals
// are 1 s.
type StayRTR struct {
	Addr     string // host:port of the RTR service
	File     string
	Protocol int // the highest RTR version it speaks (stayrtr's -protocol)
	dir      string
	metrics  string
	bin      string
	cmd      *exec.Cmd
	t        testing.TB
}

// ROA is one entry of the VRP file.
type ROA = vrpfile.ROA

// StartStayRTR writes roas and starts the cache speaking up to version
// protocol (0, 1 or 2); it is stopped at test cleanup.
func StartStayRTR(t testing.TB, protocol int, roas []ROA) *StayRTR {
	t.Helper()
	dir := t.TempDir()
	s := &StayRTR{Addr: fmt.Sprintf("127.0.0.1:%d", FreePort(t)), File: filepath.Join(dir, "vrps.json"), Protocol: protocol,
		dir: dir, metrics: fmt.Sprintf("127.0.0.1:%d", FreePort(t)), bin: Binary(t, "stayrtr"), t: t}
	s.Write(roas)
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Write replaces the VRP file (atomically: stayrtr never reads half).
func (s *StayRTR) Write(roas []ROA) {
	s.t.Helper()
	if err := vrpfile.Write(s.File, roas); err != nil {
		s.t.Fatal(err)
	}
}

// Start (re)starts the cache, as a new session, and waits for its
// metrics endpoint. A cache never fetches anything but the file.
func (s *StayRTR) Start() {
	s.t.Helper()
	if s.cmd != nil {
		return
	}
	s.cmd = startDaemon(s.t, s.dir, "stayrtr.log", s.bin,
		"-bind", s.Addr, "-metrics.addr", s.metrics, "-cache", s.File, "-refresh", "1", "-checktime=false",
		"-rtr.refresh", "1", "-rtr.retry", "1", "-protocol", fmt.Sprint(s.Protocol), "-log.verbose=false")
	waitHTTP(s.t, "http://"+s.metrics+"/metrics", http.StatusOK, s.dir, "stayrtr.log")
}

// Stop kills the cache.
func (s *StayRTR) Stop() {
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}
