// Package rtr is meshd's RPKI-to-Router client (RFC 8210, falling back to
// RFC 6810): it keeps one validator cache's Validated ROA Payloads (VRPs)
// and hands each change to its owner as a delta.
//
// The PDUs are gobgp's pkg/packet/rtr codec. Its End of Data is RFC
// 6810's (12 bytes): the version 1 intervals after them (refresh, retry,
// expire) are read here, as is the Router Key PDU (type 9) it does not
// know, which is skipped.
//
// The session: a Reset Query on the first connection (and after a Cache
// Reset), then a Serial Query with the session ID and serial of the last
// End of Data, on a Serial Notify and every refresh interval. A cache
// that refuses version 1 (an Error Report "Unsupported Protocol Version"
// or a PDU of version 0) is asked again in version 0. A dropped
// connection is made again after the retry interval; the VRPs held are
// kept until the expire interval passes with no successful refresh, and
// then dropped (RFC 8210 section 6).
package rtr

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	gortr "github.com/osrg/gobgp/v4/pkg/packet/rtr"
)

// VRP is one Validated ROA Payload: the origin AS may announce Prefix
// and its more-specifics up to MaxLen.
type VRP struct {
	Prefix netip.Prefix
	MaxLen uint8
	ASN    uint32
}

func (v VRP) String() string { return fmt.Sprintf("%s-%d AS%d", v.Prefix, v.MaxLen, v.ASN) }

// Delta is one change of a cache's VRPs, as End of Data makes it whole.
// With Reset the cache's whole set is Announced and every VRP held
// before is gone (a Reset Query's answer, or the expiry: Reset with
// nothing announced).
type Delta struct {
	Reset     bool
	Announced []VRP
	Withdrawn []VRP
	Serial    uint32
	Version   uint8
}

// Config says where the cache is and how to pace the session.
type Config struct {
	// Addr is the cache's host:port.
	Addr string
	// Refresh, Retry and Expire are used until the cache gives its own
	// (version 1); RFC 8210's defaults are 3600, 600 and 7200 s.
	Refresh, Retry, Expire time.Duration
	// Timeout bounds a connect and a query's answer (default 30 s).
	Timeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Refresh == 0 {
		c.Refresh = time.Hour
	}
	if c.Retry == 0 {
		c.Retry = 10 * time.Minute
	}
	if c.Expire == 0 {
		c.Expire = 2 * time.Hour
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
}

// Client is one cache's session.
type Client struct {
	cfg Config
	log *slog.Logger
	// apply gets each delta, in order, from Run's goroutine.
	apply func(Delta)

	version   uint8
	sessionID uint16
	serial    uint32
	synced    bool // a session ID and serial are held
	lastSync  time.Time
	vrps      map[VRP]struct{}
	// fails counts the sessions that ended since the last sync: the wait
	// before the next grows from a second to the retry interval.
	fails int
}

// New returns a client of the cache cfg names; Run runs it.
func New(cfg Config, log *slog.Logger, apply func(Delta)) *Client {
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	return &Client{cfg: cfg, log: log.With(slog.String("cache", cfg.Addr)), apply: apply, version: 1, vrps: map[VRP]struct{}{}}
}

// errAgain ends a session to start the next at once: the cache speaks an
// older version, or has a new session (it restarted without telling).
var errAgain = errors.New("rtr: start the session again")

// Run keeps the session until ctx ends: connect, synchronise, refresh,
// and after a failure wait the retry interval and connect again.
func (c *Client) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		err := c.session(ctx)
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, errAgain) {
			continue // at once
		}
		c.fails++
		wait := c.untilRetry()
		c.log.Warn("rtr session ended; retrying", slog.Any("err", err), slog.Duration("retry", wait))
		c.expire()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		c.expire()
	}
	return nil
}

// untilRetry is the wait before reconnecting: 1 s after the first
// failure since a sync, doubling up to the retry interval (a cache that
// is still starting, or restarting, is asked again within seconds, not
// the RFC's 10 minutes), or less when the data expires before it (it is
// dropped then, at once).
func (c *Client) untilRetry() time.Duration {
	d := c.cfg.Retry
	if c.fails > 0 && c.fails < 16 {
		d = min(d, time.Second<<(c.fails-1))
	}
	if c.synced && len(c.vrps) > 0 {
		if left := time.Until(c.lastSync.Add(c.cfg.Expire)); left > 0 && left < d {
			d = left
		}
	}
	return d
}

