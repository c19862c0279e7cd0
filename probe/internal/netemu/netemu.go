// Package netemu is a userspace stand-in for tc netem on kernels built
// without it: a transparent L2 bridge between two interfaces (normally
// two veth ends in a namespace of its own) that delays and drops frames
// per direction. It exists for the probe's integration tests.
package netemu

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/meshd/meshd/probe/capture"
)

// Link bridges interface 0 and interface 1. Direction 0 is frames from 0
// to 1.
type Link struct {
	fd     [2]int
	ifidx  [2]int
	delay  [2]atomic.Int64 // ns
	lossPM [2]atomic.Int64 // per million
	wg     sync.WaitGroup
	cancel context.CancelFunc
	// Forwarded and Dropped count frames per direction.
	Forwarded, Dropped [2]atomic.Uint64
}

// Start bridges ifaces a and b inside namespace ns.
func Start(ns, a, b string) (*Link, error) {
	l := &Link{}
	err := capture.InNetns(ns, func() error {
		for i, name := range []string{a, b} {
			ifc, err := net.InterfaceByName(name)
			if err != nil {
				return err
			}
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
			if err != nil {
				return err
			}
			l.fd[i], l.ifidx[i] = fd, ifc.Index
			if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
				return err
			}
			// Frames are scheduled from the kernel's receive time, so how
			// late this process wakes up does not move them.
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
				return err
			}
			tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
			if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
				return err
			}
			// Without this the socket would read back what it sends.
			_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
		}
		return nil
	})
	if err != nil {
		for _, fd := range l.fd {
			if fd > 0 {
				unix.Close(fd)
			}
		}
		return nil, fmt.Errorf("netemu: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	for d := 0; d < 2; d++ {
		q := make(chan frame, 4096)
		l.wg.Add(2)
		go l.read(ctx, d, q)
		go l.write(ctx, d, q)
	}
	return l, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func rxTime(oob []byte) int64 {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err == nil {
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16 {
				ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
				return ts.Nano()
			}
		}
	}
	return time.Now().UnixNano()
}

type frame struct {
	due  int64
	data []byte
}

// SetDelay sets the one-way delay of direction d.
func (l *Link) SetDelay(d int, delay time.Duration) { l.delay[d].Store(int64(delay)) }

// SetLoss sets the drop probability of direction d (0..1).
func (l *Link) SetLoss(d int, p float64) { l.lossPM[d].Store(int64(p * 1e6)) }

// Close stops the bridge.
func (l *Link) Close() error {
	l.cancel()
	l.wg.Wait()
	return errors.Join(unix.Close(l.fd[0]), unix.Close(l.fd[1]))
}

func (l *Link) read(ctx context.Context, d int, q chan<- frame) {
	defer l.wg.Done()
	defer close(q)
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for ctx.Err() == nil {
		n, oobn, _, from, err := unix.Recvmsg(l.fd[d], buf, oob, 0)
		if err != nil {
			continue // timeout: look at ctx again
		}
		if sl, ok := from.(*unix.SockaddrLinklayer); ok && sl.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		now := rxTime(oob[:oobn])
		if pm := l.lossPM[d].Load(); pm > 0 && rand.Int64N(1e6) < pm {
			l.Dropped[d].Add(1)
			continue
		}
		data := append([]byte(nil), buf[:n]...)
		select {
		case q <- frame{due: now + l.delay[d].Load(), data: data}:
		default:
			l.Dropped[d].Add(1)
		}
	}
}

func (l *Link) write(ctx context.Context, d int, q <-chan frame) {
	defer l.wg.Done()
	to := &unix.SockaddrLinklayer{Ifindex: l.ifidx[1-d], Protocol: htons(unix.ETH_P_ALL)}
	for f := range q {
		// Sleep most of the wait, then spin: timer wake-ups are late by
		// tens of microseconds, which would blur the RTT being tested.
		for {
			left := f.due - time.Now().UnixNano()
			if left <= 0 || ctx.Err() != nil {
				break
			}
			// Go's timers can wake a millisecond late on a busy machine;
			// sleep short of that and spin the rest.
			if left > int64(3*time.Millisecond) {
				time.Sleep(time.Duration(left) - 2*time.Millisecond)
			}
		}
		if err := unix.Sendto(l.fd[1-d], f.data, 0, to); err == nil {
			l.Forwarded[d].Add(1)
		} else {
			l.Dropped[d].Add(1)
		}
	}
}
