//go:build linux

package capture

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/meshd/meshd/internal/netns"
	"github.com/meshd/meshd/probe/packet"
)

// LiveConfig says what to capture.
type LiveConfig struct {
	// Interfaces to capture on; empty means all interfaces of the
	// namespace.
	Interfaces []string
	// Port is the TCP port to capture, either side (default 179).
	Port uint16
	// Netns is the name of a network namespace under /run/netns (as `ip
	// netns` names it) or a path to a namespace file; empty means the
	// current one.
	Netns string
	// Poll is how long Next waits before returning ErrTimeout (default
	// 200 ms).
	Poll time.Duration
	// BufferBytes sets SO_RCVBUF (default 4 MiB) so a burst of UPDATEs
	// does not drop the keepalives behind it.
	BufferBytes int
}

// Live is an AF_PACKET capture.
type Live struct {
	fd      int
	buf     []byte
	oob     []byte
	sa      unix.RawSockaddrLinklayer
	iov     unix.Iovec
	msg     unix.Msghdr
	loIndex map[int]bool
}

// Capability numbers from linux/capability.h.
const (
	capNetRaw   = 13
	capSysAdmin = 21
)

// OpenLive opens an AF_PACKET socket for cfg. When cfg.Netns is set, the
// socket is created inside that namespace: a socket stays in the
// namespace it was made in, so only the creating thread has to enter it.
func OpenLive(cfg LiveConfig) (*Live, error) {
	if cfg.Port == 0 {
		cfg.Port = 179
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 200 * time.Millisecond
	}
	if cfg.BufferBytes <= 0 {
		cfg.BufferBytes = 4 << 20
	}
	var l *Live
	err := inNetns(cfg.Netns, func() error {
		var err error
		l, err = openLive(cfg)
		return err
	})
	return l, err
}

// inNetns runs fn inside the named namespace (internal/netns), and names
// the capability the process lacks when it may not enter.
func inNetns(name string, fn func() error) error {
	err := netns.Do(name, fn)
	var ee *netns.EnterError
	if errors.As(err, &ee) {
		return capError(fmt.Sprintf("entering network namespace %s", name), ee.Err, capSysAdmin)
	}
	return err
}

func openLive(cfg LiveConfig) (*Live, error) {
	// Protocol 0 at creation: the socket receives nothing until bind, so
	// no unfiltered frame slips in before the filter is attached.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, capError("opening AF_PACKET socket", err, capNetRaw)
	}
	l := &Live{fd: fd, buf: make([]byte, maxFrame), oob: make([]byte, 128), loIndex: map[int]bool{}}
	fail := func(err error) (*Live, error) {
		unix.Close(fd)
		return nil, err
	}
	var ifindexes []int
	for _, name := range cfg.Interfaces {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return fail(fmt.Errorf("interface %s: %w", name, err))
		}
		ifindexes = append(ifindexes, ifc.Index)
	}
	if ifcs, err := net.Interfaces(); err == nil {
		for _, ifc := range ifcs {
			if ifc.Flags&net.FlagLoopback != 0 {
				l.loIndex[ifc.Index] = true
			}
		}
	}
	prog, err := Filter(cfg.Port, ifindexes)
	if err != nil {
		return fail(err)
	}
	if err := attach(fd, prog); err != nil {
		return fail(fmt.Errorf("attaching BPF filter: %w", err))
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fail(fmt.Errorf("SO_TIMESTAMPNS: %w", err))
	}
	// Best effort: a smaller buffer still works, it just drops earlier.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, cfg.BufferBytes); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.BufferBytes)
	}
	tv := unix.NsecToTimeval(cfg.Poll.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail(fmt.Errorf("SO_RCVTIMEO: %w", err))
	}
	sll := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL)}
	if len(ifindexes) == 1 {
		sll.Ifindex = ifindexes[0]
	}
	if err := unix.Bind(fd, sll); err != nil {
		return fail(fmt.Errorf("binding AF_PACKET socket: %w", err))
	}
	l.iov.Base = &l.buf[0]
	l.iov.SetLen(len(l.buf))
	l.msg.Name = (*byte)(unsafe.Pointer(&l.sa))
	l.msg.Iov = &l.iov
	l.msg.Iovlen = 1
	l.msg.Control = &l.oob[0]
	return l, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func attach(fd int, prog []bpf.RawInstruction) error {
	f := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &f)
}

