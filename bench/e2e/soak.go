package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/sinks/influx/spool"
)

// The soak harness (issue 17): the real `meshd run` under a steady gNMI
// load, one fault injected per row, and what reached InfluxDB counted
// against what the fleet sent, by InfluxDB's own query results.
//
// What is counted. Every notification the fleet simulator sends carries
// a new messages/received/UPDATE value for one neighbor, and the gNMI
// collector applies one notification as one batch, so each must become
// exactly one bgp_neighbor point with an updates_rx field, stamped with
// the notification's timestamp (two of one neighbor in one tick are made
// 1 ns apart by the sink, not merged). The simulator counts what it sent
// by the second of the timestamp; "expected" is that count over a window
// of whole seconds around the fault. Each notification's updates_rx is
// new for its neighbor (the counter only grows), so "found" is the
// distinct updates_rx values per neighbor over the same window in
// InfluxDB (COUNT(DISTINCT(updates_rx)) grouped by router, instance and
// neighbor, summed), and
// lost = expected − found. A point that repeats a value, as the state the
// sink rewrites from the merge core after missing batches does, adds
// nothing and cannot hide a loss. The periodic snapshot is off. A found
// above expected (values the fleet did not send) fails the row as well.
//
// For kill -9 what must survive is what meshd had spooled: the spool
// directory is copied after the kill, its unacknowledged records read
// with the spool package, and every point in them (all measurements) must
// be in InfluxDB, by series and timestamp, once the restarted meshd has
// replayed them. What meshd had received but not yet spooled, and what
// the fleet sent while it was dead, is reported, not required.
//
// Duplicated is the number of points influxd acknowledged twice (same
// series and timestamp in two acknowledged writes, counted by the proxy):
// InfluxDB keeps one, so it costs nothing but a write.

// Soak ports: apart from the benchmark's (21001-21004, 22000+).
const (
	soakHTTP     = 23001
	soakBMP      = 23002
	soakGNMI     = 23003
	soakProxy    = 23004
	soakFleetLow = 23100 // one per simulated router, at most 899
)

// Fault is what a soak row does to meshd or its InfluxDB.
type Fault string

const (
	// FaultInfluxDown closes the way to InfluxDB: connections refused.
	FaultInfluxDown Fault = "influxdb down"
	// FaultInfluxSlow holds every write 2 s before influxd gets it.
	FaultInfluxSlow Fault = "influxdb slow (2 s/write)"
	// FaultSlowSubscriber is a client of meshd's gNMI target that reads
	// its stream one byte a second (soakslow.go).
	FaultSlowSubscriber Fault = "slow gNMI subscriber (1 B/s)"
	// FaultClockStep steps the machine's wall clock ±1 h (soakclock.go).
	FaultClockStep Fault = "clock steps ±1 h"
	// FaultGNMIGarbage adds targets that send what no router should
	// (soakgarbage.go).
	FaultGNMIGarbage Fault = "gNMI targets sending garbage"
	// FaultDisk fills the spool's disk, then deletes its directory
	// (soakdisk.go).
	FaultDisk Fault = "spool disk full, then deleted"
	// FaultKill is kill -9 of meshd, then a restart on the same spool.
	FaultKill Fault = "kill -9 meshd"
)

// SoakLoad is the gNMI fleet a row runs under.
type SoakLoad struct {
	Targets, Neighbors int
	// PointsPerSec is the InfluxDB points a second the fleet's changes
	// make: each notification (about 3 leaves) is one bgp_neighbor and
	// one bgp_neighbor_afi point.
	PointsPerSec int
}

// leafRate is the fleet's rate in leaf updates a second.
func (l SoakLoad) leafRate() int { return l.PointsPerSec * 3 / 2 }

func (l SoakLoad) String() string {
	return fmt.Sprintf("%dx%d gNMI, %d points/s", l.Targets, l.Neighbors, l.PointsPerSec)
}

