// Package wire is a user-space impairment link: it bridges Ethernet frames
// between two interfaces with AF_PACKET sockets and adds delay and loss on
// the way. meshd's lab and tests use it where the kernel has no netem
// queueing discipline (CONFIG_NET_SCH_NETEM unset), which is the case on
// the machines meshd is developed and tested on.
package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/meshd/meshd/internal/netns"
)

// Impairment is what one direction of a link does to frames.
type Impairment struct {
	Delay time.Duration
	Loss  float64 // 0..1
}

// Stats counts what a direction did.
type Stats struct {
	Forwarded, Dropped, Errors uint64
	// MaxLate is the most a delayed frame left after its due time: the
	// wire's own error, which a loaded machine makes larger.
	MaxLate time.Duration
}

// Link bridges two interfaces of one namespace.
type Link struct {
	ns     string
	ifs    [2]string
	fds    [2]int
	idx    [2]int
	imp    [2]atomic.Pointer[Impairment] // [0]: a→b, [1]: b→a
	stats  [2]struct{ fwd, drop, errs, late atomic.Uint64 }
	closed atomic.Bool
	wg     sync.WaitGroup
}

// Open opens the two interfaces in namespace ns (empty: this one). Both
// should carry no addresses; their peers' checksum and segmentation
// offloads must be off (see DisableOffloads) so frames cross intact.
func Open(ns, ifA, ifB string) (*Link, error) {
	l := &Link{ns: ns, ifs: [2]string{ifA, ifB}, fds: [2]int{-1, -1}}
	for i := range l.imp {
		l.imp[i].Store(&Impairment{})
	}
	err := netns.Do(ns, func() error {
		for i, name := range l.ifs {
			ifc, err := net.InterfaceByName(name)
			if err != nil {
				return err
			}
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
			if err != nil {
				if errors.Is(err, unix.EPERM) {
					return fmt.Errorf("AF_PACKET socket: %w (needs CAP_NET_RAW)", err)
				}
				return fmt.Errorf("AF_PACKET socket: %w", err)
			}
			l.fds[i], l.idx[i] = fd, ifc.Index
			if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
				return fmt.Errorf("bind %s: %w", name, err)
			}
			mr := unix.PacketMreq{Ifindex: int32(ifc.Index), Type: unix.PACKET_MR_PROMISC}
			if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mr); err != nil {
				return fmt.Errorf("promiscuous %s: %w", name, err)
			}
			// Kernel receive timestamps make the delay count from when the
			// frame arrived, not from when this process got to read it.
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
				return err
			}
			// A timeout lets the readers notice Close.
			tv := unix.Timeval{Usec: 200000}
			if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("wire %s<->%s: %w", ifA, ifB, err)
	}
	return l, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

var nativeEndian = binary.NativeEndian

var procs sync.Mutex

// Set changes the impairment of frames arriving on interface ifName (that
// is, frames travelling away from it towards the other interface).
func (l *Link) Set(fromIf string, imp Impairment) error {
	for i, n := range l.ifs {
		if n == fromIf {
			l.imp[i].Store(&imp)
			return nil
		}
	}
	return fmt.Errorf("wire: no interface %s on this link", fromIf)
}

// Stats returns the counters of frames arriving on interface i (0 or 1).
func (l *Link) Stats(i int) Stats {
	s := &l.stats[i]
	return Stats{Forwarded: s.fwd.Load(), Dropped: s.drop.Load(), Errors: s.errs.Load(), MaxLate: time.Duration(s.late.Load())}
}

// Run forwards frames both ways until ctx ends or Close.
//
// Each direction's reader and sender own an OS thread, and a sender spins
// through the last stretch of a delay while holding a Go P; Run raises
// GOMAXPROCS by four so that neither starves the rest of the process.
func (l *Link) Run(ctx context.Context) {
	procs.Lock()
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 4)
	procs.Unlock()
	defer func() {
		procs.Lock()
		runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)-4))
		procs.Unlock()
	}()
	for i := 0; i < 2; i++ {
		q := make(chan frame, 4096)
		l.wg.Add(2)
		go l.read(ctx, i, q)
		go l.send(ctx, i, q)
	}
	<-ctx.Done()
	l.Close()
	l.wg.Wait()
}

type frame struct {
	due     time.Time
	delayed bool
	data    []byte
}