// Filter builds the kernel filter for a SOCK_DGRAM packet socket (data
// starts at the network header): unfragmented TCP over IPv4, or TCP
// directly after the IPv6 header, with port as source or destination,
// and, when ifindexes is not empty, only on those interfaces.
func Filter(port uint16, ifindexes []int) ([]bpf.RawInstruction, error) {
	const accept, drop = 0xffff_ffff, 0
	p := uint32(port)
	var ins []bpf.Instruction
	if len(ifindexes) > 1 {
		ins = append(ins, bpf.LoadExtension{Num: bpf.ExtInterfaceIndex})
		for i, idx := range ifindexes {
			// Jump over the remaining checks and the drop to the IP part.
			ins = append(ins, bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(idx), SkipTrue: uint8(len(ifindexes) - i)})
		}
		ins = append(ins, bpf.RetConstant{Val: drop})
	}
	ins = append(ins,
		bpf.LoadAbsolute{Off: 0, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 4, SkipFalse: 9}, // to v6
		// IPv4
		bpf.LoadAbsolute{Off: 9, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipFalse: 16}, // drop
		bpf.LoadAbsolute{Off: 6, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 14}, // drop
		bpf.LoadMemShift{Off: 0},
		bpf.LoadIndirect{Off: 0, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: p, SkipTrue: 10}, // accept
		bpf.LoadIndirect{Off: 2, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: p, SkipTrue: 8, SkipFalse: 9},
		// v6:
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipFalse: 8}, // drop
		bpf.LoadAbsolute{Off: 6, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipFalse: 6}, // drop
		bpf.LoadAbsolute{Off: 40, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: p, SkipTrue: 3}, // accept
		bpf.LoadAbsolute{Off: 42, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: p, SkipTrue: 1},
		bpf.RetConstant{Val: drop},
		bpf.RetConstant{Val: accept},
		bpf.RetConstant{Val: drop},
	)
	return bpf.Assemble(ins)
}

// Next returns the next frame or ErrTimeout.
func (l *Live) Next() (Frame, error) {
	for i := 0; i < 64; i++ {
		l.msg.Namelen = uint32(unsafe.Sizeof(l.sa))
		l.msg.SetControllen(len(l.oob))
		l.msg.Flags = 0
		n, _, errno := unix.Syscall(unix.SYS_RECVMSG, uintptr(l.fd), uintptr(unsafe.Pointer(&l.msg)), unix.MSG_TRUNC)
		if errno != 0 {
			switch errno {
			case unix.EAGAIN, unix.EINTR:
				return Frame{}, ErrTimeout
			}
			return Frame{}, fmt.Errorf("recvmsg: %w", errno)
		}
		ifindex := int(l.sa.Ifindex)
		// Loopback shows every frame twice, going out and coming in.
		if l.sa.Pkttype == packet.PktOutgoing && l.loIndex[ifindex] {
			continue
		}
		orig := int(n)
		data := l.buf[:min(int(n), len(l.buf))]
		return Frame{
			Data: data, Time: l.stamp(), Link: LinkEtherType, EtherType: htons(l.sa.Protocol),
			PktType: l.sa.Pkttype, Ifindex: ifindex, OrigLen: orig,
		}, nil
	}
	return Frame{}, ErrTimeout
}

func (l *Live) stamp() int64 {
	oob := l.oob[:l.msg.Controllen]
	for len(oob) >= unix.CmsgSpace(0) {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(oob) {
			break
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_TIMESTAMPNS && int(h.Len) >= unix.CmsgLen(int(unsafe.Sizeof(unix.Timespec{}))) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
			return ts.Nano()
		}
		oob = oob[unix.CmsgSpace(int(h.Len)-unix.CmsgLen(0)):]
	}
	return time.Now().UnixNano()
}

// Close closes the socket.
func (l *Live) Close() error { return unix.Close(l.fd) }

// Stats returns the kernel's counts of frames passed to the socket and
// dropped for lack of buffer since the previous call.
func (l *Live) Stats() (packets, drops uint32, err error) {
	st, err := unix.GetsockoptTpacketStats(l.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0, 0, err
	}
	return st.Packets, st.Drops, nil
}

// LocalAddrs returns the addresses of every interface in the named
// namespace (the current one when name is empty).
func LocalAddrs(ns string) ([]netip.Addr, error) {
	var out []netip.Addr
	err := inNetns(ns, func() error {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					out = append(out, ip.Unmap())
				}
			}
		}
		return nil
	})
	return out, err
}

// capError explains a permission failure by naming the capability the
// process lacks, read from its effective set, instead of a bare EPERM.
func capError(what string, err error, capNum int) error {
	if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%s: %w", what, err)
	}
	name := capName(capNum)
	have, known := hasCap(capNum)
	switch {
	case known && !have:
		return fmt.Errorf("%s: %w: the process lacks %s (run as root, or grant it: setcap cap_net_raw,cap_sys_admin+ep meshd-probe)", what, err, name)
	default:
		return fmt.Errorf("%s: %w: %s is needed (an LSM or user namespace may be refusing it)", what, err, name)
	}
}

// hasCap reports whether the calling thread has capability c in its
// effective set; known is false when that cannot be read.
func hasCap(c int) (have, known bool) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false, false
	}
	return data[c/32].Effective&(1<<(uint(c)%32)) != 0, true
}

func capName(c int) string {
	switch c {
	case capNetRaw:
		return "CAP_NET_RAW"
	case capSysAdmin:
		return "CAP_SYS_ADMIN"
	}
	return "CAP_" + strconv.Itoa(c)
}