// SoakRow is one fault's result: a line of the table.
type SoakRow struct {
	Fault    Fault
	Load     string
	Duration time.Duration // the fault's

	Expected, Found, Lost, Duplicated int64
	// Overwritten are the duplicates whose lines differ: a point that
	// replaced another in InfluxDB (see influxProxy.duplicated).
	Overwritten int64

	PeakRSS         int64 // meshd's VmHWM (the larger of the two lives for kill -9)
	SpoolPeak       int64 // meshd_influx_spool_bytes, sampled every second
	SpoolPeakPoints int64 // meshd_influx_queue_points at its peak
	SpoolBound      int64 // spool-max-bytes
	// Recovery is, for InfluxDB faults, fault end → every point stamped
	// before the fault's last second found in InfluxDB; for kill -9, restart → every target synced and
	// every neighbor with a point stamped after the restart (full state).
	Recovery time.Duration
	// ReplayRate is points influxd acknowledged a second over Recovery
	// (the backlog and the live load together); for kill -9, the spooled
	// points over the time from restart until all were found.
	ReplayRate float64
	// MeshdDropped is what meshd's own counters say it dropped
	// (merge core for a consumer, InfluxDB sink lost or dropped).
	MeshdDropped float64
	Note         string
	// Failed says which of the row's own checks failed (BMP rows:
	// messages not all counted, a clean session touched, ...).
	Failed string
}

// soakSpoolBound is the spool's bound in the soak's config: room for
// five minutes of InfluxDB down at 20k points/s (~200 bytes a point).
const soakSpoolBound = 4 << 30

// runSoak runs one row: a fresh influxd, fleet and meshd, a steady
// start, the fault, and the count.
func runSoak(tb testing.TB, bins binaries, fault Fault, load SoakLoad, dur time.Duration) (*SoakRow, error) {
	row := &SoakRow{Fault: fault, Load: load.String(), Duration: dur, SpoolBound: soakSpoolBound}
	dir := tb.TempDir()
	in := testenv.StartInfluxd(tb)
	proxy, err := startProxy(fmt.Sprintf("127.0.0.1:%d", soakProxy), in.URL)
	if err != nil {
		return nil, err
	}
	defer func() { proxy.close() }()
	proxy.trackKeys()

	targetsFile := filepath.Join(dir, "targets.yaml")
	// The fleet counts what it sent by the second of its timestamps
	// (see the top of this file).
	sim, err := startSim(bins.self, simFleet{targets: load.Targets, neighbors: load.Neighbors, rate: load.leafRate(),
		basePort: soakFleetLow, prefix: "soak", count: true}, targetsFile)
	if err != nil {
		return nil, err
	}
	defer sim.close()

	cfgPath := filepath.Join(dir, "meshd.yaml")
	spoolDir := filepath.Join(dir, "spool")
	if fault == FaultDisk {
		unmount, err := mountSpoolDisk(filepath.Join(dir, "spooldisk"))
		if err != nil {
			return nil, err
		}
		defer unmount()
		spoolDir = filepath.Join(dir, "spooldisk", "spool")
	}
	if err := os.WriteFile(cfgPath, []byte(soakConfig(targetsFile, proxy.URL(), spoolDir)), 0o644); err != nil {
		return nil, err
	}
	m, err := startMeshdAt(bins.meshd, cfgPath, filepath.Join(dir, "meshd.log"), soakHTTP)
	if err != nil {
		return nil, err
	}
	defer func() { m.stop() }()
	if err := waitSynced(m, load.Targets, 5*time.Minute); err != nil {
		return nil, err
	}
	smp := startSampler()
	defer smp.stop()
	// A steady start before the fault, inside the counted window.
	time.Sleep(5 * time.Second)

	q := influxQuerier{url: in.URL}
	switch fault {
	case FaultInfluxDown, FaultInfluxSlow:
		err = influxFault(row, fault, m, proxy, sim, q, dur)
	case FaultSlowSubscriber:
		err = slowSubscriberFault(row, m, proxy, sim, q, dur)
	case FaultClockStep:
		err = clockFault(row, m, proxy, sim, q, dur)
	case FaultGNMIGarbage:
		err = garbageFault(row, m, proxy, sim, q, targetsFile, dur)
	case FaultDisk:
		err = diskFault(row, m, proxy, sim, q, spoolDir, dur)
	case FaultKill:
		m, err = killFault(row, load, bins, cfgPath, spoolDir, m, smp, sim, q, dur)
	default:
		err = fmt.Errorf("unknown fault %q", fault)
	}
	if err != nil {
		return row, err
	}
	if err := m.exited(); err != nil {
		return row, err
	}
	mfs, err := scrape(soakMetrics())
	if err != nil {
		return row, err
	}
	row.MeshdDropped += meshdDropped(mfs)
	row.Note = strings.TrimSpace(fmt.Sprintf("%s meshd retried %.0f writes.", row.Note, sum(mfs, "meshd_influx_write_retries_total")))
	_, peak, _ := procMem(m.pid())
	row.PeakRSS = max(row.PeakRSS, peak)
	smp.stop()
	row.SpoolPeak, row.SpoolPeakPoints = smp.peak()
	row.Duplicated, row.Overwritten = proxy.duplicated()
	if err := m.stop(); err != nil {
		row.Note = strings.TrimSpace(row.Note + " " + err.Error())
	}
	return row, nil
}

