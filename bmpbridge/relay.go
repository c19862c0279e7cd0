package bmpbridge

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bmp"

	"github.com/meshd/meshd/stage"
)

// BMP on any replica (cluster mode): a session whose router another
// replica owns is relayed there, in BMP, so that the owner joins it with
// the router's gNMI and probe. This replica reads the Initiation only,
// adds an information string naming the router as it resolved it, and
// passes the stream on unchanged. When the router's owner changes, the
// relay closes the router's session: the router connects again and sends
// its tables afresh, and the new decision follows.

// relayPrefix starts the Initiation string (RFC 7854 4.4, type 0) a
// relaying replica adds: "meshd-relay router=NAME address=ADDR".
const relayPrefix = "meshd-relay "

// relayCheckEvery is how often a relay asks whether its router's owner
// has changed.
const relayCheckEvery = time.Second

// A relay the owner ends within relayQuickEnd, or an owner that cannot
// be reached, makes the router's next sessions, for relayBackoff, served
// where they land.
const (
	relayQuickEnd = 10 * time.Second
	relayBackoff  = time.Minute
)

// clusterRefusal says why this replica serves no BMP connection now, as
// a meshd_bmp_refused_total reason and words for the log; "" when it
// serves them. Before it knows where routers belong, a router another
// replica owns, served here, would be written by two replicas (this
// one's points outliving the owner's); without its lease, any router
// may be owned elsewhere by now.
func (b *Bridge) clusterRefusal() (reason, why string) {
	switch {
	case b.unplaced():
		return "starting", "this replica does not know yet which replica owns each router (membership settling)"
	case b.fenced():
		return "fenced", "this replica has lost its cluster lease"
	}
	return "", ""
}

// fenced reports whether this replica has lost its hold on the cluster (a
// pause past its lease, a cut from etcd): it then serves no BMP, as it
// collects no gNMI, since another replica may own any router by now.
func (b *Bridge) fenced() bool {
	l, ok := b.placement.(interface{ Live() bool })
	return ok && !l.Live()
}

// unplaced reports whether this replica, clustered, does not know yet
// where routers belong (stage.Placement's Placed).
func (b *Bridge) unplaced() bool {
	p, ok := b.placement.(interface{ Placed() bool })
	return ok && !p.Placed()
}

// relayRefused reports whether router's sessions are served here for
// now, after the owner ended a relay at once.
func (b *Bridge) relayRefused(router string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	until, ok := b.relayHeld[router]
	if ok && time.Now().After(until) {
		delete(b.relayHeld, router)
		return false
	}
	return ok
}

func (b *Bridge) refuseRelay(router string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.relayHeld == nil {
		b.relayHeld = map[string]time.Time{}
	}
	b.relayHeld[router] = time.Now().Add(relayBackoff)
}

// WithPlacement makes the bridge relay the sessions of routers another
// replica owns (cluster mode).
func WithPlacement(p stage.Placement) Option { return func(b *Bridge) { b.placement = p } }

// prefixConn replays bytes already read before the connection's own.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// relayed are the router and address a relaying replica named in an
// Initiation's strings, if it did.
func relayed(strs []string) (router, addr string, ok bool) {
	for _, s := range strs {
		if !strings.HasPrefix(s, relayPrefix) {
			continue
		}
		for _, f := range strings.Fields(strings.TrimPrefix(s, relayPrefix)) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "router":
				router = v
			case "address":
				addr = v
			}
		}
		return router, addr, router != ""
	}
	return "", "", false
}

