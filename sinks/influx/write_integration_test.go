//go:build integration

package influx

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/merge"
)

// fault is what writeProxy does to one write request instead of simply
// forwarding it: answer with status itself, or forward it and hold the
// answer for up to hold (until the client gives up).
type fault struct {
	status     int
	retryAfter string
	hold       time.Duration
}

// seenWrite is one write request as the proxy received it.
type seenWrite struct {
	encoding string // Content-Encoding header
	gzipped  bool   // the body starts with the gzip magic
	at       time.Time
}

// writeProxy sits between the sink and the real influxd on 127.0.0.1:
// the storage side is always influxd, the proxy only observes write
// requests and applies faults to the first of them, in order.
type writeProxy struct {
	URL    string
	rp     *httputil.ReverseProxy
	faults []fault
	mu     sync.Mutex
	writes []seenWrite
	// maxBody, when set, answers 413 to larger write bodies, as influxd
	// with a small max-body-size does.
	maxBody int
}

type holdKey struct{}

func startProxy(t *testing.T, target string, faults ...fault) *writeProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &writeProxy{rp: httputil.NewSingleHostReverseProxy(u), faults: faults}
	// Holding the answer after influxd took the write makes the client
	// time out on a write that did land, so its retry is a duplicate.
	p.rp.ModifyResponse = func(resp *http.Response) error {
		ctx := resp.Request.Context()
		if d, _ := ctx.Value(holdKey{}).(time.Duration); d > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
		return nil
	}
	p.rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	p.rp.ErrorLog = log.New(testWriter{t}, "proxy: ", 0)
	srv := httptest.NewServer(p) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *writeProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Bodies are read whole before forwarding: influxd answers CREATE
	// DATABASE before the transport has seen the inbound body's EOF, and
	// once the answer is flushed the server closes that body, failing the
	// upstream connection mid-answer.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if r.URL.Path != "/api/v2/write" {
		p.rp.ServeHTTP(w, r)
		return
	}
	p.mu.Lock()
	var f fault
	if n := len(p.writes); n < len(p.faults) {
		f = p.faults[n]
	}
	p.writes = append(p.writes, seenWrite{r.Header.Get("Content-Encoding"), bytes.HasPrefix(body, []byte{0x1f, 0x8b}), time.Now()})
	p.mu.Unlock()
	switch {
	case p.maxBody > 0 && len(body) > p.maxBody:
		http.Error(w, "Request Entity Too Large", http.StatusRequestEntityTooLarge)
	case f.status != 0:
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		http.Error(w, "injected by the test proxy", f.status)
	case f.hold > 0:
		p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), holdKey{}, f.hold)))
	default:
		p.rp.ServeHTTP(w, r)
	}
}

func (p *writeProxy) seen() []seenWrite {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]seenWrite(nil), p.writes...)
}