// influxFault runs an InfluxDB fault for dur and waits until every point
// stamped from 5 s before it to 5 s after it is in InfluxDB.
func influxFault(row *SoakRow, fault Fault, m *meshdProc, proxy *influxProxy, sim *simChild, q influxQuerier, dur time.Duration) error {
	start := time.Now()
	if fault == FaultInfluxDown {
		proxy.down()
	} else {
		proxy.slow(2 * time.Second)
	}
	if err := sleepWatching(m, dur); err != nil {
		return err
	}
	if fault == FaultInfluxDown {
		if err := proxy.up(); err != nil {
			return err
		}
	} else {
		proxy.slow(0)
	}
	return countWindow(row, m, proxy, sim, q, start, time.Now(), dur)
}

// countWindow waits until every point the fleet stamped from 5 s before
// start to 5 s after end is in InfluxDB, timing the recovery from end,
// and sets the row's counts.
func countWindow(row *SoakRow, m *meshdProc, proxy *influxProxy, sim *simChild, q influxQuerier, start, end time.Time, dur time.Duration) error {
	acked0 := proxy.acknowledged()
	from := start.Add(-5*time.Second).Unix() + 1 // whole seconds after the steady start began
	til := end.Add(5 * time.Second).Unix()
	deadline := 10*time.Minute + 2*dur
	// Recovery: every point stamped before the fault's last second is in.
	// The whole window, which runs 5 s past the fault, is checked after.
	err := waitFor(deadline, 250*time.Millisecond, func() (bool, error) {
		e, err := sim.count(from, end.Unix())
		if err != nil {
			return false, err
		}
		f, err := q.count(from, end.Unix())
		return err == nil && f >= e, m.exited()
	})
	row.Recovery = time.Since(end)
	row.ReplayRate = float64(proxy.acknowledged()-acked0) / row.Recovery.Seconds()
	if err != nil {
		row.Note = fmt.Sprintf("points stamped before the fault's end not all in within %v: %v; ", deadline, err)
	}
	err = waitFor(deadline, time.Second, func() (bool, error) {
		if time.Now().Unix() <= til+1 {
			return false, m.exited()
		}
		var err error
		if row.Expected, err = sim.count(from, til); err != nil {
			return false, err
		}
		if row.Found, err = q.count(from, til); err != nil {
			// influxd is busy taking the replay: ask again.
			return false, m.exited()
		}
		return row.Found >= row.Expected, m.exited()
	})
	row.Lost = row.Expected - row.Found
	if err != nil {
		row.Note += fmt.Sprintf("not all in within %v: %v", deadline, err)
		return nil
	}
	// A late point would have shown as found > expected; read both again
	// once more so a count that was still moving shows.
	time.Sleep(2 * time.Second)
	e, err1 := sim.count(from, til)
	f, err2 := q.count(from, til)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	row.Expected, row.Found, row.Lost = e, f, e-f
	return nil
}

