// Package netns runs a function inside a network namespace, so a process
// in one namespace can open sockets in another: a socket keeps the
// namespace it was made in, so only the thread that makes it has to enter.
// It is the one place meshd switches namespaces (the probe's capture, its
// gobgpd client, the lab and its wire all come through here), on
// github.com/vishvananda/netns.
//
// Threading: fn runs on a goroutine of its own, locked to its OS thread
// for the whole switch, so the caller's thread never changes namespace.
// The thread returns to its namespace before it is unlocked; if it cannot,
// it is left locked, and the Go runtime ends it with the goroutine instead
// of handing it to another goroutine in the wrong namespace.
package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strings"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Dir is where iproute2 keeps named namespaces (`ip netns add NAME`).
const Dir = "/run/netns"

// Path returns the file of namespace ns: a name in Dir, or ns itself when
// it is a path (it holds a slash).
func Path(ns string) string {
	if strings.ContainsRune(ns, '/') {
		return ns
	}
	return filepath.Join(Dir, ns)
}

// EnterError is a failure to enter (or open) a namespace, as opposed to
// the error of the function run there.
type EnterError struct {
	NS  string
	Err error
}

func (e *EnterError) Error() string {
	msg := fmt.Sprintf("network namespace %s: %v", e.NS, e.Err)
	if errors.Is(e.Err, unix.EPERM) {
		msg += " (entering a namespace needs CAP_SYS_ADMIN)"
	}
	return msg
}

func (e *EnterError) Unwrap() error { return e.Err }

// Do runs fn on an OS thread inside namespace ns (a name in /run/netns or
// a path to a namespace file) and returns its error. An empty ns runs fn
// on the caller's goroutine, where it is.
func Do(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	target, err := vnetns.GetFromPath(Path(ns))
	if err != nil {
		return &EnterError{NS: ns, Err: err}
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- &EnterError{NS: ns, Err: fmt.Errorf("own namespace: %w", err)}
			return
		}
		defer orig.Close()
		if err := vnetns.Set(target); err != nil {
			// setns failed: the thread is still where it was.
			runtime.UnlockOSThread()
			errc <- &EnterError{NS: ns, Err: fmt.Errorf("setns: %w", err)}
			return
		}
		ferr := fn()
		if err := vnetns.Set(orig); err != nil {
			// Stuck in ns: stay locked, so the thread dies with us.
			errc <- errors.Join(ferr, fmt.Errorf("network namespace %s: returning: %w", ns, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Listen opens a TCP listener inside namespace ns.
func Listen(ns, addr string) (net.Listener, error) {
	var l net.Listener
	err := Do(ns, func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	})
	return l, err
}

// Dial opens a TCP connection from inside namespace ns.
func Dial(ctx context.Context, ns, addr string) (net.Conn, error) {
	var c net.Conn
	err := Do(ns, func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}
