package bmpbridge

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// allowed reports whether a connection from addr may open a BMP session:
// the allow-list is empty, or one of its prefixes holds the address.
func (b *Bridge) allowed(addr net.Addr) bool {
	if len(b.allow) == 0 {
		return true
	}
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap().WithZone("")
	for _, p := range b.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// logLimiter lets a warning about one key (a source address, a router)
// through at most once per interval, so a scanner or a router stuck over
// its budget makes a log line a minute, not one per connection or
// message. What it held back is counted and said in the next line. It
// remembers at most maxKeys keys; past that it forgets them all, which at
// worst lets one more line per key through.
type logLimiter struct {
	mu       sync.Mutex
	interval time.Duration
	last     map[string]logEntry
}

type logEntry struct {
	at         time.Time
	suppressed int
}

const (
	logInterval = time.Minute
	maxLogKeys  = 4096
)

func newLogLimiter(interval time.Duration) *logLimiter {
	return &logLimiter{interval: interval, last: map[string]logEntry{}}
}

// allow reports whether a line about key may be logged at now, and how
// many were held back since the last one.
func (l *logLimiter) allow(key string, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, seen := l.last[key]
	if seen && now.Sub(e.at) < l.interval {
		e.suppressed++
		l.last[key] = e
		return false, 0
	}
	if !seen && len(l.last) >= maxLogKeys {
		clear(l.last)
	}
	l.last[key] = logEntry{at: now}
	return true, e.suppressed
}

// warn logs msg for key unless a line for it went out within the
// interval.
func (l *logLimiter) warn(log *slog.Logger, key, msg string, attrs ...slog.Attr) {
	ok, n := l.allow(key, time.Now())
	if !ok {
		return
	}
	if n > 0 {
		attrs = append(attrs, slog.Int("suppressed_since_last_log", n))
	}
	log.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs...)
}

// budget is a router's rate budget over all its sessions: token buckets of
// messages and bytes, each holding one second's worth. Nil is no budget.
type budget struct {
	msgs, bytes *rate.Limiter
}

func newBudget(c *Config) *budget {
	if c.MaxMessagesPerSecond == 0 && c.MaxBytesPerSecond == 0 {
		return nil
	}
	bu := &budget{}
	if n := c.MaxMessagesPerSecond; n > 0 {
		bu.msgs = rate.NewLimiter(rate.Limit(n), n)
	}
	if n := c.MaxBytesPerSecond; n > 0 {
		bu.bytes = rate.NewLimiter(rate.Limit(n), n)
	}
	return bu
}

// wait takes msgs messages of size bytes from the budget, waiting until it
// holds them (pacing the reader, so TCP flow control slows the router),
// and returns how long it waited. It returns early, with ctx's error, when
// ctx ends.
func (bu *budget) wait(ctx context.Context, msgs, size int) (time.Duration, error) {
	if bu == nil {
		return 0, nil
	}
	var waited time.Duration
	for _, t := range []struct {
		l *rate.Limiter
		n int
	}{{bu.msgs, msgs}, {bu.bytes, size}} {
		if t.l == nil {
			continue
		}
		// A reservation refuses more than the burst at once: take it in
		// bursts.
		for n := t.n; n > 0; {
			k := min(n, t.l.Burst())
			r := t.l.ReserveN(time.Now(), k)
			if d := r.Delay(); d > 0 {
				tm := time.NewTimer(d)
				select {
				case <-tm.C:
				case <-ctx.Done():
					tm.Stop()
					r.Cancel()
					return waited, ctx.Err()
				}
				waited += d
			}
			n -= k
		}
	}
	return waited, nil
}