// killFault lets meshd run for dur at the load, kills it with SIGKILL,
// checks that the restarted meshd writes every point its spool held, and
// times its way back to full state. It returns the restarted meshd.
func killFault(row *SoakRow, load SoakLoad, bins binaries, cfgPath, spoolDir string, m *meshdProc, smp *sampler, sim *simChild, q influxQuerier, dur time.Duration) (*meshdProc, error) {
	if err := sleepWatching(m, dur); err != nil {
		return m, err
	}
	_, peak, _ := procMem(m.pid())
	row.PeakRSS = peak
	mfs, _ := scrape(soakMetrics())
	row.MeshdDropped = meshdDropped(mfs)
	smp.pause()
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
	killed := time.Now()
	held, err := spooled(spoolDir, filepath.Join(filepath.Dir(spoolDir), "spool-copy"))
	if err != nil {
		return m, fmt.Errorf("reading the spool after kill -9: %w", err)
	}
	row.Expected = int64(len(held.keys))
	restarted := time.Now()
	m2, err := startMeshdAt(bins.meshd, cfgPath, m.logPath+".2", soakHTTP)
	if err != nil {
		return m, err
	}
	smp.resume()
	// Full state: every target synced again and every neighbor's state
	// rewritten, stamped after the restart.
	neighbors := load.Targets * load.Neighbors
	var series int
	err = waitFor(5*time.Minute, time.Second, func() (bool, error) {
		mfs, err := scrape(soakMetrics())
		if err != nil || int(sum(mfs, "meshd_gnmi_target_state", "state", "synced")) < load.Targets {
			return false, m2.exited()
		}
		series, err = q.seriesSince(restarted)
		return err == nil && series >= neighbors, m2.exited()
	})
	row.Recovery = time.Since(restarted)
	if err != nil {
		row.Note = fmt.Sprintf("full state not within 5 m (%d of %d neighbors): %v; ", series, neighbors, err)
	}
	// Every spooled point in InfluxDB: the replay may still be going.
	var missing int64
	err = waitFor(5*time.Minute, 2*time.Second, func() (bool, error) {
		var err error
		missing, err = q.missing(held)
		return err == nil && missing == 0, m2.exited()
	})
	row.Found = row.Expected - missing
	row.Lost = missing
	if err != nil {
		row.Note += fmt.Sprintf("spooled points not all in within 5 m: %v; ", err)
	}
	row.ReplayRate = float64(held.points) / time.Since(restarted).Seconds()
	// What the fleet sent just before the kill and InfluxDB does not
	// hold: received or on its way, not yet spooled, gone with the
	// process (by design: only the spool survives).
	from, til := killed.Add(-dur).Unix(), killed.Unix()
	sent, err1 := sim.count(from, til)
	in, err2 := q.count(from, til)
	if err := errors.Join(err1, err2); err != nil {
		return m2, err
	}
	row.Note += fmt.Sprintf("%d points were spooled unacknowledged at the kill, all checked by series and time; of the %d notifications the fleet stamped in the %v before it, %d are not in InfluxDB (not yet spooled when killed); meshd was down %v",
		held.points, sent, dur, sent-in, restarted.Sub(killed).Round(time.Millisecond))
	return m2, nil
}

// meshdDropped is what meshd says it dropped: updates and events the
// merge core dropped for a consumer (the InfluxDB sink counts the same
// ones again as meshd_influx_source_lost_total) and points the sink
// dropped (spool full, rejected, spool errors).
func meshdDropped(mfs map[string]*dto.MetricFamily) float64 {
	return sum(mfs, "meshd_merge_dropped_total") + sum(mfs, "meshd_influx_points_dropped_total")
}

// sleepWatching sleeps d, failing as soon as meshd exits.
func sleepWatching(m *meshdProc, d time.Duration) error {
	select {
	case <-m.done:
		return m.exited()
	case <-time.After(d):
		return nil
	}
}

func soakMetrics() string { return fmt.Sprintf("http://127.0.0.1:%d/metrics", soakHTTP) }

func waitSynced(m *meshdProc, targets int, timeout time.Duration) error {
	synced := 0
	err := waitFor(timeout, time.Second, func() (bool, error) {
		mfs, err := scrape(soakMetrics())
		if err != nil {
			return false, m.exited()
		}
		synced = int(sum(mfs, "meshd_gnmi_target_state", "state", "synced"))
		return synced == targets, m.exited()
	})
	if err != nil {
		return fmt.Errorf("gNMI sync: %d of %d targets: %w (meshd log: %s)", synced, targets, err, m.logPath)
	}
	return nil
}

// soakConfig is meshd's config for the soak: the production one of the
// benchmark, with the periodic snapshot off (it would add points the
// fleet did not send) and a spool bound that holds the longest outage.
func soakConfig(targetsFile, influxURL, spoolDir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "log:\n  level: warn\nhttp:\n  listen: \"127.0.0.1:%d\"\n", soakHTTP)
	fmt.Fprintf(&b, "targets-file: %q\n", targetsFile)
	fmt.Fprintf(&b, "bmp:\n  listen: [\"127.0.0.1:%d\"]\n", soakBMP)
	fmt.Fprintf(&b, "influxdb:\n  url: %q\n  database: meshd\n  create-database: true\n  spool-dir: %q\n  spool-max-bytes: %d\n  snapshot-interval: -1s\n",
		influxURL, spoolDir, int64(soakSpoolBound))
	fmt.Fprintf(&b, "gnmi-server:\n  listen: \"127.0.0.1:%d\"\n", soakGNMI)
	return b.String()
}