// newSink makes a sink on a fresh registry, for tests that run it themselves.
func newSink(t *testing.T, cfg Config) (*prometheus.Registry, *Sink) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(cfg, WithRegisterer(reg), WithLogger(logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	return reg, s
}

// rowsNS runs q and returns the first series' rows, numbers kept exact:
// nanosecond timestamps do not fit a float64.
func rowsNS(t *testing.T, in *testenv.Influxd, db, q string) (cols []string, vals [][]any) {
	t.Helper()
	body, err := in.Query(db, q)
	if err != nil {
		t.Fatal(err)
	}
	var r qresult
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil || r.Error != "" || len(r.Results) > 0 && r.Results[0].Error != "" {
		t.Fatalf("%s: %v: %s", q, err, body)
	}
	if len(r.Results) == 0 || len(r.Results[0].Series) == 0 {
		return nil, nil
	}
	return r.Results[0].Series[0].Columns, r.Results[0].Series[0].Values
}

// sendRoutes feeds total route events in batches of per, each event with
// its own timestamp (base + i ms), and returns them.
func sendRoutes(sub chanSub, total, per int, base time.Time) []change.Event {
	var all []change.Event
	for i := 0; i < total; i += per {
		evs := routeEvents("r1", i, per, base)
		for j := range evs {
			evs[j].Time = base.Add(time.Duration(i+j) * time.Millisecond)
		}
		sub.ch <- change.Batch{Events: evs}
		all = append(all, evs...)
	}
	return all
}

// TestWriteGzip: with use-gzip the write requests are gzip (header and
// body) and influxd stores exactly the points sent; without it they are
// plain.
func TestWriteGzip(t *testing.T) {
	in := testenv.StartInfluxd(t)
	for _, gz := range []bool{true, false} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			p := startProxy(t, in.URL)
			db := fmt.Sprintf("gzip_%v", gz)
			cfg := testConfig(t, p.URL, db)
			cfg.Gzip = gz
			_, sub, stop := startSink(t, cfg, 8)
			sent := sendRoutes(sub, 300, 100, time.Now().Add(-time.Hour))
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			ws := p.seen()
			if len(ws) == 0 {
				t.Fatal("no write request went through the proxy")
			}
			wantEnc := map[bool]string{true: "gzip", false: ""}[gz]
			for i, w := range ws {
				if w.encoding != wantEnc || w.gzipped != gz {
					t.Errorf("write %d: Content-Encoding %q, gzip body %v; want %q, %v", i, w.encoding, w.gzipped, wantEnc, gz)
				}
			}
			cols, vals := rowsNS(t, in, db, `SELECT "prefix", "origin_as", "as_path", "next_hop", "router", "neighbor", "rib", "action", "afi_safi" FROM "bmp_route"`)
			if len(vals) != len(sent) {
				t.Fatalf("%d points in influxd, want %d", len(vals), len(sent))
			}
			if want := "time prefix origin_as as_path next_hop router neighbor rib action afi_safi"; strings.Join(cols, " ") != want {
				t.Fatalf("columns %v, want %s", cols, want)
			}
			// Rows come back in time order, as the events were sent.
			for i, ev := range sent {
				r := ev.Route
				want := fmt.Sprint([]any{ev.Time.UnixNano(), r.Prefix, r.OriginAS, r.ASPath, r.NextHop, ev.Router, ev.Neighbor, r.RIB, r.Action.String(), r.AfiSafi})
				if got := fmt.Sprint(vals[i]); got != want {
					t.Fatalf("row %d:\n got %s\nwant %s", i, got, want)
				}
			}
		})
	}
}

// TestWriteRetries: InfluxDB answering 5xx/429, or answering after the
// client's timeout, costs retries and nothing else: every point lands
// exactly once, none is dropped.
func TestWriteRetries(t *testing.T) {
	in := testenv.StartInfluxd(t)
	for _, tc := range []struct {
		name    string
		faults  []fault
		timeout time.Duration
	}{
		{name: "503 and 429", faults: []fault{{status: 503}, {status: 503}, {status: 429, retryAfter: "1"}, {status: 503}}},
		// The write lands in influxd, the answer comes too late: the
		// retry rewrites the same points, which must not double them.
		{name: "answer after the timeout", faults: []fault{{hold: 10 * time.Second}}, timeout: 500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, in.URL, tc.faults...)
			db := "retry_" + strings.ReplaceAll(tc.name, " ", "_")
			cfg := testConfig(t, p.URL, db)
			if tc.timeout > 0 {
				cfg.Timeout = tc.timeout
			}
			reg, sub, stop := startSink(t, cfg, 8)
			const total = 1000
			sendRoutes(sub, total, 200, time.Now().Add(-time.Hour))
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if got := count(t, in, db, mBMPRoute, "prefix"); got != total {
				t.Errorf("points in influxd %d, want exactly %d", got, total)
			}
			n := float64(len(tc.faults))
			for _, c := range []struct {
				name, label string
				want        float64
			}{
				{"meshd_influx_write_retries_total", "", n},
				{"meshd_influx_batches_total", "retry", n},
				{"meshd_influx_points_written_total", "", total},
				{"meshd_influx_points_dropped_total", "", 0},
				{"meshd_influx_up", "", 1},
			} {
				if got := metric(t, reg, c.name, c.label); got != c.want {
					t.Errorf("%s{%s} = %v, want %v", c.name, c.label, got, c.want)
				}
			}
			if ws := p.seen(); len(ws) <= len(tc.faults) {
				t.Errorf("%d write requests for %d faults: the faults were not all passed", len(ws), len(tc.faults))
			}
		})
	}
}

