package bmpbridge

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
	"github.com/meshd/meshd/change"
)

func TestParseAllow(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"10.0.0.0/8", "10.0.0.0/8", false},
		{"10.1.2.3/8", "10.0.0.0/8", false}, // host bits cleared
		{"127.0.0.1", "127.0.0.1/32", false},
		{"::1", "::1/128", false},
		{"::1/128", "::1/128", false},
		{"::ffff:10.0.0.1", "10.0.0.1/32", false},
		{"::ffff:10.0.0.0/104", "", true},
		{"10.0.0.0/33", "", true},
		{"router1", "", true},
		{"", "", true},
	}
	for _, tc := range tests {
		p, err := parseAllow(tc.in)
		if (err != nil) != tc.err || (!tc.err && p.String() != tc.want) {
			t.Errorf("parseAllow(%q) = %v, %v; want %s (error %v)", tc.in, p, err, tc.want, tc.err)
		}
	}
}

func TestLimitsValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string // "" = valid
	}{
		{Config{Allow: []string{"10.0.0.0/8", "::1"}}, ""},
		{Config{Allow: []string{"10.0.0.0/8", "nope"}}, "bmp.allow[1]"},
		{Config{MaxMessagesPerSecond: -1}, "bmp.max-messages-per-second"},
		{Config{MaxBytesPerSecond: -1}, "bmp.max-bytes-per-second"},
		{Config{MaxBytesPerSecond: 1000}, "bmp.max-bytes-per-second: must be 0 or at least bmp.max-message-size"},
		{Config{MaxBytesPerSecond: 1 << 20}, ""},
		{Config{MaxMessageSize: 4096, MaxBytesPerSecond: 4096}, ""},
		{Config{MaxRoutesPerRouter: -5}, "bmp.max-routes-per-router"},
		{Config{MaxRouters: 2, MaxMessagesPerSecond: 10, MaxRoutesPerRouter: 10}, ""},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("Validate(%+v) = %v, want nil", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Validate(%+v) = %v, want an error with %q", tc.cfg, err, tc.want)
		}
	}
}

func TestLogLimiter(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	l := newLogLimiter(time.Minute)
	steps := []struct {
		key        string
		at         time.Time
		ok         bool
		suppressed int
	}{
		{"a", at(0), true, 0},
		{"a", at(1), false, 0},
		{"b", at(1), true, 0}, // another key is another budget
		{"a", at(59), false, 0},
		{"a", at(61), true, 2}, // says what it held back
		{"a", at(62), false, 0},
		{"a", at(200), true, 1},
	}
	for i, s := range steps {
		ok, n := l.allow(s.key, s.at)
		if ok != s.ok || n != s.suppressed {
			t.Errorf("step %d (%s at %v): allow = %v, %d; want %v, %d", i, s.key, s.at.Sub(t0), ok, n, s.ok, s.suppressed)
		}
	}
	// The key set stays bounded.
	for i := range 3 * maxLogKeys {
		l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String(), at(0))
	}
	if n := len(l.last); n > maxLogKeys {
		t.Errorf("limiter remembers %d keys, want <= %d", n, maxLogKeys)
	}
}

// dialFrom opens a TCP connection to addr from the local address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	return c
}

// closedByPeer reports whether the bridge closed c (a read ends) within
// 5 s.
func closedByPeer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(asNetErr(err, &ne) && ne.Timeout())
}

func asNetErr(err error, ne *net.Error) bool {
	e, ok := err.(net.Error)
	if ok {
		*ne = e
	}
	return ok
}