// maybeRelay reads the connection's first message; if it is an
// Initiation of a router another replica owns, it relays the session
// there and returns true once the relay has ended. Otherwise it returns
// a connection that replays what it read, for the session to serve.
func (b *Bridge) maybeRelay(ctx context.Context, c net.Conn, host string) (net.Conn, bool) {
	_ = c.SetReadDeadline(time.Now().Add(b.initTimeout))
	var hdr [6]byte
	n, err := io.ReadFull(c, hdr[:])
	first := hdr[:n]
	back := func(rest []byte) net.Conn {
		return &prefixConn{Conn: c, r: io.MultiReader(bytes.NewReader(append(first, rest...)), c)}
	}
	// Anything but a whole Initiation of sane length is the session's
	// to judge (and count).
	length := int(binary.BigEndian.Uint32(hdr[1:5]))
	if err != nil || hdr[0] != 3 || hdr[5] != 4 || length < 6 || length > b.cfg.MaxMessageSize {
		return back(nil), false
	}
	body := make([]byte, length-6)
	m, err := io.ReadFull(c, body)
	if err != nil {
		return back(body[:m]), false
	}
	sysName, strs := initiationTLVs(body)
	if _, _, already := relayed(strs); already {
		return back(body), false // relayed to us: never relayed again
	}
	name := b.routerName(sysName, host)
	to, remote := b.placement.BMPRoute(name)
	if !remote || b.relayRefused(name) {
		return back(body), false
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	up, err := d.DialContext(ctx, "tcp", to)
	if err != nil {
		b.m.relays.WithLabelValues("failed").Inc()
		b.refuseRelay(name) // and its next sessions, for a while: no dial timeout each time
		b.logs.warn(b.log, "relay:"+name, "cannot relay a BMP session to its router's owner; serving it here",
			slog.String("router", name), slog.String("owner", to), slog.Any("err", err))
		return back(body), false
	}
	defer up.Close()
	_ = c.SetReadDeadline(time.Time{})
	tag := fmt.Sprintf("%srouter=%s address=%s", relayPrefix, name, host)
	init := make([]byte, 0, length+4+len(tag))
	init = append(init, 3, 0, 0, 0, 0, 4)
	init = append(init, body...)
	init = binary.BigEndian.AppendUint16(init, 0)
	init = binary.BigEndian.AppendUint16(init, uint16(len(tag)))
	init = append(init, tag...)
	binary.BigEndian.PutUint32(init[1:5], uint32(len(init)))
	if _, err := up.Write(init); err != nil {
		// The owner ended it before it began: as a quick end, below.
		b.m.relays.WithLabelValues("refused").Inc()
		b.refuseRelay(name)
		b.log.Warn("BMP relay: the owner ended it at once; the router's sessions are served here for a while",
			slog.String("router", name), slog.String("owner", to), slog.Any("err", err))
		return nil, true
	}
	b.m.relays.WithLabelValues("relayed").Inc()
	b.log.Info("BMP session relayed to its router's owner", slog.String("router", name), slog.String("address", host), slog.String("owner", to))
	began := time.Now()
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(up, c)
		copied <- err
	}()
	t := time.NewTicker(relayCheckEvery)
	defer t.Stop()
	why := "the router closed it"
loop:
	for {
		select {
		case err := <-copied:
			if err != nil && time.Since(began) < relayQuickEnd {
				// The owner would not take it (its bmp.allow, say):
				// relaying again would only make the router reconnect
				// in a loop.
				why = "the owner ended it at once; the router's sessions are served here for a while"
				b.m.relays.WithLabelValues("refused").Inc()
				b.refuseRelay(name)
			}
			break loop
		case <-ctx.Done():
			why = "shutting down"
			break loop
		case <-t.C:
			if now, r := b.placement.BMPRoute(name); !r || now != to {
				why = "its router's owner changed: the router connects again"
				break loop
			}
		}
	}
	c.Close()
	up.Close()
	b.log.Info("BMP relay ended", slog.String("router", name), slog.String("owner", to), slog.String("why", why))
	return nil, true
}

// initiationTLVs reads an Initiation body's sysName and information
// strings with gobgp's parser. A malformed body yields none: the router
// is then named by its address, and the session that serves it counts
// the malformed message.
func initiationTLVs(body []byte) (sysName string, strs []string) {
	var in bmp.BMPInitiation
	if in.ParseBody(nil, body) != nil {
		return "", nil
	}
	for _, tlv := range in.Info {
		v, ok := tlv.(*bmp.BMPInfoTLVString)
		if !ok {
			continue
		}
		switch v.Type {
		case bmp.BMP_INIT_TLV_TYPE_STRING:
			strs = append(strs, v.Value)
		case bmp.BMP_INIT_TLV_TYPE_SYS_NAME:
			sysName = v.Value
		}
	}
	return sysName, strs
}
