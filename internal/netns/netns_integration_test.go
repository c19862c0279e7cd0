//go:build integration

package netns_test

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/meshd/meshd/internal/netns"
	"github.com/meshd/meshd/internal/testenv"
)

// nsID is the inode of a namespace file: two files name the same
// namespace when their inodes agree.
func nsID(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// Do enters the namespace by name and by path, runs fn there, and leaves
// neither the caller's thread nor any other thread in it, even with the
// caller locked to its thread and many calls at once.
func TestDo(t *testing.T) {
	ns := testenv.NewNetns(t, "nsdo")
	want := nsID(t, "/run/netns/"+ns.Name)
	self := nsID(t, "/proc/self/ns/net")
	if want == self {
		t.Fatal("the test namespace is the test's own")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, name := range []string{ns.Name, "/run/netns/" + ns.Name, "/var/run/netns/" + ns.Name} {
		var inside uint64
		if err := netns.Do(name, func() error {
			inside = nsID(t, "/proc/thread-self/ns/net")
			return nil
		}); err != nil {
			t.Fatalf("Do(%s): %v", name, err)
		}
		if inside != want {
			t.Errorf("Do(%s): fn ran in namespace %d, want %d", name, inside, want)
		}
		if got := nsID(t, "/proc/thread-self/ns/net"); got != self {
			t.Errorf("Do(%s): the caller's thread is left in namespace %d", name, got)
		}
	}
	// Many at once: afterwards every thread of the process is back home.
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = netns.Do(ns.Name, func() error { return nil })
		}()
	}
	wg.Wait()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		var st unix.Stat_t
		if unix.Stat("/proc/self/task/"+task.Name()+"/ns/net", &st) == nil && st.Ino != self {
			t.Errorf("thread %s is left in namespace %d", task.Name(), st.Ino)
		}
	}
	// fn's own error comes back as is, not as an EnterError.
	sentinel := errors.New("fn failed")
	err = netns.Do(ns.Name, func() error { return sentinel })
	var ee *netns.EnterError
	if !errors.Is(err, sentinel) || errors.As(err, &ee) {
		t.Errorf("fn's error came back as %v", err)
	}
}

func TestDoMissing(t *testing.T) {
	ran := false
	err := netns.Do("mt-no-such-namespace", func() error { ran = true; return nil })
	var ee *netns.EnterError
	if !errors.As(err, &ee) || ee.NS != "mt-no-such-namespace" || !errors.Is(err, os.ErrNotExist) || ran {
		t.Errorf("Do on a missing namespace: %v (ran fn: %v)", err, ran)
	}
}

// Listen and Dial make sockets in the namespace: a listener there is
// reachable by a dial there, not from the test's own namespace.
func TestListenDial(t *testing.T) {
	ns := testenv.NewNetns(t, "nsld")
	l, err := netns.Listen(ns.Name, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	c, err := netns.Dial(t.Context(), ns.Name, l.Addr().String())
	if err != nil {
		t.Fatalf("dial inside: %v", err)
	}
	c.Close()
	if c, err := netns.Dial(t.Context(), "", l.Addr().String()); err == nil {
		c.Close()
		t.Errorf("a dial from the host's namespace reached the listener in %s", ns.Name)
	}
}
