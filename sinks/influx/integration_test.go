//go:build integration

package influx

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"

	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/merge"
	"github.com/meshd/meshd/stage"
)

// chanSub is a subscription fed directly by a test (the merge core's
// own queue is exercised in TestSchemaReadBack and TestSpoolFullBlock).
type chanSub struct{ ch chan change.Batch }

func (c chanSub) C() <-chan change.Batch { return c.ch }
func (c chanSub) Dropped() uint64        { return 0 }
func (c chanSub) Seq() uint64            { return 0 }
func (c chanSub) LostSeq() uint64        { return 0 }
func (c chanSub) Deliver(uint64, func(change.Batch)) bool {
	return false // the sink reads C
}

func testConfig(t *testing.T, url, db string) Config {
	return Config{URL: url, Database: db, CreateDatabase: true, SpoolDir: t.TempDir(),
		FlushInterval: 100 * time.Millisecond, Timeout: 2 * time.Second, SnapshotInterval: -1, BatchSize: 5000}
}

func logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type qresult struct {
	Results []struct {
		Error  string `json:"error"`
		Series []struct {
			Name    string   `json:"name"`
			Columns []string `json:"columns"`
			Values  [][]any  `json:"values"`
		} `json:"series"`
	} `json:"results"`
	Error string `json:"error"`
}

func query(t *testing.T, in *testenv.Influxd, db, q string) qresult {
	t.Helper()
	body, err := in.Query(db, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	var r qresult
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%s: %v: %s", q, err, body)
	}
	if r.Error != "" || len(r.Results) > 0 && r.Results[0].Error != "" {
		t.Fatalf("%s: %s", q, body)
	}
	return r
}

func count(t *testing.T, in *testenv.Influxd, db, meas, field string) int {
	t.Helper()
	r := query(t, in, db, fmt.Sprintf(`SELECT COUNT(%q) FROM %q`, field, meas))
	if len(r.Results) == 0 || len(r.Results[0].Series) == 0 {
		return 0
	}
	return int(r.Results[0].Series[0].Values[0][1].(float64))
}

func metric(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			ok := label == ""
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					ok = true
				}
			}
			if !ok {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func routeEvents(router string, from, n int, at time.Time) []change.Event {
	evs := make([]change.Event, n)
	for i := range evs {
		k := from + i
		evs[i] = change.Event{Time: at, Router: router, NetworkInstance: "default", Neighbor: "192.0.2.1", Kind: change.EventRoute, Source: change.SourceBMP,
			Route: &change.Route{Action: change.Announce, AfiSafi: "IPV4_UNICAST", RIB: "ADJ_RIB_IN_PRE",
				Prefix: fmt.Sprintf("10.%d.%d.0/24", k/256%256, k%256), OriginAS: uint32(64512 + k%100), ASPath: "65001 64512", NextHop: "192.0.2.1"}}
	}
	return evs
}

// runSink starts Run in the background and returns a stop function that
// cancels it, closes the sink and returns Run's error.
func runSink(t *testing.T, s *Sink, sub stage.Feed) func() error {
	stop := runSinkClose(s, sub, 30*time.Second)
	return func() error {
		err, cerr := stop()
		if cerr != nil {
			t.Errorf("close: %v", cerr)
		}
		return err
	}
}

// runSinkClose is runSink for a test that checks Close's error itself:
// stop returns Run's error and Close's, given closeWithin.
func runSinkClose(s *Sink, sub stage.Feed, closeWithin time.Duration) (stop func() (runErr, closeErr error)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, sub) }()
	return func() (error, error) {
		cancel()
		err := <-done
		cctx, ccancel := context.WithTimeout(context.Background(), closeWithin)
		defer ccancel()
		return err, s.Close(cctx)
	}
}