// expire drops the VRPs held once no refresh has succeeded for the
// expire interval.
func (c *Client) expire() {
	if !c.synced || time.Since(c.lastSync) < c.cfg.Expire {
		return
	}
	c.log.Warn("rtr data expired: no refresh succeeded within the expire interval; its VRPs are dropped",
		slog.Duration("expire", c.cfg.Expire), slog.Int("vrps", len(c.vrps)))
	c.synced = false
	c.vrps = map[VRP]struct{}{}
	c.apply(Delta{Reset: true, Version: c.version})
}

// session runs one connection.
func (c *Client) session(ctx context.Context) error {
	d := net.Dialer{Timeout: c.cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	pdus := make(chan pduOrErr)
	go read(bufio.NewReader(conn), pdus)
	defer func() {
		conn.Close()
		for range pdus {
		}
	}()

	query := func() error {
		var q []byte
		if c.synced {
			m := gortr.NewRTRSerialQuery(c.sessionID, c.serial)
			m.Version = c.version
			q, _ = m.Serialize()
		} else {
			m := gortr.NewRTRResetQuery()
			m.Version = c.version
			q, _ = m.Serialize()
		}
		_ = conn.SetWriteDeadline(time.Now().Add(c.cfg.Timeout))
		_, err := conn.Write(q)
		return err
	}
	if err := query(); err != nil {
		return err
	}
	refresh := time.NewTimer(c.cfg.Refresh)
	defer refresh.Stop()
	var pend *pending
	for {
		var deadline <-chan time.Time
		if pend != nil {
			deadline = pend.timeout.C
		}
		select {
		case <-refresh.C:
			if pend == nil {
				if err := query(); err != nil {
					return err
				}
			}
			refresh.Reset(c.cfg.Refresh)
		case <-deadline:
			return fmt.Errorf("rtr: no End of Data within %v", c.cfg.Timeout)
		case p, ok := <-pdus:
			if !ok {
				return io.EOF
			}
			if p.err != nil {
				return p.err
			}
			again, err := c.handle(p.b, &pend, query)
			if err != nil {
				return err
			}
			if again {
				refresh.Reset(c.cfg.Refresh)
			}
		}
	}
}

// pending is a response being received, made whole at End of Data.
type pending struct {
	reset     bool
	announced map[VRP]struct{}
	withdrawn map[VRP]struct{}
	timeout   *time.Timer
}

// handle takes one PDU; it reports true when a response ended (the
// refresh timer starts again).
func (c *Client) handle(b []byte, pend **pending, query func() error) (bool, error) {
	ver, typ := b[0], b[1]
	if ver > c.version {
		return false, fmt.Errorf("rtr: PDU of version %d, asked in %d", ver, c.version)
	}
	if ver < c.version && typ != gortr.RTR_ERROR_REPORT {
		c.log.Info("rtr: the cache speaks an older version", slog.Int("version", int(ver)))
		c.version = ver
		c.synced = false
		return false, errAgain
	}
	switch typ {
	case gortr.RTR_SERIAL_NOTIFY:
		if *pend == nil {
			return false, query()
		}
	case gortr.RTR_CACHE_RESPONSE:
		var m gortr.RTRCacheResponse
		if err := m.DecodeFromBytes(b); err != nil {
			return false, err
		}
		if c.synced && m.SessionID != c.sessionID {
			c.log.Info("rtr: the cache has a new session; resetting", slog.Int("held", int(c.sessionID)), slog.Int("cache", int(m.SessionID)))
			c.synced = false
			return false, errAgain
		}
		*pend = &pending{reset: !c.synced, announced: map[VRP]struct{}{}, withdrawn: map[VRP]struct{}{}, timeout: time.NewTimer(c.cfg.Timeout)}
		c.sessionID = m.SessionID
	case gortr.RTR_IPV4_PREFIX, gortr.RTR_IPV6_PREFIX:
		if *pend == nil {
			return false, errors.New("rtr: prefix PDU outside a response")
		}
		var m gortr.RTRIPPrefix
		if err := m.DecodeFromBytes(b); err != nil {
			return false, err
		}
		p, err := m.Prefix.Prefix(int(m.PrefixLen))
		if err != nil {
			return false, fmt.Errorf("rtr: prefix PDU: %w", err)
		}
		v := VRP{Prefix: p, MaxLen: m.MaxLen, ASN: m.AS}
		if m.Flags&1 == gortr.ANNOUNCEMENT {
			delete((*pend).withdrawn, v)
			(*pend).announced[v] = struct{}{}
		} else {
			delete((*pend).announced, v)
			(*pend).withdrawn[v] = struct{}{}
		}
	case routerKey:
		// BGPsec router keys: meshd validates origins only.
	case gortr.RTR_END_OF_DATA:
		if *pend == nil {
			return false, errors.New("rtr: End of Data outside a response")
		}
		if len(b) < gortr.RTR_END_OF_DATA_LEN {
			return false, errors.New("rtr: End of Data too short")
		}
		c.serial = binary.BigEndian.Uint32(b[8:12])
		if c.version >= 1 && len(b) >= 24 {
			iv := func(o int) time.Duration { return time.Duration(binary.BigEndian.Uint32(b[o:o+4])) * time.Second }
			if r := iv(12); r > 0 {
				c.cfg.Refresh = r
			}
			if r := iv(16); r > 0 {
				c.cfg.Retry = r
			}
			if e := iv(20); e > 0 {
				c.cfg.Expire = e
			}
		}
		c.finish(*pend)
		(*pend).timeout.Stop()
		*pend = nil
		return true, nil
	case gortr.RTR_CACHE_RESET:
		// The cache has no data for our serial: start again.
		c.synced = false
		return false, query()
	case gortr.RTR_ERROR_REPORT:
		var m gortr.RTRErrorReport
		if err := m.DecodeFromBytes(b); err != nil {
			return false, err
		}
		if m.ErrorCode == gortr.UNSUPPORTED_PROTOCOL_VERSION && c.version > 0 {
			c.version--
			c.synced = false
			return false, errAgain
		}
		if m.ErrorCode == gortr.NO_DATA_AVAILABLE {
			return false, errors.New("rtr: the cache has no data yet")
		}
		text := strings.TrimRight(string(m.Text), "\x00")
		if c.synced {
			// The answer to a Serial Query: the cache does not know our
			// session (stayrtr sends Corrupt Data, "Session ID
			// mismatch", when it restarted). Start again with a Reset
			// Query; the VRPs held are replaced by its answer.
			c.log.Info("rtr: the cache refused our session; resetting", slog.Int("code", int(m.ErrorCode)), slog.String("text", text))
			c.synced = false
			return false, errAgain
		}
		return false, fmt.Errorf("rtr: error report %d: %s", m.ErrorCode, text)
	default:
		return false, fmt.Errorf("rtr: unknown PDU type %d", typ)
	}
	return false, nil
}

// routerKey is the Router Key PDU's type (RFC 8210 section 5.10).
const routerKey = 9

// finish applies a whole response to the held set and hands the delta
// on.
func (c *Client) finish(p *pending) {
	d := Delta{Reset: p.reset, Serial: c.serial, Version: c.version}
	if p.reset {
		c.vrps = make(map[VRP]struct{}, len(p.announced))
	}
	for v := range p.withdrawn {
		if _, ok := c.vrps[v]; ok {
			delete(c.vrps, v)
			d.Withdrawn = append(d.Withdrawn, v)
		}
	}
	for v := range p.announced {
		if _, ok := c.vrps[v]; !ok || p.reset {
			c.vrps[v] = struct{}{}
			d.Announced = append(d.Announced, v)
		}
	}
	c.synced, c.lastSync, c.fails = true, time.Now(), 0
	c.log.Info("rtr: synchronised", slog.Uint64("serial", uint64(c.serial)), slog.Int("vrps", len(c.vrps)),
		slog.Int("announced", len(d.Announced)), slog.Int("withdrawn", len(d.Withdrawn)), slog.Bool("reset", d.Reset))
	c.apply(d)
}

type pduOrErr struct {
	b   []byte
	err error
}

// maxPDU bounds a PDU's length: the largest RTR sends is an Error Report
// carrying another PDU and a text.
const maxPDU = 64 << 10

func read(r *bufio.Reader, out chan<- pduOrErr) {
	defer close(out)
	for {
		hdr := make([]byte, 8)
		if _, err := io.ReadFull(r, hdr); err != nil {
			out <- pduOrErr{err: err}
			return
		}
		n := binary.BigEndian.Uint32(hdr[4:8])
		if n < 8 || n > maxPDU {
			out <- pduOrErr{err: fmt.Errorf("rtr: PDU length %d", n)}
			return
		}
		b := make([]byte, n)
		copy(b, hdr)
		if _, err := io.ReadFull(r, b[8:]); err != nil {
			out <- pduOrErr{err: err}
			return
		}
		out <- pduOrErr{b: b}
	}
}
