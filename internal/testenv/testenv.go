// Package testenv starts the real things meshd's integration tests talk to
// (influxd, network namespaces, BGP speakers) and fails a test with a clear
// message, never a silent skip, when one of them is missing.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/tools"
)

// Install is the command that puts every tool the tests need in place.
const Install = "make tools (or: bash scripts/install-tools.sh)"

// Binary finds a tool on PATH, in GOPATH/bin or in FRR's libexec folder and
// fails the test naming the install command when it is not there.
func Binary(t testing.TB, name string) string {
	t.Helper()
	p, err := LookBinary(name)
	if err != nil {
		t.Fatalf("%v; install it with %s", err, Install)
	}
	return p
}

// LookBinary finds a tool like Binary, returning an error instead.
func LookBinary(name string) (string, error) { return tools.Look(name) }

// RequireRoot fails the test unless it runs as root, which namespaces,
// veth links and raw sockets need.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test needs root (network namespaces, veth, raw sockets); run it as root, e.g. sudo make test")
	}
}

// FreePort returns a loopback TCP port below 32768 that was free a moment
// ago, for a server another process starts on it. Not one of the
// kernel's ephemeral ports (above 32768): between this check and the
// server's bind, any outgoing connection on the machine may take one of
// those as its source port.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		p := 24100 + rand.IntN(8000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no free loopback port in 24100-32099")
	return 0
}

// Run runs a command and fails the test with its output if it fails.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := Exec(name, args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

// Exec runs a command and returns its combined output, with the output in
// the error when it fails.
func Exec(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	err := cmd.Run()
	if err != nil {
		return buf.String(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, buf.String())
	}
	return buf.String(), nil
}

// WaitFor polls cond every 50 ms until it returns true or the timeout
// passes, then fails the test with what.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