func (l *Link) read(ctx context.Context, i int, q chan<- frame) {
	defer l.wg.Done()
	defer close(q)
	realtime()
	buf := make([]byte, 65536)
	oob := make([]byte, 128)
	var last time.Time
	for ctx.Err() == nil && !l.closed.Load() {
		waited := time.Now()
		n, oobn, _, from, err := unix.Recvmsg(l.fds[i], buf, oob, 0)
		now := time.Now()
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if l.closed.Load() {
				return
			}
			l.stats[i].errs.Add(1)
			continue
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // our own sends, seen again
		}
		imp := l.imp[i].Load()
		if imp.Loss > 0 && rand.Float64() < imp.Loss {
			l.stats[i].drop.Add(1)
			continue
		}
		due := now.Add(imp.Delay - frameAge(rxTime(oob[:oobn]), waited, now))
		if due.Before(last) {
			due = last // keep order when the delay shrinks
		}
		last = due
		select {
		case q <- frame{due: due, delayed: imp.Delay > 0, data: append([]byte(nil), buf[:n]...)}:
		default:
			l.stats[i].drop.Add(1) // a full queue is a full link
		}
	}
}

func (l *Link) send(ctx context.Context, i int, q <-chan frame) {
	defer l.wg.Done()
	realtime()
	out := l.fds[1-i]
	to := &unix.SockaddrLinklayer{Ifindex: l.idx[1-i]}
	for f := range q {
		waitUntil(ctx, f.due)
		if err := unix.Sendto(out, f.data, 0, to); err != nil {
			l.stats[i].errs.Add(1)
			continue
		}
		if late := uint64(time.Since(f.due)); f.delayed && late > l.stats[i].late.Load() {
			l.stats[i].late.Store(late)
		}
		l.stats[i].fwd.Add(1)
	}
}

// waitUntil sleeps most of the way and spins the rest. Timers on the
// virtual machines meshd is tested on fire up to tens of milliseconds
// late (time.Sleep and clock_nanosleep alike), far more than the 0.2 ms
// the probe is held to, so only the last stretch is left to a timer-free
// spin that yields to other goroutines.
func waitUntil(ctx context.Context, t time.Time) {
	if d := time.Until(t) - 80*time.Millisecond; d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return
		}
	}
	for time.Now().Before(t) {
		if ctx.Err() != nil {
			return
		}
	}
}

// realtime pins the calling goroutine to its own OS thread and, where
// allowed (root), gives that thread a real-time priority, so a busy
// machine does not make frames late. The spin in waitUntil is bounded by
// a frame's delay, so the thread never holds a CPU for long.
func realtime() {
	runtime.LockOSThread()
	_ = unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: 1 /* SCHED_FIFO */, Priority: 10}, 0)
}

// frameAge is how long before now a frame arrived, by the kernel's
// timestamp rx, bounded by what the read itself shows: a frame read
// after waiting since waited arrived no earlier than that. The kernel's
// timestamp is wall-clock time and Go's deadlines are monotonic; a CI
// machine's two clocks disagreed by a third of a millisecond, and frames
// left the wire before their delay was up (RTT 19.67 ms on a 20 ms wire).
func frameAge(rx, waited, now time.Time) time.Duration {
	age := now.Round(0).Sub(rx)
	return max(0, min(age, now.Sub(waited)))
}

// rxTime reads the kernel's receive timestamp from a control message, or
// falls back to now.
func rxTime(oob []byte) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err == nil {
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16 {
				sec := int64(nativeEndian.Uint64(m.Data[0:8]))
				nsec := int64(nativeEndian.Uint64(m.Data[8:16]))
				return time.Unix(sec, nsec)
			}
		}
	}
	return time.Now()
}

// Close closes the sockets.
func (l *Link) Close() {
	if l.closed.Swap(true) {
		return
	}
	for _, fd := range l.fds {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}
}

// DisableOffloads turns off checksum and segmentation offloads on an
// interface in namespace ns, so frames taken off the wire by AF_PACKET
// carry real checksums and fit the MTU when sent on.
func DisableOffloads(ns, ifName string) error {
	args := []string{"-K", ifName, "tx", "off", "rx", "off", "tso", "off", "gso", "off", "gro", "off"}
	cmd := exec.Command("ethtool", args...)
	if ns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns, "ethtool"}, args...)...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ethtool %v in %s: %v: %s", args, ns, err, out)
	}
	return nil
}