// TestWriteRetryAfter: a Retry-After header holds the next try back for
// as long as it asks; without one the first retry comes within a second.
func TestWriteRetryAfter(t *testing.T) {
	in := testenv.StartInfluxd(t)
	for _, tc := range []struct {
		name     string
		f        fault
		min, max time.Duration
	}{
		{"429 Retry-After 3", fault{status: 429, retryAfter: "3"}, 3 * time.Second, time.Minute},
		{"503 Retry-After 2", fault{status: 503, retryAfter: "2"}, 2 * time.Second, time.Minute},
		{"503 without", fault{status: 503}, 0, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, in.URL, tc.f)
			db := "retry_after_" + strings.NewReplacer(" ", "_", "-", "_").Replace(tc.name)
			_, sub, stop := startSink(t, testConfig(t, p.URL, db), 8)
			sendRoutes(sub, 10, 10, time.Now().Add(-time.Hour))
			testenv.WaitFor(t, time.Minute, "the retry", func() bool { return len(p.seen()) >= 2 })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			ws := p.seen()
			if gap := ws[1].at.Sub(ws[0].at); gap < tc.min || gap > tc.max {
				t.Errorf("retry %v after the refused write, want between %v and %v", gap, tc.min, tc.max)
			}
			if got := count(t, in, db, mBMPRoute, "prefix"); got != 10 {
				t.Errorf("points in influxd %d, want 10", got)
			}
		})
	}
}

// TestWriteClientErrorNotRetried: a 4xx other than 429 is never retried.
// 400 (bad points) drops the batch, counted, and later batches still go
// through; 403 stops the writer with ErrRefused, the points kept in the
// spool (401 and 404 from a real influxd: TestWrongCredentials,
// TestWrongDatabase).
func TestWriteClientErrorNotRetried(t *testing.T) {
	in := testenv.StartInfluxd(t)
	t.Run("400 drops the batch", func(t *testing.T) {
		p := startProxy(t, in.URL, fault{status: http.StatusBadRequest})
		reg, sub, stop := startSink(t, testConfig(t, p.URL, "bad_request"), 8)
		at := time.Now().Add(-time.Hour)
		sub.ch <- change.Batch{Events: routeEvents("r1", 0, 50, at)}
		testenv.WaitFor(t, 10*time.Second, "the first batch rejected", func() bool {
			return metric(t, reg, "meshd_influx_batches_total", "rejected") == 1
		})
		sub.ch <- change.Batch{Events: routeEvents("r1", 50, 50, at.Add(time.Second))}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got := count(t, in, "bad_request", mBMPRoute, "prefix"); got != 50 {
			t.Errorf("points in influxd %d, want the second batch's 50", got)
		}
		if d := metric(t, reg, "meshd_influx_points_dropped_total", "rejected"); d != 50 {
			t.Errorf("dropped (rejected) %v, want 50", d)
		}
		if r := metric(t, reg, "meshd_influx_write_retries_total", ""); r != 0 {
			t.Errorf("400 retried %v times", r)
		}
		if ws := p.seen(); len(ws) != 2 {
			t.Errorf("%d write requests, want 2 (one per batch)", len(ws))
		}
	})
	t.Run("403 refuses", func(t *testing.T) {
		p := startProxy(t, in.URL, fault{status: http.StatusForbidden})
		reg, s := newSink(t, testConfig(t, p.URL, "forbidden"))
		expectRefused(t, s, reg, "HTTP 403")
		if ws := p.seen(); len(ws) != 1 {
			t.Errorf("%d write requests, want 1", len(ws))
		}
	})
}