// sampler reads meshd's spool gauges every second and keeps their peaks.
type sampler struct {
	mu            sync.Mutex
	bytes, points int64
	paused        bool
	stopOnce      sync.Once
	quit, done    chan struct{}
}

func startSampler() *sampler {
	s := &sampler{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-s.quit:
				return
			case <-t.C:
			}
			s.mu.Lock()
			paused := s.paused
			s.mu.Unlock()
			if paused {
				continue
			}
			mfs, err := scrape(soakMetrics())
			if err != nil {
				continue
			}
			b, p := int64(sum(mfs, "meshd_influx_spool_bytes")), int64(sum(mfs, "meshd_influx_queue_points"))
			s.mu.Lock()
			s.bytes, s.points = max(s.bytes, b), max(s.points, p)
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *sampler) pause()  { s.mu.Lock(); s.paused = true; s.mu.Unlock() }
func (s *sampler) resume() { s.mu.Lock(); s.paused = false; s.mu.Unlock() }
func (s *sampler) stop()   { s.stopOnce.Do(func() { close(s.quit); <-s.done }) }
func (s *sampler) peak() (bytes, points int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes, s.points
}

// influxQuerier asks influxd (directly, not through the proxy).
type influxQuerier struct{ url string }

type influxAnswer struct {
	Results []struct {
		Error  string `json:"error"`
		Series []struct {
			Name    string            `json:"name"`
			Tags    map[string]string `json:"tags"`
			Columns []string          `json:"columns"`
			Values  [][]any           `json:"values"`
		} `json:"series"`
	} `json:"results"`
	Error string `json:"error"`
}

// query runs q and calls each for every answer chunk.
func (q influxQuerier) query(stmt string, each func(*influxAnswer) error) error {
	v := url.Values{"db": {"meshd"}, "q": {stmt}, "epoch": {"ns"}, "chunked": {"true"}, "chunk_size": {"20000"}}
	resp, err := http.Get(q.url + "/query?" + v.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("influxd %q: HTTP %d: %s", stmt, resp.StatusCode, b)
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	for {
		var a influxAnswer
		if err := dec.Decode(&a); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if a.Error != "" {
			return fmt.Errorf("influxd %q: %s", stmt, a.Error)
		}
		for _, r := range a.Results {
			if r.Error != "" {
				return fmt.Errorf("influxd %q: %s", stmt, r.Error)
			}
		}
		if err := each(&a); err != nil {
			return err
		}
	}
}

// count is the distinct updates_rx values of each neighbor's bgp_neighbor
// points stamped in [from, til) seconds, summed over the neighbors (by
// router, instance and neighbor: a point whose other tags differ, such
// as peer_as, must not count its value twice). Each
// notification's value is new for its neighbor, so this counts the
// notifications InfluxDB holds; a point that repeats a value (the state
// the sink rewrites from the merge core after it missed batches) adds
// nothing, so it cannot hide a lost one.
func (q influxQuerier) count(from, til int64) (int64, error) {
	return q.countWhere(fmt.Sprintf(`SELECT COUNT(DISTINCT("updates_rx")) FROM "bgp_neighbor" WHERE time >= %ds AND time < %ds GROUP BY "router", "network_instance", "neighbor"`, from, til))
}

// seriesSince is the number of bgp_neighbor series (neighbors) with an
// updates_rx point stamped at or after t.
func (q influxQuerier) seriesSince(t time.Time) (int, error) {
	n := 0
	err := q.query(fmt.Sprintf(`SELECT COUNT("updates_rx") FROM "bgp_neighbor" WHERE time >= %d GROUP BY *`, t.UnixNano()), func(a *influxAnswer) error {
		for _, r := range a.Results {
			n += len(r.Series)
		}
		return nil
	})
	return n, err
}

// spooledPoints are the points of a spool's unacknowledged records, by
// measurement: series key (tags sorted) and timestamp.
type spooledPoints struct {
	keys   map[string]struct{} // measurement "\x00" sorted tags "\x00" ts
	meas   map[string][2]int64 // measurement → [min, max] timestamp
	points int64
}

// spooled copies a killed meshd's spool directory and reads the copy's
// unacknowledged records (Open truncates a torn tail, which the original
// must keep for meshd's own recovery).
func spooled(dir, cp string) (*spooledPoints, error) {
	if err := copyDir(dir, cp); err != nil {
		return nil, err
	}
	s, err := spool.Open(spool.Options{Dir: cp, MaxBytes: soakSpoolBound})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	out := &spooledPoints{keys: map[string]struct{}{}, meas: map[string][2]int64{}}
	var buf []byte
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		b, err := s.Read(ctx, buf, 1<<20, 64<<20, 0)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, spool.ErrClosed) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(b.Data), "\n") {
			if line == "" || line[0] == '#' {
				continue
			}
			meas, tags, ts, err := parseLine(line)
			if err != nil {
				return nil, fmt.Errorf("spooled line %q: %w", line, err)
			}
			out.keys[pointID(meas, tags, ts)] = struct{}{}
			r, ok := out.meas[meas]
			if !ok {
				r = [2]int64{ts, ts}
			}
			out.meas[meas] = [2]int64{min(r[0], ts), max(r[1], ts)}
			out.points++
		}
		buf = b.Data
	}
}

