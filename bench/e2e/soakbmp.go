package e2e

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
	"github.com/meshd/meshd/internal/testenv"
)

// The soak's BMP rows. What is counted: every Route Monitoring message
// announcing a route is one bmp_route point with action=announce (the
// sink keeps a peer's route events apart by moving a colliding timestamp
// 1 ns on), so "expected" is the routes the senders announced and
// "found" is SELECT COUNT(prefix) FROM bmp_route WHERE action='announce'
// in InfluxDB. Messages are accounted separately: every message the
// senders framed must show in meshd_bmp_messages_total, and every bad one
// in meshd_bmp_errors_total.

const (
	// FaultBMPStorm is many BMP messages at once, with one peer going
	// down and up every second.
	FaultBMPStorm Fault = "bmp storm, a peer flapping every second"
	// FaultBMPFuzz is mutated BMP messages on real TCP sessions beside a
	// clean one.
	FaultBMPFuzz Fault = "fuzzed bmp messages"
)

// BMPStorm sizes the storm row.
type BMPStorm struct {
	Sessions int           // routers, one TCP session each
	Messages int           // over all sessions, about
	Over     time.Duration // the senders' pace: every message within this
	// FlapRoutes is how many routes the flapping peer announces each time
	// it comes up (it goes down again before the next second).
	FlapRoutes int
}

// BMPFuzz sizes the fuzz row.
type BMPFuzz struct {
	Sessions int // fuzzing sessions, beside one clean session
	Messages int // fuzzed messages over all of them
	// ControlRoutes is the clean session's table, which must reach
	// InfluxDB whole.
	ControlRoutes int
	Seed          uint64
	// BreakEvery is how many messages a fuzzing connection sends before
	// one that cannot be framed (a wrong version), after which it
	// reconnects: meshd must close that session cleanly and count it.
	BreakEvery int
}

// bmpRig is what a BMP row runs: influxd, the proxy and meshd, no fleet.
type bmpRig struct {
	m     *meshdProc
	proxy *influxProxy
	q     influxQuerier
	smp   *sampler
}

// finish fills in the row's figures that every BMP row has.
func (r *bmpRig) finish(row *SoakRow) {
	_, row.PeakRSS, _ = procMem(r.m.pid())
	r.smp.stop()
	row.SpoolPeak, row.SpoolPeakPoints = r.smp.peak()
	row.Duplicated, row.Overwritten = r.proxy.duplicated()
}

func startBMPRig(tb testing.TB, bins binaries) (*bmpRig, func(), error) {
	dir := tb.TempDir()
	in := testenv.StartInfluxd(tb)
	proxy, err := startProxy(fmt.Sprintf("127.0.0.1:%d", soakProxy), in.URL)
	if err != nil {
		return nil, nil, err
	}
	proxy.trackKeys()
	cfgPath := filepath.Join(dir, "meshd.yaml")
	if err := os.WriteFile(cfgPath, []byte(soakConfig("", proxy.URL(), filepath.Join(dir, "spool"))), 0o644); err != nil {
		proxy.close()
		return nil, nil, err
	}
	m, err := startMeshdAt(bins.meshd, cfgPath, filepath.Join(dir, "meshd.log"), soakHTTP)
	if err != nil {
		proxy.close()
		return nil, nil, err
	}
	rig := &bmpRig{m: m, proxy: proxy, q: influxQuerier{url: in.URL}, smp: startSampler()}
	return rig, func() { rig.smp.stop(); m.stop(); proxy.close() }, nil
}

// messageBounds returns where each BMP message in b starts, and len(b).
func messageBounds(b []byte) ([]int, error) {
	var out []int
	for off := 0; off < len(b); {
		if len(b)-off < 6 {
			return nil, fmt.Errorf("bmp stream: %d bytes left at %d", len(b)-off, off)
		}
		n := int(binary.BigEndian.Uint32(b[off+1:]))
		if n < 6 || off+n > len(b) {
			return nil, fmt.Errorf("bmp stream: message length %d at %d", n, off)
		}
		out = append(out, off)
		off += n
	}
	return append(out, len(b)), nil
}

// bmpCount is the BMP counters a row accounts with.
type bmpCount struct {
	msgs, malformed, framing, other float64 // other: every other BMP error kind
	dropped                         float64 // merge core for a sink, InfluxDB sink lost or dropped
}