// TestAllowList connects over real TCP from 127.0.0.2 to a bridge that
// allows only 127.0.0.1/32 (and ::1): refused at accept, counted, logged
// once however often it retries; 127.0.0.1 is served. On the code before
// bmp.allow every source was served.
func TestAllowList(t *testing.T) {
	var logs bytes.Buffer
	r := newRig(t, Config{Allow: []string{"127.0.0.1/32", "::1"}}, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	for range 5 {
		c := dialFrom(t, "127.0.0.2", r.addr)
		_, _ = c.Write(upStream("edge1"))
		if !closedByPeer(c) {
			t.Fatal("connection from 127.0.0.2 not closed")
		}
		c.Close()
	}
	waitFor(t, "5 refusals counted", func() bool {
		return testutil.ToFloat64(r.b.m.refused.WithLabelValues("not_allowed")) == 5
	})
	if n := strings.Count(logs.String(), "source not in bmp.allow"); n != 1 {
		t.Errorf("%d log lines for one refused source, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "address=127.0.0.2") {
		t.Errorf("log does not name the source:\n%s", logs.String())
	}
	if len(r.core.Routers()) != 0 {
		t.Errorf("a refused connection made routers %v", r.core.Routers())
	}

	c := dialFrom(t, "127.0.0.1", r.addr)
	defer c.Close()
	if _, err := c.Write(upStream("edge1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "session from 127.0.0.1", func() bool {
		return r.val("edge1", change.MeshdRouterPath("bmp-connected")).GetBoolVal()
	})
}

// TestMaxRoutersCountsRouters: with max-routers 1, a second connection
// of the router already connected (a reconnect race) is served, while a
// connection of another router is refused at its Initiation and counted.
// On the code before, max-routers counted connections and refused the
// second connection of the same router.
func TestMaxRoutersCountsRouters(t *testing.T) {
	r := newRig(t, Config{MaxRouters: 1})
	connected := func() bool { return r.val("edge1", change.MeshdRouterPath("bmp-connected")).GetBoolVal() }
	first := r.send(t, append(upStream("edge1"), table(10, 65000)...))
	defer first.Close()
	waitFor(t, "edge1 connected", connected)

	second := r.send(t, append(upStream("edge1"), table(20, 65000)...))
	defer second.Close()
	waitFor(t, "edge1's second session", func() bool { return r.b.RouteCount("edge1", "default", "192.0.2.2", "") == 20 })

	other := r.send(t, upStream("edge2"))
	defer other.Close()
	if !closedByPeer(other) {
		t.Fatal("edge2 not refused")
	}
	waitFor(t, "edge2's refusal counted", func() bool {
		return testutil.ToFloat64(r.b.m.refused.WithLabelValues("max_routers")) == 1
	})
	if v := r.val("edge2", change.MeshdRouterPath("bmp-connected")); v != nil {
		t.Errorf("edge2 bmp-connected = %v, want unset", v)
	}

	// Once edge1's sessions are gone, edge2 is one router of one.
	first.Close()
	second.Close()
	waitFor(t, "edge1 gone", func() bool { return !connected() })
	waitFor(t, "edge1's sessions released", func() bool {
		r.b.mu.Lock()
		defer r.b.mu.Unlock()
		return len(r.b.live) == 0 && r.b.pending == 0
	})
	again := r.send(t, upStream("edge2"))
	defer again.Close()
	waitFor(t, "edge2 connected", func() bool { return r.val("edge2", change.MeshdRouterPath("bmp-connected")).GetBoolVal() })
}

// TestMaxRoutersPending: connections that have not sent their Initiation
// are bounded by twice max-routers, so silent connections cannot pile
// up; and each is closed when its Initiation does not come in time. On
// the code before, a silent connection was held for good.
func TestMaxRoutersPending(t *testing.T) {
	const timeout = 300 * time.Millisecond
	r := newRig(t, Config{MaxRouters: 1}, func(b *Bridge) { b.initTimeout = timeout })
	var silent []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	waitFor(t, "2 pending", func() bool {
		r.b.mu.Lock()
		defer r.b.mu.Unlock()
		return r.b.pending == 2
	})
	extra := r.send(t, upStream("edge1"))
	defer extra.Close()
	if !closedByPeer(extra) {
		t.Fatal("third pending connection not refused")
	}
	if got := testutil.ToFloat64(r.b.m.refused.WithLabelValues("max_routers")); got != 1 {
		t.Errorf("refused{max_routers} = %v, want 1", got)
	}
	// A silent connection that speaks becomes a router.
	if _, err := silent[0].Write(upStream("edge1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "edge1 connected", func() bool { return r.val("edge1", change.MeshdRouterPath("bmp-connected")).GetBoolVal() })
	// The one that stays silent is closed after the timeout, counted, and
	// frees its slot; the router's session is not timed out.
	if !closedByPeer(silent[1]) {
		t.Fatal("silent connection not closed")
	}
	waitFor(t, "no_initiation counted", func() bool {
		return testutil.ToFloat64(r.b.m.errors.WithLabelValues("no_initiation")) == 1
	})
	waitFor(t, "no connection pending", func() bool {
		r.b.mu.Lock()
		defer r.b.mu.Unlock()
		return r.b.pending == 0
	})
	if _, err := silent[0].Write(table(1, 65000)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "edge1's route after the timeout", func() bool { return r.b.RouteCount("edge1", "default", "192.0.2.2", "") == 1 })
	if !r.val("edge1", change.MeshdRouterPath("bmp-connected")).GetBoolVal() {
		t.Error("edge1's session ended: the Initiation timeout applied after its Initiation")
	}
}

// TestRouteBudget: at max-routes-per-router, new routes are not held and
// are counted; withdraws, and updates of held routes, go on; once routes
// leave, new ones are held again. On the code before, every route was
// held.
func TestRouteBudget(t *testing.T) {
	var logs bytes.Buffer
	r := newRig(t, Config{MaxRoutesPerRouter: 50}, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	c := r.send(t, append(upStream("edge1"), table(80, 65000)...))
	defer c.Close()
	over := func() float64 { return testutil.ToFloat64(r.b.m.overBudget.WithLabelValues("edge1")) }
	waitFor(t, "30 routes over budget", func() bool { return over() == 30 })
	if n := r.b.RouteCount("edge1", "default", "192.0.2.2", ""); n != 50 {
		t.Errorf("routes held = %d, want 50", n)
	}
	if n := strings.Count(logs.String(), "over its route budget"); n != 1 {
		t.Errorf("%d log lines, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "router=edge1") {
		t.Errorf("log does not name the router:\n%s", logs.String())
	}
	announces := func() int {
		return r.count(change.EventRoute, func(e change.Event) bool { return e.Route.Action == change.Announce })
	}
	waitFor(t, "50 announce events", func() bool { return announces() == 50 })

	// A new origin for a held route is an update, not a new route.
	var upd []byte
	pf := netip.MustParsePrefix("10.0.0.0/24")
	upd = bmpgen.AppendRouteMonitoring(upd, peer(), &bmpgen.Route{Prefixes: []netip.Prefix{pf}, ASPath: []uint32{42009012, 65099}, NextHop: pAddr})
	// Withdraw 5, then announce 10 new ones: 5 fit.
	for i := 1; i <= 5; i++ {
		wpf := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i), 0}), 24)
		upd = bmpgen.AppendRouteMonitoring(upd, peer(), &bmpgen.Route{Prefixes: []netip.Prefix{wpf}, Withdraw: true})
	}
	for i := 200; i < 210; i++ {
		npf := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i), 0}), 24)
		upd = bmpgen.AppendRouteMonitoring(upd, peer(), &bmpgen.Route{Prefixes: []netip.Prefix{npf}, ASPath: []uint32{42009012, 65000}, NextHop: pAddr})
	}
	if _, err := c.Write(upd); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "5 more over budget", func() bool { return over() == 35 })
	if n := r.b.RouteCount("edge1", "default", "192.0.2.2", ""); n != 50 {
		t.Errorf("routes held = %d, want 50", n)
	}
	waitFor(t, "the update and 5 new announces", func() bool { return announces() == 56 })
}