// startSink runs a sink with cfg on a fresh registry, fed by a channel of
// the given depth; stop closes it.
func startSink(t *testing.T, cfg Config, depth int) (reg *prometheus.Registry, sub chanSub, stop func() error) {
	t.Helper()
	reg = prometheus.NewRegistry()
	s, err := New(cfg, WithRegisterer(reg), WithLogger(logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	sub = chanSub{make(chan change.Batch, depth)}
	return reg, sub, runSink(t, s, sub)
}

// TestSchemaReadBack writes every measurement through the real merge
// core and reads it back; SHOW FIELD KEYS must match the fixed types.
func TestSchemaReadBack(t *testing.T) {
	in := testenv.StartInfluxd(t)
	core, err := merge.New()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := New(testConfig(t, in.URL, "meshd"), WithRegisterer(reg), WithLogger(logger(t)), WithSnapshotter(core))
	if err != nil {
		t.Fatal(err)
	}
	sub := core.Subscribe("influx", 64)
	stop := runSink(t, s, sub)
	writeAllKinds(t, core, time.Now().Add(-time.Minute))
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	checkAllMeasurements(t, in, "meshd")
	if got := metric(t, reg, "meshd_influx_points_written_total", ""); got < 12 {
		t.Fatalf("points written metric %v", got)
	}
}

// writeAllKinds feeds the core leaves and events of every kind.
func writeAllKinds(t *testing.T, core *merge.Core, at time.Time) {
	t.Helper()
	const ni, nbr = "default", "192.0.2.1"
	ch := func(p string, v any) change.Change {
		var tv = change.String("")
		switch x := v.(type) {
		case string:
			tv = change.String(x)
		case uint64:
			tv = change.Uint(x)
		case bool:
			tv = change.Bool(x)
		case float64:
			tv = change.Decimal(x, 3)
		}
		return change.Change{Router: "r1", Path: change.MustPath(p), Value: tv, Time: at, Source: change.SourceGNMI}
	}
	oc := "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=192.0.2.1]"
	md := "/meshd/network-instances/network-instance[name=default]/neighbors/neighbor[neighbor-address=192.0.2.1]"
	changes := []change.Change{
		ch(oc+"/state/peer-as", uint64(65001)),
		ch(oc+"/state/session-state", "ESTABLISHED"),
		ch(oc+"/state/established-transitions", uint64(3)),
		ch(oc+"/state/messages/received/UPDATE", uint64(1000)),
		ch(oc+"/afi-safis/afi-safi[afi-safi-name=IPV4_UNICAST]/state/prefixes/received", uint64(900)),
		ch(md+"/probe/state/rtt-last", 250.5),
		ch(md+"/probe/state/hops", uint64(1)),
		ch(md+"/bmp/state/up-count", uint64(2)),
		ch(md+"/bmp/stats/counter[type=7]/state/value", uint64(900)),
		ch(md+"/bmp/ribs/rib[view=ADJ_RIB_IN_PRE]/state/prefixes", uint64(900)),
		ch(md+"/bmp/ribs/rib[view=ADJ_RIB_IN_PRE]/state/rpki-valid", uint64(500)),
		ch(md+"/bmp/ribs/rib[view=ADJ_RIB_IN_PRE]/state/rpki-invalid-origin", uint64(7)),
		ch(md+"/bmp/ribs/rib[view=ADJ_RIB_IN_PRE]/state/rpki-invalid-length", uint64(3)),
		ch(md+"/bmp/ribs/rib[view=ADJ_RIB_IN_PRE]/state/rpki-not-found", uint64(390)),
		ch("/meshd/router/state/bmp-connected", true),
	}
	for i := range changes {
		if strings.Contains(changes[i].Path.String(), "meshd") {
			changes[i].Source = change.SourceProbe
		}
	}
	ev := func(k change.EventKind, f map[string]any) change.Event {
		return change.Event{Time: at, Router: "r1", NetworkInstance: ni, Neighbor: nbr, Kind: k, Source: change.SourceBMP, Fields: f}
	}
	events := []change.Event{
		ev(change.EventPeerUp, map[string]any{"peer_as": uint32(65001), "hold_time": 90}),
		ev(change.EventPeerDown, map[string]any{"reason_code": 1, "reason": "local admin shutdown", "notification_code": 6, "notification_subcode": 2}),
		ev(change.EventMessage, map[string]any{"type": "OPEN", "direction": "received", "as": int64(65001), "hold_time": int64(90), "bgp_id": "192.0.2.1", "capabilities": "mp-bgp,4-octet-as", "families": "IPV4_UNICAST"}),
		ev(change.EventMessage, map[string]any{"type": "NOTIFICATION", "direction": "received", "code": 6, "subcode": 2, "reason": "administrative shutdown"}),
		ev(change.EventHopChange, map[string]any{"old_hops": 1, "new_hops": 2}),
		ev(change.EventOriginChange, map[string]any{"afi_safi": "IPV4_UNICAST", "prefix": "10.0.0.0/24", "old_origin_as": uint32(64512), "new_origin_as": uint32(64513)}),
		ev(change.EventStats, map[string]any{"peer_type": "GLOBAL", "rib": "ADJ_RIB_IN_PRE", "adj-rib-in-routes": int64(900), "duplicate-prefix-advertisements": int64(3), "adj-rib-in-routes-per-afi-safi.IPV4_UNICAST": int64(900)}),
		ev(change.EventProbeSample, map[string]any{"rtt_us": 251.0, "hops": 1, "ttl": 63}),
		{Time: at, Router: "r1", Kind: change.EventRouterUp, Source: change.SourceBMP, Fields: map[string]any{"reason": "initiation"}},
		ev(change.EventRPKIChange, map[string]any{"afi_safi": "IPV4_UNICAST", "rib": "ADJ_RIB_IN_PRE", "prefix": "10.0.0.0/24", "origin_as": int64(64513), "old_state": "valid", "new_state": "invalid-origin", "path_id": int64(0), "pseudo_peer": false}),
		ev(change.EventAlert, map[string]any{"kind": "sub-prefix", "state": "open", "id": "sub-prefix 10.0.0.0/16 10.0.0.0/24 default 192.0.2.1 ADJ_RIB_IN_PRE",
			"prefix": "10.0.0.0/24", "watched_prefix": "10.0.0.0/16", "rib": "ADJ_RIB_IN_PRE", "origin_as": int64(64513), "detail": "more specific", "reason": "", "description": "ours"}),
	}
	events = append(events, routeEvents("r1", 0, 10, at)...)
	res := core.Apply(changes, events...)
	if res.Err != nil || res.Invalid > 0 {
		t.Fatalf("apply: %+v", res)
	}
}

func checkAllMeasurements(t *testing.T, in *testenv.Influxd, db string) {
	t.Helper()
	for _, meas := range []string{mNeighbor, mNeighborAfi, mKeepalive, mSessionEvent, mMessage, mOrigin, mBMPPeer, mBMPStats, mBMPRib, mBMPRoute, mRouter, mRouterEvent, mRPKIChange, mAlert} {
		r := query(t, in, db, fmt.Sprintf(`SHOW FIELD KEYS FROM %q`, meas))
		if len(r.Results) == 0 || len(r.Results[0].Series) == 0 {
			t.Errorf("%s: no fields (nothing written)", meas)
			continue
		}
		for _, v := range r.Results[0].Series[0].Values {
			name, typ := v[0].(string), v[1].(string)
			if k, ok := fixedKinds[meas][name]; ok && k.String() != typ {
				t.Errorf("%s.%s is %s in InfluxDB, schema says %s", meas, name, typ, k)
			}
		}
		r = query(t, in, db, fmt.Sprintf(`SELECT * FROM %q`, meas))
		if len(r.Results[0].Series) == 0 || len(r.Results[0].Series[0].Values) == 0 {
			t.Errorf("%s: no points", meas)
		}
	}
	if n := count(t, in, db, mBMPRoute, "prefix"); n != 10 {
		t.Errorf("bmp_route points %d, want 10", n)
	}
	r := query(t, in, db, `SELECT last("established") FROM "bgp_neighbor" WHERE "peer_as" = '65001'`)
	if len(r.Results[0].Series) == 0 || r.Results[0].Series[0].Values[0][1].(float64) != 1 {
		t.Errorf("bgp_neighbor with peer_as tag: %+v", r)
	}
	// BMP's Cease is one session end: the peer_down event carries it.
	r = query(t, in, db, `SELECT "notification_code" FROM "bgp_session_event" WHERE "event" = 'peer_down'`)
	if len(r.Results[0].Series) == 0 || r.Results[0].Series[0].Values[0][1].(float64) != 6 {
		t.Errorf("peer_down without its Cease notification code: %+v", r)
	}
	r = query(t, in, db, `SELECT "reason" FROM "bgp_session_event" WHERE "event" = 'cease'`)
	if len(r.Results[0].Series) != 0 {
		t.Errorf("a BMP Cease counted twice (peer_down and cease): %+v", r)
	}
	if n := count(t, in, db, mMessage, "my_as"); n != 1 {
		t.Errorf("OPEN my_as points %d, want 1", n)
	}
	if n := count(t, in, db, mBMPStats, "routes_adj_rib_in_afi_safi_ipv4_unicast"); n != 1 {
		t.Errorf("per-AFI stats points %d, want 1", n)
	}
}

// TestOutageExactlyOnce stops influxd in the middle of a stream: every
// point arrives, none twice.
func TestOutageExactlyOnce(t *testing.T) {
	in := testenv.StartInfluxd(t)
	cfg := testConfig(t, in.URL, "meshd")
	cfg.BatchSize = 500
	reg, sub, stop := startSink(t, cfg, 16)
	const batches, per = 200, 100
	base := time.Now().Add(-time.Hour)
	for i := 0; i < batches; i++ {
		if i == batches/3 {
			in.Stop()
		}
		if i == 2*batches/3 {
			time.Sleep(time.Second) // let the writer hit the outage and back off
			in.Start()
		}
		sub.ch <- change.Batch{Events: routeEvents("r1", i*per, per, base.Add(time.Duration(i)*time.Millisecond))}
		time.Sleep(5 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := count(t, in, "meshd", mBMPRoute, "prefix"); got != batches*per {
		t.Fatalf("points in InfluxDB %d, want exactly %d", got, batches*per)
	}
	if metric(t, reg, "meshd_influx_write_retries_total", "") == 0 {
		t.Fatal("the outage caused no retries: the test did not test an outage")
	}
}

// TestWrongDatabase: no such database is a clear, immediate error.
func TestWrongDatabase(t *testing.T) {
	in := testenv.StartInfluxd(t)
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, in.URL, "nosuchdb")
	cfg.CreateDatabase = false
	s, err := New(cfg, WithRegisterer(reg), WithLogger(logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	expectRefused(t, s, reg, "database not found")
}

// TestWrongCredentials: a bad password is a clear, immediate error.
func TestWrongCredentials(t *testing.T) {
	in := testenv.StartInfluxdAuth(t, "admin", "secret")
	for _, tc := range []struct{ name, user, pass, want string }{
		{"bad password", "admin", "wrong", "HTTP 401"},
		{"no credentials", "", "", "check influxdb.username/password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			cfg := testConfig(t, in.URL, "meshd")
			cfg.CreateDatabase = false
			cfg.Username, cfg.Password = tc.user, tc.pass
			s, err := New(cfg, WithRegisterer(reg), WithLogger(logger(t)))
			if err != nil {
				t.Fatal(err)
			}
			expectRefused(t, s, reg, tc.want)
		})
	}
	// The right credentials, creating the database, work.
	cfg := testConfig(t, in.URL, "meshd")
	cfg.Username, cfg.Password = "admin", "secret"
	s, err := New(cfg, WithLogger(logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	sub := chanSub{make(chan change.Batch, 1)}
	stop := runSink(t, s, sub)
	sub.ch <- change.Batch{Events: routeEvents("r1", 0, 5, time.Now())}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"db": {"meshd"}, "q": {`SELECT COUNT("prefix") FROM "bmp_route"`}, "u": {"admin"}, "p": {"secret"}}
	resp, err := http.Get(in.URL + "/query?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r qresult
	_ = json.NewDecoder(resp.Body).Decode(&r)
	if len(r.Results) == 0 || len(r.Results[0].Series) == 0 || r.Results[0].Series[0].Values[0][1].(float64) != 5 {
		t.Fatalf("with credentials: %+v", r)
	}
}

func expectRefused(t *testing.T, s *Sink, reg *prometheus.Registry, want string) {
	t.Helper()
	sub := chanSub{make(chan change.Batch, 1)}
	sub.ch <- change.Batch{Events: routeEvents("r1", 0, 5, time.Now())}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := s.Run(ctx, sub)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Run returned %v, want ErrRefused mentioning %q", err, want)
	}
	t.Logf("error as the operator sees it: %v", err)
	if r := metric(t, reg, "meshd_influx_write_retries_total", ""); r != 0 {
		t.Fatalf("refused write was retried %v times", r)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
	defer ccancel()
	cerr := s.Close(cctx)
	if cerr == nil || !strings.Contains(cerr.Error(), "5 points") {
		t.Fatalf("close should report the 5 points kept in the spool: %v", cerr)
	}
}

// TestSpoolFullDropOldest: InfluxDB down, spool bounded, policy
// drop-oldest: what is lost is exactly what is counted.
func TestSpoolFullDropOldest(t *testing.T) {
	in := testenv.StartInfluxd(t)
	in.CreateDB(t, "meshd")
	in.Stop()
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, in.URL, "meshd")
	cfg.SpoolMaxBytes = 1 << 20
	cfg.SpoolFullPolicy = PolicyDropOldest
	s, err := New(cfg, WithRegisterer(reg), WithLogger(logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	sub := chanSub{make(chan change.Batch, 4)}
	stop := runSink(t, s, sub)
	const total = 20000 // ~3 MB of line protocol, three times the spool
	for i := 0; i < total; i += 500 {
		sub.ch <- change.Batch{Events: routeEvents("r1", i, 500, time.Now().Add(-time.Hour).Add(time.Duration(i)*time.Millisecond))}
	}
	testenv.WaitFor(t, 20*time.Second, "points spooled", func() bool {
		return metric(t, reg, "meshd_influx_points_spooled_total", "") == total
	})
	in.Start()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := count(t, in, "meshd", mBMPRoute, "prefix")
	dropped := int(metric(t, reg, "meshd_influx_points_dropped_total", "spool_full"))
	t.Logf("written %d, dropped and counted %d", got, dropped)
	if dropped == 0 || got+dropped != total {
		t.Fatalf("written %d + dropped %d != %d", got, dropped, total)
	}
}

// TestSpoolFullBlock: InfluxDB down, spool bounded, policy block: the
// consumer stops, the merge core drops and counts, and what the core
// counted plus what arrived is everything that was emitted.
func TestSpoolFullBlock(t *testing.T) {
	in := testenv.StartInfluxd(t)
	in.CreateDB(t, "meshd")
	in.Stop()
	core, err := merge.New()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, in.URL, "meshd")
	cfg.SpoolMaxBytes = 1 << 20
	s, err := New(cfg, WithRegisterer(reg), WithLogger(logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	sub := core.Subscribe("influx", 4)
	stop := runSink(t, s, sub)
	const total = 20000
	for i := 0; i < total; i += 500 {
		core.Emit(routeEvents("r1", i, 500, time.Now().Add(-time.Hour).Add(time.Duration(i)*time.Millisecond))...)
		time.Sleep(20 * time.Millisecond)
	}
	if sub.Dropped() == 0 {
		t.Fatal("spool never filled: the test did not test a full spool")
	}
	in.Start()
	// One more batch delivers the core's Lost count to the sink.
	testenv.WaitFor(t, 30*time.Second, "consumer unblocked", func() bool {
		return metric(t, reg, "meshd_influx_queue_points", "") == 0
	})
	// The spool can be empty while the consumer still appends its last
	// blocked buffer and the queue is full, so a batch may still be
	// dropped: emit until one is queued (it carries Lost).
	extra := 0
	for deadline := time.Now().Add(30 * time.Second); ; {
		d := sub.Dropped()
		core.Emit(routeEvents("r2", extra, 1, time.Now())...)
		extra++
		if sub.Dropped() == d {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the core kept dropping batches for 30s after InfluxDB came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := count(t, in, "meshd", mBMPRoute, "prefix")
	t.Logf("written %d, dropped by the core and counted %d", got, sub.Dropped())
	if got+int(sub.Dropped()) != total+extra {
		t.Fatalf("written %d + core dropped %d != %d", got, sub.Dropped(), total+extra)
	}
	if lost := metric(t, reg, "meshd_influx_source_lost_total", ""); lost != float64(sub.Dropped()) {
		t.Fatalf("sink counted %v lost, core %d", lost, sub.Dropped())
	}
}

// TestKill9Replay kills a writer process (this test binary re-executed)
// while its spool holds points InfluxDB has not taken, then restarts:
// every point arrives exactly once.
func TestKill9Replay(t *testing.T) {
	if os.Getenv("MESHD_INFLUX_CHILD") != "" {
		killChild()
		return
	}
	in := testenv.StartInfluxd(t)
	in.CreateDB(t, "meshd")
	in.Stop() // the child's points can only go to its spool
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Replay$")
	cmd.Env = append(os.Environ(), "MESHD_INFLUX_CHILD=1", "MESHD_INFLUX_URL="+in.URL, "MESHD_INFLUX_SPOOL="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	spooled := -1
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "SPOOLED "); ok {
			spooled, _ = strconv.Atoi(n)
			break
		}
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if spooled <= 0 {
		t.Fatalf("child did not report its spool")
	}
	in.Start()
	cfg := testConfig(t, in.URL, "meshd")
	cfg.SpoolDir = dir
	s, err := New(cfg, WithLogger(logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := count(t, in, "meshd", mBMPRoute, "prefix"); got != spooled {
		t.Fatalf("after kill -9 and restart: %d points, want %d", got, spooled)
	}
}

// killChild spools points and says so, then waits to be killed.
func killChild() {
	cfg := Config{URL: os.Getenv("MESHD_INFLUX_URL"), Database: "meshd", SpoolDir: os.Getenv("MESHD_INFLUX_SPOOL"),
		FlushInterval: 100 * time.Millisecond, Timeout: time.Second, SnapshotInterval: -1}
	s, err := New(cfg)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	sub := chanSub{make(chan change.Batch, 8)}
	go func() { _ = s.Run(context.Background(), sub) }()
	const n = 30000
	for i := 0; i < n; i += 1000 {
		sub.ch <- change.Batch{Events: routeEvents("r1", i, 1000, time.Now().Add(-time.Hour).Add(time.Duration(i)*time.Millisecond))}
	}
	for s.sp.Stats().Points < n {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("SPOOLED", n)
	os.Stdout.Sync()
	time.Sleep(time.Minute)
}

// fullDisk starts InfluxDB, stops it again, and returns a sink config
// whose spool is on a 512 KiB tmpfs, far below the spool's own limit.
func fullDisk(t *testing.T) (*testenv.Influxd, Config) {
	t.Helper()
	testenv.RequireRoot(t)
	in := testenv.StartInfluxd(t)
	in.CreateDB(t, "meshd")
	in.Stop()
	dir := t.TempDir()
	if err := syscall.Mount("meshd-test-full", dir, "tmpfs", 0, "size=512k"); err != nil {
		t.Fatalf("mounting a small tmpfs for the spool: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	cfg := testConfig(t, in.URL, "meshd")
	cfg.SpoolDir = dir
	cfg.SpoolMaxBytes = 64 << 20 // far above the disk: the disk fills first
	cfg.BatchSize = 500
	return in, cfg
}

// checkAllArrived stops the sink and requires every point in InfluxDB,
// none dropped, and each spooled once or, past a disk that refused it,
// written to InfluxDB directly once.
func checkAllArrived(t *testing.T, in *testenv.Influxd, reg *prometheus.Registry, stop func() error, total int) {
	t.Helper()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := count(t, in, "meshd", mBMPRoute, "prefix")
	t.Logf("spool errors %v, points in InfluxDB %d", metric(t, reg, "meshd_influx_spool_errors_total", ""), got)
	if got != total {
		t.Errorf("points in InfluxDB %d, want exactly %d", got, total)
	}
	sp, direct := metric(t, reg, "meshd_influx_points_spooled_total", ""), metric(t, reg, "meshd_influx_points_direct_total", "")
	if sp+direct != float64(total) {
		t.Errorf("%v points spooled and %v written past the spool, want %d in all", sp, direct, total)
	}
	for _, r := range []string{"spool_error", "shutdown"} {
		if d := metric(t, reg, "meshd_influx_points_dropped_total", r); d != 0 {
			t.Errorf("%v points dropped (%s) with the block policy", d, r)
		}
	}
}

// TestDiskFull puts the spool on a 512 KiB tmpfs while InfluxDB is down:
// the disk fills long before the spool's own limit. Appends fail with
// ENOSPC, which is counted and logged and retried; once InfluxDB is back
// and takes the spooled points, their segments are freed, the appends
// go through, and every point arrives exactly once.
func TestDiskFull(t *testing.T) {
	in, cfg := fullDisk(t)
	reg, sub, stop := startSink(t, cfg, 64)
	const total = 10000 // ~1.5 MB of line protocol, three times the disk
	base := time.Now().Add(-time.Hour)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		// Paced past the flush interval, so each spool record is one
		// batch (~75 kB) and the disk fills between records.
		for i := 0; i < total; i += 500 {
			sub.ch <- change.Batch{Events: routeEvents("r1", i, 500, base.Add(time.Duration(i)*time.Millisecond))}
			time.Sleep(150 * time.Millisecond)
		}
	}()
	testenv.WaitFor(t, 30*time.Second, "an append refused by the full disk", func() bool {
		return metric(t, reg, "meshd_influx_spool_errors_total", "") > 0
	})
	in.Start()
	select {
	case <-sent:
	case <-time.After(60 * time.Second):
		t.Fatal("the sink never took the rest of the points after InfluxDB came back")
	}
	checkAllArrived(t, in, reg, stop, total)
}

// TestRecordLargerThanDisk: points gathered at once make one spool record
// larger than the whole disk. The sink must split it (a CI run saw a
// 786 kB record retried whole on a 512 KiB disk until shutdown, and
// 7,500 of 10,000 points lost), spool what fits, and deliver it all once
// InfluxDB is back (the rest straight to InfluxDB).
func TestRecordLargerThanDisk(t *testing.T) {
	in, cfg := fullDisk(t)
	reg, sub, stop := startSink(t, cfg, 64)
	const total = 6000 // ~900 kB: one record, as it comes in one batch
	sub.ch <- change.Batch{Events: routeEvents("r1", 0, total, time.Now().Add(-time.Hour))}
	testenv.WaitFor(t, 30*time.Second, "an append refused by the full disk", func() bool {
		return metric(t, reg, "meshd_influx_spool_errors_total", "") > 0
	})
	in.Start()
	testenv.WaitFor(t, 60*time.Second, "every point spooled or written past the spool", func() bool {
		return metric(t, reg, "meshd_influx_points_spooled_total", "")+metric(t, reg, "meshd_influx_points_direct_total", "") == total
	})
	checkAllArrived(t, in, reg, stop, total)
}