func bmpCounters() (bmpCount, error) {
	mfs, err := scrape(soakMetrics())
	if err != nil {
		return bmpCount{}, err
	}
	c := bmpCount{
		msgs:      sum(mfs, "meshd_bmp_messages_total"),
		malformed: sum(mfs, "meshd_bmp_errors_total", "kind", "malformed"),
		framing:   sum(mfs, "meshd_bmp_errors_total", "kind", "framing"),
		dropped:   meshdDropped(mfs),
	}
	c.other = sum(mfs, "meshd_bmp_errors_total") - c.malformed - c.framing
	return c, nil
}

// awaitBMP waits until meshd has counted want messages more than c0 has,
// then until InfluxDB holds row.Expected announce points (of router, or
// of all when ""). It returns the counters then, and when meshd had
// counted the messages.
func awaitBMP(row *SoakRow, rig *bmpRig, c0 bmpCount, want float64, router string, lastByte time.Time) (bmpCount, time.Time) {
	var c bmpCount
	err := waitFor(10*time.Minute, 500*time.Millisecond, func() (bool, error) {
		var err error
		c, err = bmpCounters()
		return err == nil && c.msgs-c0.msgs >= want, rig.m.exited()
	})
	counted := time.Now()
	if err != nil {
		row.Failed += fmt.Sprintf("meshd counted %.0f of %.0f messages: %v; ", c.msgs-c0.msgs, want, err)
	}
	err = waitFor(10*time.Minute, time.Second, func() (bool, error) {
		var err error
		row.Found, err = rig.q.announced(router)
		return err == nil && row.Found >= row.Expected, rig.m.exited()
	})
	row.Recovery = time.Since(lastByte)
	row.Lost = row.Expected - row.Found
	row.ReplayRate = float64(row.Found) / row.Recovery.Seconds()
	if err != nil {
		row.Failed += fmt.Sprintf("route points not all in InfluxDB within 10 m: %v; ", err)
	}
	if c2, err := bmpCounters(); err == nil {
		c.dropped = c2.dropped
	}
	row.MeshdDropped = c.dropped
	return c, counted
}

// retries is meshd_influx_write_retries_total: writes meshd sent again
// after a failure or timeout, the usual source of a duplicate.
func retries() float64 {
	mfs, err := scrape(soakMetrics())
	if err != nil {
		return -1
	}
	return sum(mfs, "meshd_influx_write_retries_total")
}

// announced is COUNT(prefix) of bmp_route announce points, of router if
// not "".
func (q influxQuerier) announced(router string) (int64, error) {
	where := `"action" = 'announce'`
	if router != "" {
		where += fmt.Sprintf(` AND "router" = '%s'`, router)
	}
	return q.countWhere(`SELECT COUNT("prefix") FROM "bmp_route" WHERE ` + where)
}

// countWhere sums the counts a COUNT statement answers.
func (q influxQuerier) countWhere(stmt string) (int64, error) {
	var n int64
	err := q.query(stmt, func(a *influxAnswer) error {
		for _, r := range a.Results {
			for _, s := range r.Series {
				for _, v := range s.Values {
					if len(v) == 2 {
						c, err := v[1].(json.Number).Int64()
						if err != nil {
							return err
						}
						n += c
					}
				}
			}
		}
		return nil
	})
	return n, err
}