// TestRateBudget: a router over max-messages-per-second is paced, not
// cut: every message arrives, later. The token bucket holds one second's
// worth, so n messages cannot be through in less than (n - burst - one
// reader batch) / rate; that is a floor the code guarantees, not a timing
// sample. On the code before, nothing paced the router.
func TestRateBudget(t *testing.T) {
	const rate, n = 1000, 3000
	var logs bytes.Buffer
	r := newRig(t, Config{MaxMessagesPerSecond: rate}, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	start := time.Now()
	c := r.send(t, append(upStream("edge1"), table(n, 65000)...))
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for r.b.RouteCount("edge1", "default", "192.0.2.2", "") < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d routes after 30 s", r.b.RouteCount("edge1", "default", "192.0.2.2", ""), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	floor := time.Duration(n-rate-readBatchSize) * time.Second / rate
	if took < floor {
		t.Errorf("%d messages through in %v, under the budget's floor %v", n, took, floor)
	}
	if s := testutil.ToFloat64(r.b.m.throttled.WithLabelValues("edge1")); s <= 0 {
		t.Errorf("throttled seconds = %v, want > 0", s)
	}
	if !strings.Contains(logs.String(), "over its rate budget") || !strings.Contains(logs.String(), "router=edge1") {
		t.Errorf("no rate log naming the router:\n%s", logs.String())
	}
	if got := testutil.ToFloat64(r.b.m.overBudget.WithLabelValues("edge1")); got != 0 {
		t.Errorf("routes over budget = %v, want 0 (pacing drops nothing)", got)
	}
}
