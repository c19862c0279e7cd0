// Package netns runs a function inside a named network namespace, so a
// process in one namespace can open sockets in another (sockets keep the
// namespace they were made in).
package netns

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Path is where iproute2 keeps named namespaces.
func Path(name string) string { return filepath.Join("/var/run/netns", name) }

// Do runs fn with the calling goroutine's OS thread inside namespace name.
// An empty name runs fn where it is.
func Do(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	target, err := os.Open(Path(name))
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: own namespace: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		if err == unix.EPERM {
			return fmt.Errorf("netns %s: setns: %w (needs CAP_SYS_ADMIN)", name, err)
		}
		return fmt.Errorf("netns %s: setns: %w", name, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread is stuck in the other namespace: keep it locked so
		// it exits with the goroutine instead of serving others.
		return fmt.Errorf("netns %s: setns back: %w", name, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// Listen opens a TCP listener inside namespace name.
func Listen(name, addr string) (net.Listener, error) {
	var l net.Listener
	err := Do(name, func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	})
	return l, err
}

// Dial opens a TCP connection from inside namespace name.
func Dial(ctx context.Context, name, addr string) (net.Conn, error) {
	var c net.Conn
	err := Do(name, func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}