// runBMPStorm sends st.Messages over st.Sessions sessions at the pace
// st.Over, with the first session's extra peer flapping every second.
func runBMPStorm(tb testing.TB, bins binaries, st BMPStorm) (*SoakRow, error) {
	flaps := int(st.Over / time.Second)
	row := &SoakRow{Fault: FaultBMPStorm, Duration: st.Over, SpoolBound: soakSpoolBound,
		Load: fmt.Sprintf("%d BMP sessions, %d msgs in %v", st.Sessions, st.Messages, st.Over)}
	rig, stop, err := startBMPRig(tb, bins)
	if err != nil {
		return nil, err
	}
	defer stop()

	// Every route its own attribute set: about one message a route.
	streams := make([][]byte, st.Sessions)
	bounds := make([][]int, st.Sessions)
	var sentMsgs, routes int
	for i := range streams {
		var buf bytes.Buffer
		msgs, r, err := bmpgen.WriteTable(&buf, bmpgen.TableConfig{SysName: fmt.Sprintf("storm-%d", i+1), Peers: 2,
			Routes: st.Messages / st.Sessions, V6Share: 0.15, NewAttrShare: 1.0, Seed: uint64(i + 1)})
		if err != nil {
			return nil, err
		}
		streams[i] = buf.Bytes()
		if bounds[i], err = messageBounds(streams[i]); err != nil {
			return nil, err
		}
		sentMsgs += msgs
		routes += r
	}
	flapBlocks := make([][]byte, flaps)
	flapPeer := bmpgen.TablePeer(100)
	for k := range flapBlocks {
		var b []byte
		flapPeer.Time = time.Now().Add(time.Duration(k) * time.Second)
		b = bmpgen.AppendPeerUp(b, &flapPeer, netip.MustParseAddr("198.19.255.1"), 179, 40100,
			bmpgen.Open{AS: 65001, HoldTime: 90, ID: netip.MustParseAddr("198.19.255.1"), Families: []uint32{1<<16 | 1}, FourOctet: true},
			bmpgen.Open{AS: flapPeer.AS, HoldTime: 90, ID: flapPeer.BGPID, Families: []uint32{1<<16 | 1}, FourOctet: true}, "")
		med := uint32(k)
		for r := range st.FlapRoutes {
			pf := netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64, byte(r >> 8), byte(r)}), 32)
			b = bmpgen.AppendRouteMonitoring(b, &flapPeer, &bmpgen.Route{Prefixes: []netip.Prefix{pf},
				ASPath: []uint32{flapPeer.AS, 64999}, NextHop: flapPeer.Addr, MED: &med})
		}
		b = bmpgen.AppendPeerDown(b, &flapPeer, 2, 0, 0, nil, 0)
		flapBlocks[k] = b
		sentMsgs += st.FlapRoutes + 2
		routes += st.FlapRoutes
	}

	c0, err := bmpCounters()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	conns := make([]net.Conn, st.Sessions)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	errs := make([]error, st.Sessions)
	var wg sync.WaitGroup
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", soakBMP))
			if err != nil {
				errs[i] = err
				return
			}
			conns[i] = c
			n := len(bounds[i]) - 1
			for k := range flaps {
				// Chunk k of the table at second k, on message bounds.
				if d := time.Until(start.Add(time.Duration(k) * st.Over / time.Duration(flaps))); d > 0 {
					time.Sleep(d)
				}
				from, til := bounds[i][k*n/flaps], bounds[i][(k+1)*n/flaps]
				if _, err := c.Write(streams[i][from:til]); err != nil {
					errs[i] = err
					return
				}
				if i == 0 {
					if _, err := c.Write(flapBlocks[k]); err != nil {
						errs[i] = err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	lastByte := time.Now()
	if err := errors.Join(errs...); err != nil {
		return row, fmt.Errorf("bmp senders: %w", err)
	}
	row.Expected = int64(routes)
	c, counted := awaitBMP(row, rig, c0, float64(sentMsgs), "", lastByte)
	rig.finish(row)
	rss, _, _ := procMem(rig.m.pid())
	malformed, framing, other := c.malformed-c0.malformed, c.framing-c0.framing, c.other-c0.other
	row.Note += fmt.Sprintf("%d messages sent in %v (%d flaps of %d routes), meshd had counted them all %v after the first; malformed %.0f, framing %.0f, other errors %.0f; RSS after %.0f MiB",
		sentMsgs, lastByte.Sub(start).Round(100*time.Millisecond), flaps, st.FlapRoutes, counted.Sub(start).Round(100*time.Millisecond),
		malformed, framing, other, float64(rss)/(1<<20))
	row.Note += fmt.Sprintf("; meshd retried %.0f writes", retries())
	if malformed+framing+other != 0 {
		row.Failed += "valid messages counted as errors; "
	}
	if err := rig.m.exited(); err != nil {
		return row, err
	}
	return row, nil
}

// fuzzStats is what the fuzzing senders did.
type fuzzStats struct {
	framed   int64 // whole messages written (initiations included)
	mutated  int64
	breakers int64 // framing breakers sent (each ends its connection)
	closed   int64 // connections meshd closed under a sender
	conns    int64
}

// runBMPFuzz sends fz.Messages mutated messages over fz.Sessions
// sessions while a clean session sends its table.
func runBMPFuzz(tb testing.TB, bins binaries, fz BMPFuzz) (*SoakRow, error) {
	row := &SoakRow{Fault: FaultBMPFuzz, SpoolBound: soakSpoolBound,
		Load: fmt.Sprintf("%d fuzzed sessions, %d msgs (seed %d); 1 clean, %d routes", fz.Sessions, fz.Messages, fz.Seed, fz.ControlRoutes)}
	rig, stop, err := startBMPRig(tb, bins)
	if err != nil {
		return nil, err
	}
	defer stop()

	// The messages fuzzed: a small table's (Peer Ups, routes of every
	// kind bmpgen makes, End-of-RIBs), without its Initiation.
	var base bytes.Buffer
	if _, _, err := bmpgen.WriteTable(&base, bmpgen.TableConfig{SysName: "base", Peers: 3, Routes: 3000, V6Share: 0.3, NewAttrShare: 0.5, Seed: fz.Seed}); err != nil {
		return nil, err
	}
	bb := base.Bytes()
	bnd, err := messageBounds(bb)
	if err != nil {
		return nil, err
	}
	var control bytes.Buffer
	_, controlRoutes, err := bmpgen.WriteTable(&control, bmpgen.TableConfig{SysName: "control", Peers: 2, Routes: fz.ControlRoutes, V6Share: 0.15, NewAttrShare: 0.35, Seed: 99})
	if err != nil {
		return nil, err
	}

	c0, err := bmpCounters()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	cc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", soakBMP))
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	controlErr := make(chan error, 1)
	go func() { _, err := cc.Write(control.Bytes()); controlErr <- err }()

	stats := make([]fuzzStats, fz.Sessions)
	open := make([]net.Conn, fz.Sessions)
	defer func() {
		for _, c := range open {
			if c != nil {
				c.Close()
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range fz.Sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			open[i] = fuzzSession(&stats[i], fmt.Sprintf("fuzz-%d", i+1), bb, bnd, fz.Messages/fz.Sessions, fz.BreakEvery, fz.Seed+uint64(i))
		}()
	}
	wg.Wait()
	if err := <-controlErr; err != nil {
		return row, fmt.Errorf("clean session: %w", err)
	}
	var st fuzzStats
	for _, s := range stats {
		st.framed += s.framed
		st.mutated += s.mutated
		st.breakers += s.breakers
		st.closed += s.closed
		st.conns += s.conns
	}
	lastByte := time.Now()
	controlMsgs := int64(len(mustBounds(control.Bytes())) - 1)
	want := float64(st.framed + controlMsgs)
	row.Expected = int64(controlRoutes)
	c, _ := awaitBMP(row, rig, c0, want, "control", lastByte)
	row.Duration = time.Since(start)
	rig.finish(row)
	if err := rig.m.exited(); err != nil {
		return row, err
	}
	// The clean session must still be up: one more message on it counts.
	if _, err := cc.Write(bmpgen.AppendStats(nil, ptr(bmpgen.TablePeer(0)), []bmpgen.Stat{{Type: 7, Value: 1}})); err != nil {
		row.Failed += fmt.Sprintf("the clean session was closed: %v; ", err)
	}
	err = waitFor(time.Minute, 200*time.Millisecond, func() (bool, error) {
		c, err := bmpCounters()
		return err == nil && c.msgs-c0.msgs >= want+1, rig.m.exited()
	})
	if err != nil {
		row.Failed += "the clean session's last message was not counted: it was closed; "
	}
	log, err := os.ReadFile(rig.m.logPath)
	if err != nil {
		return row, err
	}
	logged := len(malformedLog.FindAll(log, -1))
	// The rest are summed up in warnings (each is at debug level).
	summed := 0
	for _, m := range malformedSummary.FindAllSubmatch(log, -1) {
		n, _ := strconv.Atoi(string(m[1]))
		summed += n
	}
	if bytes.Contains(log, []byte(`router=control`)) && regexp.MustCompile(`(?m)^.*(closing BMP session|malformed).*router=control.*$`).Match(log) {
		row.Failed += "the clean session has an error in meshd's log; "
	}
	row.Note += fmt.Sprintf("%d messages framed over %d connections, %d mutated; meshd counted %.0f messages (%.0f sent), %.0f malformed, %.0f framing (%d sent), %.0f other errors; %d malformed lines in its log with router and offset and %d more in its summaries; %d connections closed by meshd under a sender",
		st.framed, st.conns, st.mutated, c.msgs-c0.msgs, want, c.malformed-c0.malformed, c.framing-c0.framing, st.breakers, c.other-c0.other, logged, summed, st.closed)
	row.Note += fmt.Sprintf("; meshd retried %.0f writes", retries())
	if c.framing-c0.framing != float64(st.breakers) {
		// meshd's log goes with the row's directory: its framing lines
		// say where each was.
		lines := framingLog.FindAll(log, 40)
		row.Failed += fmt.Sprintf("framing errors %.0f, breakers sent %d; meshd's framing lines:\n%s\n", c.framing-c0.framing, st.breakers, bytes.Join(lines, []byte("\n")))
	}
	if c.malformed-c0.malformed > 0 && logged == 0 {
		row.Failed += "malformed messages counted but none logged with router and offset; "
	}
	if st.closed > 0 {
		row.Failed += fmt.Sprintf("meshd closed %d fuzzing sessions that had sent no framing breaker; ", st.closed)
	}
	return row, nil
}

var (
	framingLog       = regexp.MustCompile(`(?m)^.*closing BMP session: stream cannot be framed.*$`)
	malformedLog     = regexp.MustCompile(`(?m)^.*malformed BMP message skipped.*router=fuzz-\d+.*offset=\d+.*$`)
	malformedSummary = regexp.MustCompile(`(?m)^.*malformed BMP messages skipped.*router=fuzz-\d+.*since_last_warning=(\d+).*$`)
)

func ptr[T any](v T) *T { return &v }

func mustBounds(b []byte) []int {
	out, err := messageBounds(b)
	if err != nil {
		panic(err)
	}
	return out
}

// fuzzSession sends n messages as router name: an Initiation, then the
// base messages in turn, half of them with 1-4 bytes after the common
// header set at random; every breakEvery messages a framing breaker
// ends the connection and a new one starts. It returns the last
// connection, open, for the caller to close once meshd has read it.
func fuzzSession(st *fuzzStats, name string, base []byte, bnd []int, n, breakEvery int, seed uint64) net.Conn {
	r := rand.New(rand.NewPCG(seed, 17))
	init := bmpgen.AppendInitiation(nil, name, "meshd soak fuzzer")
	var c net.Conn
	var buf []byte
	var pending int64 // messages in buf
	flush := func() bool {
		if c == nil || len(buf) == 0 {
			return c != nil
		}
		_, err := c.Write(buf)
		buf = buf[:0]
		if err != nil {
			st.closed++
			c.Close()
			c = nil
			pending = 0
			return false
		}
		st.framed += pending
		pending = 0
		return true
	}
	connect := func() bool {
		var err error
		if c, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", soakBMP)); err != nil {
			return false
		}
		st.conns++
		buf = append(buf[:0], init...)
		pending = 1
		return true
	}
	j := 1 // base message index; 0 is the Initiation
	sinceBreak := 0
	for sent := 0; sent < n; sent++ {
		if c == nil && !connect() {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		m := base[bnd[j]:bnd[j+1]]
		j++
		if j == len(bnd)-1 {
			j = 1
		}
		at := len(buf)
		buf = append(buf, m...)
		if r.IntN(2) == 0 && len(m) > 6 {
			for range 1 + r.IntN(4) {
				buf[at+6+r.IntN(len(m)-6)] = byte(r.Uint32())
			}
			st.mutated++
		}
		pending++
		sinceBreak++
		if sinceBreak == breakEvery {
			sinceBreak = 0
			if !flush() {
				continue
			}
			// Version 9 of a 6-byte message: no BMP reader can go on.
			if _, err := c.Write([]byte{9, 0, 0, 0, 6, 0}); err == nil {
				st.breakers++
			}
			c.Close()
			c = nil
			continue
		}
		if len(buf) >= 64<<10 {
			flush()
		}
	}
	flush()
	return c
}
