package peering

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
)

// BGP message types the tap keeps.
const (
	msgOpen         = 1
	msgUpdate       = 2
	msgNotification = 3
	bgpHeaderLen    = 19
)

// framer splits one direction of a BGP session into messages, keeping
// the whole OPENs and NOTIFICATIONs and skipping the rest unread.
type framer struct {
	hdr  [bgpHeaderLen]byte
	have int    // header bytes read of the current message
	left int    // body bytes still to come
	keep []byte // the whole message, when it is kept
	bad  bool   // the stream could not be framed: nothing more is read
}

// feed takes the next bytes of the stream; done is called with each
// kept message whole.
func (f *framer) feed(p []byte, done func(typ byte, msg []byte)) {
	for len(p) > 0 && !f.bad {
		if f.have < bgpHeaderLen {
			n := copy(f.hdr[f.have:], p)
			f.have += n
			p = p[n:]
			if f.have < bgpHeaderLen {
				return
			}
			l := int(binary.BigEndian.Uint16(f.hdr[16:18]))
			if l < bgpHeaderLen || l > 65535 {
				f.bad = true // CoreBGP ends such a session itself
				return
			}
			f.left = l - bgpHeaderLen
			f.keep = nil
			if t := f.hdr[18]; t == msgOpen || t == msgNotification {
				f.keep = append(make([]byte, 0, l), f.hdr[:]...)
			}
		}
		n := min(f.left, len(p))
		if f.keep != nil {
			f.keep = append(f.keep, p[:n]...)
		}
		f.left -= n
		p = p[n:]
		if f.left == 0 {
			if f.keep != nil {
				done(f.hdr[18], f.keep)
			}
			f.have, f.keep = 0, nil
		}
	}
}

// tap is what one accepted connection's messages told: the OPEN and the
// NOTIFICATION each way, and whether the router closed it.
type tap struct {
	mu            sync.Mutex
	local, remote netip.AddrPort
	// "router" is the router's side (what meshd read), "meshd" meshd's
	// (what it wrote).
	routerOpen, meshdOpen   []byte
	routerNotif, meshdNotif []byte
	routerClosed            bool
	in, out                 framer
}

// tapConn is an accepted connection read and written through its tap.
type tapConn struct {
	net.Conn
	t *tap
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.t.feed(&c.t.in, p[:n], &c.t.routerOpen, &c.t.routerNotif, err != nil && n == 0)
	return n, err
}

func (c *tapConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.t.feed(&c.t.out, p[:n], &c.t.meshdOpen, &c.t.meshdNotif, false)
	return n, err
}

// feed frames one direction's bytes, keeping its OPEN and NOTIFICATION;
// closed marks the router's end closed.
func (t *tap) feed(f *framer, p []byte, open, notif *[]byte, closed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f.feed(p, func(typ byte, msg []byte) {
		switch typ {
		case msgOpen:
			*open = msg
		case msgNotification:
			*notif = msg
		}
	})
	if closed {
		t.routerClosed = true
	}
}

// tapListener hands CoreBGP its connections through taps, kept by the
// router's address for the plugin to read.
type tapListener struct {
	net.Listener
	taps *taps
}

func (l *tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	t := &tap{local: addrPort(c.LocalAddr()), remote: addrPort(c.RemoteAddr())}
	l.taps.put(t)
	return &tapConn{Conn: c, t: t}, nil
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// taps keeps each router address's last accepted connection's tap.
type taps struct {
	mu sync.Mutex
	m  map[netip.Addr]*tap
}

func (ts *taps) put(t *tap) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.m == nil {
		ts.m = map[netip.Addr]*tap{}
	}
	ts.m[t.remote.Addr()] = t
}

func (ts *taps) get(a netip.Addr) *tap {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.m[a.Unmap()]
}