// TestPeriodicSnapshot: with no change at all after the first batch, a
// neighbor's state is rewritten every snapshot interval, with the values
// it had.
func TestPeriodicSnapshot(t *testing.T) {
	in := testenv.StartInfluxd(t)
	in.CreateDB(t, "snap") // queried before the sink creates it
	cfg := testConfig(t, in.URL, "snap")
	cfg.SnapshotInterval = time.Second // the smallest Validate allows
	_, sub, stop := startSink(t, cfg, 1)
	start := time.Now()
	sub.ch <- change.Batch{Updates: []change.Update{
		up(nb("state", "peer-as"), change.Uint(65001)),
		up(nb("state", "session-state"), change.String("ESTABLISHED")),
		up(nb("state", "messages", "received", "UPDATE"), change.Uint(10)),
	}}
	q := fmt.Sprintf(`SELECT "established", "session_state", "updates_rx", "peer_as" FROM "bgp_neighbor" WHERE "neighbor" = '192.0.2.1' AND time >= %d`, start.UnixNano())
	testenv.WaitFor(t, 10*time.Second, "two snapshots of the neighbor", func() bool {
		_, vals := rowsNS(t, in, "snap", q)
		return len(vals) >= 2
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	_, vals := rowsNS(t, in, "snap", q)
	ts := map[string]bool{}
	for _, v := range vals {
		ts[fmt.Sprint(v[0])] = true
		if got := fmt.Sprint(v[1:]); got != "[1 ESTABLISHED 10 65001]" {
			t.Errorf("snapshot at %v: %s, want the unchanged state", v[0], got)
		}
	}
	if len(ts) != len(vals) {
		t.Errorf("snapshots share timestamps: %v", vals)
	}
	// The change itself, at its own time, is there too.
	if _, all := rowsNS(t, in, "snap", `SELECT "established" FROM "bgp_neighbor"`); len(all) != len(vals)+1 {
		t.Errorf("%d points in all, want the change plus %d snapshots", len(all), len(vals))
	}
}

// TestWriteBodyTooLarge: an InfluxDB whose max-body-size is below meshd's
// batches gets each refused batch again in halves, split until it fits,
// and every point arrives; a single point over the limit is dropped and
// counted.
func TestWriteBodyTooLarge(t *testing.T) {
	in := testenv.StartInfluxd(t)
	p := startProxy(t, in.URL)
	p.maxBody = 16 << 10
	reg, sub, stop := startSink(t, testConfig(t, p.URL, "small_bodies"), 8)
	at := time.Now().Add(-time.Hour)
	const total = 3000
	for i := 0; i < total; i += 500 {
		sub.ch <- change.Batch{Events: routeEvents("r1", i, 500, at.Add(time.Duration(i)*time.Second))}
	}
	huge := routeEvents("r2", 0, 1, at)
	huge[0].Route.ASPath = strings.Repeat("64512 ", 4000) // one line of ~24 KB
	sub.ch <- change.Batch{Events: huge}
	testenv.WaitFor(t, 20*time.Second, "every point written", func() bool {
		return metric(t, reg, "meshd_influx_points_written_total", "") == total
	})
	testenv.WaitFor(t, 10*time.Second, "the oversized point dropped", func() bool {
		return metric(t, reg, "meshd_influx_points_dropped_total", "rejected") == 1
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := count(t, in, "small_bodies", mBMPRoute, "prefix"); got != total {
		t.Errorf("points in influxd %d, want %d", got, total)
	}
	if n := metric(t, reg, "meshd_influx_batches_total", "split"); n == 0 {
		t.Error("no batch was split, so the test proved nothing: make the limit smaller")
	}
	if r := metric(t, reg, "meshd_influx_write_retries_total", ""); r != 0 {
		t.Errorf("413 retried %v times", r)
	}
}

// TestPeriodicSnapshotFromCore: a sink that can read the merge core back
// keeps no field values between snapshots, and its snapshots, read from
// the core, still write each series in full with the values the core
// holds, a change included.
func TestPeriodicSnapshotFromCore(t *testing.T) {
	in := testenv.StartInfluxd(t)
	in.CreateDB(t, "snapcore")
	core, err := merge.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, in.URL, "snapcore")
	cfg.SnapshotInterval = time.Second
	s, err := New(cfg, WithRegisterer(prometheus.NewRegistry()), WithLogger(logger(t)), WithSnapshotter(core))
	if err != nil {
		t.Fatal(err)
	}
	stop := runSink(t, s, core.Subscribe("influx", 64))
	oc := "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=192.0.2.1]"
	apply := func(at time.Time, kv ...any) {
		t.Helper()
		var chs []change.Change
		for i := 0; i < len(kv); i += 2 {
			chs = append(chs, change.Change{Router: "r1", Path: change.MustPath(oc + kv[i].(string)), Value: kv[i+1].(*gpb.TypedValue), Time: at, Source: change.SourceGNMI})
		}
		if res := core.Apply(chs); res.Err != nil || res.Invalid > 0 {
			t.Fatalf("apply: %+v", res)
		}
	}
	start := time.Now()
	apply(start, "/state/peer-as", change.Uint(65001), "/state/session-state", change.String("ESTABLISHED"),
		"/state/messages/received/UPDATE", change.Uint(10),
		"/afi-safis/afi-safi[afi-safi-name=IPV4_UNICAST]/state/prefixes/received", change.Uint(900))
	nq := fmt.Sprintf(`SELECT "established", "session_state", "updates_rx", "peer_as" FROM "bgp_neighbor" WHERE "neighbor" = '192.0.2.1' AND time > %d`, start.UnixNano())
	aq := fmt.Sprintf(`SELECT "prefixes_received" FROM "bgp_neighbor_afi" WHERE "afi_safi" = 'IPV4_UNICAST' AND time > %d`, start.UnixNano())
	testenv.WaitFor(t, 10*time.Second, "two snapshots of the neighbor and its AFI", func() bool {
		_, n := rowsNS(t, in, "snapcore", nq)
		_, a := rowsNS(t, in, "snapcore", aq)
		return len(n) >= 2 && len(a) >= 2
	})
	_, vals := rowsNS(t, in, "snapcore", nq)
	for _, v := range vals {
		if got := fmt.Sprint(v[1:]); got != "[1 ESTABLISHED 10 65001]" {
			t.Errorf("snapshot at %v: %s, want the state the core holds", v[0], got)
		}
	}
	_, avals := rowsNS(t, in, "snapcore", aq)
	for _, v := range avals {
		if fmt.Sprint(v[1]) != "900" {
			t.Errorf("AFI snapshot at %v: %v, want 900", v[0], v[1])
		}
	}

	changed := time.Now()
	apply(changed, "/state/session-state", change.String("IDLE"))
	cq := fmt.Sprintf(`SELECT "established", "session_state", "updates_rx", "peer_as" FROM "bgp_neighbor" WHERE "neighbor" = '192.0.2.1' AND time > %d AND "updates_rx" = 10`, changed.UnixNano())
	testenv.WaitFor(t, 10*time.Second, "a snapshot after the change", func() bool {
		_, v := rowsNS(t, in, "snapcore", cq)
		return len(v) >= 1
	})
	_, cvals := rowsNS(t, in, "snapcore", cq)
	for _, v := range cvals {
		if got := fmt.Sprint(v[1:]); got != "[0 IDLE 10 65001]" {
			t.Errorf("snapshot at %v after the change: %s, want [0 IDLE 10 65001]", v[0], got)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, nb := range s.mp.nbrs {
		for _, sr := range nb.series {
			held += len(sr.fields)
		}
	}
	if held != 0 || len(s.mp.nbrs) == 0 {
		t.Errorf("the sink holds %d field values over %d neighbors between snapshots, want none over 1", held, len(s.mp.nbrs))
	}
}