// missing is how many of the spooled points InfluxDB does not hold.
func (q influxQuerier) missing(sp *spooledPoints) (int64, error) {
	found := map[string]struct{}{}
	for meas, r := range sp.meas {
		stmt := fmt.Sprintf(`SELECT * FROM %q WHERE time >= %d AND time <= %d GROUP BY *`, meas, r[0], r[1])
		err := q.query(stmt, func(a *influxAnswer) error {
			for _, res := range a.Results {
				for _, s := range res.Series {
					for _, v := range s.Values {
						ts, err := v[0].(json.Number).Int64()
						if err != nil {
							return err
						}
						id := pointID(s.Name, s.Tags, ts)
						if _, ok := sp.keys[id]; ok {
							found[id] = struct{}{}
						}
					}
				}
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return int64(len(sp.keys) - len(found)), nil
}

// pointID names a point: measurement, tags sorted by key, timestamp.
// Empty tag values are left out (InfluxDB does not store them, and
// GROUP BY * answers them as "").
func pointID(meas string, tags map[string]string, ts int64) string {
	keys := make([]string, 0, len(tags))
	for k, v := range tags {
		if v != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(meas)
	for _, k := range keys {
		b.WriteString("\x00" + k + "=" + tags[k])
	}
	fmt.Fprintf(&b, "\x00%d", ts)
	return b.String()
}

// parseLine splits a line-protocol line into measurement, tags and
// timestamp, undoing the escapes (\, \= and \space).
func parseLine(line string) (meas string, tags map[string]string, ts int64, err error) {
	series := string(seriesOf([]byte(line)))
	sp := strings.LastIndexByte(line, ' ')
	if sp <= len(series) {
		return "", nil, 0, errors.New("no timestamp")
	}
	if _, err := fmt.Sscan(line[sp+1:], &ts); err != nil {
		return "", nil, 0, err
	}
	parts := splitUnescaped(series, ',')
	tags = map[string]string{}
	for _, p := range parts[1:] {
		kv := splitUnescaped(p, '=')
		if len(kv) != 2 {
			return "", nil, 0, fmt.Errorf("tag %q", p)
		}
		tags[unescape(kv[0])] = unescape(kv[1])
	}
	return unescape(parts[0]), tags, ts, nil
}

func splitUnescaped(s string, sep byte) []string {
	var out []string
	last := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			out = append(out, s[last:i])
			last = i + 1
		}
	}
	return append(out, s[last:])
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func copyDir(from, to string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// SoakTable is the rows as the README shows them.
func SoakTable(rows []*SoakRow) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "fault\tload\tduration\texpected\tfound\tlost\tduplicated (overwritten)\tpeak RSS\tspool peak (bound)\trecovery\treplay rate\tmeshd dropped")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%v\t%d\t%d\t%d\t%d (%d)\t%.0f MiB\t%.1f MiB, %d points (%.0f GiB)\t%v\t%.0f points/s\t%.0f\n",
			r.Fault, r.Load, r.Duration.Round(100*time.Millisecond), r.Expected, r.Found, r.Lost, r.Duplicated, r.Overwritten, float64(r.PeakRSS)/(1<<20),
			float64(r.SpoolPeak)/(1<<20), r.SpoolPeakPoints, float64(r.SpoolBound)/(1<<30), r.Recovery.Round(100*time.Millisecond), math.Round(r.ReplayRate), r.MeshdDropped)
	}
	w.Flush()
	for _, r := range rows {
		if r.Note != "" {
			fmt.Fprintf(&b, "  %s: %s\n", r.Fault, r.Note)
		}
		if r.Failed != "" {
			fmt.Fprintf(&b, "  %s: FAILED: %s\n", r.Fault, r.Failed)
		}
	}
	return b.String()
}
