//go:build integration

// Package influxbench measures the InfluxDB sink end to end against a
// local influxd 1.8.10: points/s, and the CPU of the sink process and of
// influxd, separately. Run with bench/influx/run.sh.
package influxbench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/sinks/influx"
)

type chanSub struct{ ch chan change.Batch }

func (c chanSub) C() <-chan change.Batch { return c.ch }
func (c chanSub) Dropped() uint64        { return 0 }
func (c chanSub) Seq() uint64            { return 0 }
func (c chanSub) LostSeq() uint64        { return 0 }
func (c chanSub) Deliver(uint64, func(change.Batch)) bool {
	return false // the sink reads C
}

// cpuTicks returns utime+stime of a process in clock ticks (100/s).
func cpuTicks(b *testing.B, pid string) float64 {
	raw, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		b.Fatalf("cpu of %s: %v", pid, err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return u + s
}

// runqWait returns how long the threads of a process waited for a CPU
// (schedstat run delay, seconds): on a shared 2-core machine this shows
// how much of the wall time is other processes' load, not ours.
func runqWait(pid string) float64 {
	tasks, _ := filepath.Glob("/proc/" + pid + "/task/*/schedstat")
	var ns float64
	for _, t := range tasks {
		raw, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		if f := strings.Fields(string(raw)); len(f) >= 2 {
			v, _ := strconv.ParseFloat(f[1], 64)
			ns += v
		}
	}
	return ns / 1e9
}

// influxdPid finds the influxd serving from dir.
func influxdPid(b *testing.B, dir string) string {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmd), "influxd") && strings.Contains(string(cmd), dir) {
			return e.Name()
		}
	}
	b.Fatalf("influxd process for %s not found", dir)
	return ""
}

// routes builds one batch of per route events, as a BMP Route Monitoring
// message turns into.
func routes(batch, per int, at time.Time) change.Batch {
	evs := make([]change.Event, per)
	for i := range evs {
		k := batch*per + i
		evs[i] = change.Event{Time: at, Router: "r" + strconv.Itoa(k%4), NetworkInstance: "default",
			Neighbor: "192.0.2." + strconv.Itoa(k%16), Kind: change.EventRoute, Source: change.SourceBMP,
			Route: &change.Route{Action: change.Announce, AfiSafi: "IPV4_UNICAST", RIB: "ADJ_RIB_IN_POST",
				Prefix: fmt.Sprintf("%d.%d.%d.0/24", 1+k>>16&0xff, k>>8&0xff, k&0xff), OriginAS: uint32(64512 + k%1000),
				ASPath: "65001 3356 " + strconv.Itoa(64512+k%1000), NextHop: "192.0.2." + strconv.Itoa(k%16)}}
	}
	return change.Batch{Events: evs}
}

// ringLen batches are built before the clock starts and reused with new
// timestamps, so the sink's CPU figure holds no event generation. It is
// more than twice the subscription queue, so a batch is rewritten only
// after the sink has finished with it (the channel orders that).
const ringLen = 160

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// tuneInfluxd restarts influxd with another [data] wal-fsync-delay
// (testenv's is "0s": an fsync per write request; "" keeps it) and, when
// gogc is set, with that GOGC in its environment.
func tuneInfluxd(b *testing.B, in *testenv.Influxd, delay, gogc string) {
	if delay != "" && delay != "0s" {
		conf := filepath.Join(in.Dir, "influxdb.conf")
		raw, err := os.ReadFile(conf)
		if err != nil {
			b.Fatal(err)
		}
		const key = `wal-fsync-delay = "0s"`
		if !strings.Contains(string(raw), key) {
			b.Fatalf("%s has no %s line to change", conf, key)
		}
		if err := os.WriteFile(conf, []byte(strings.Replace(string(raw), key, fmt.Sprintf("wal-fsync-delay = %q", delay), 1)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	in.Stop()
	if gogc != "" {
		// influxd inherits the environment; this process read its own
		// GOGC at start and is not affected.
		b.Setenv("GOGC", gogc)
	}
	in.Start()
}

// BenchmarkRouteTable writes a full table of route events through the
// sink into influxd and waits until InfluxDB acknowledged every point.
// Knobs (environment): MESHD_BENCH_ROUTES (1000000), MESHD_BENCH_BATCH
// (sink batch-size, 20000), MESHD_BENCH_INFLIGHT (writes-in-flight, the
// sink's default), MESHD_BENCH_GZIP=1, MESHD_BENCH_WAL_FSYNC_DELAY
// (influxd's wal-fsync-delay, "0s" unless set), MESHD_BENCH_INFLUXD_GOGC
// (influxd's GOGC, Go's default 100 unless set).
func BenchmarkRouteTable(b *testing.B) {
	total := envInt("MESHD_BENCH_ROUTES", 1_000_000)
	const per = 100
	total = (total + per - 1) / per * per
	in := testenv.StartInfluxd(b)
	delay, gogc := os.Getenv("MESHD_BENCH_WAL_FSYNC_DELAY"), os.Getenv("MESHD_BENCH_INFLUXD_GOGC")
	if delay != "" && delay != "0s" || gogc != "" {
		tuneInfluxd(b, in, delay, gogc)
	}
	ipid := influxdPid(b, in.Dir)
	self := strconv.Itoa(os.Getpid())
	ring := make([]change.Batch, min(ringLen, total/per))
	for i := range ring {
		ring[i] = routes(i, per, time.Time{})
	}
	for n := 0; n < b.N; n++ {
		db := fmt.Sprintf("bench%d", n)
		cfg := influx.Config{URL: in.URL, Database: db, CreateDatabase: true, SpoolDir: b.TempDir(),
			BatchSize: envInt("MESHD_BENCH_BATCH", 20000), WritesInFlight: envInt("MESHD_BENCH_INFLIGHT", 0),
			FlushInterval: 200 * time.Millisecond, Timeout: 30 * time.Second, SnapshotInterval: -1,
			Gzip: os.Getenv("MESHD_BENCH_GZIP") == "1"}
		s, err := influx.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		sub := chanSub{make(chan change.Batch, 64)}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start := time.Now()
		c0, i0 := cpuTicks(b, self), cpuTicks(b, ipid)
		w0 := runqWait(self) + runqWait(ipid)
		go func() { done <- s.Run(ctx, sub) }()
		at := time.Now().Add(-time.Hour)
		for i := 0; i < total/per; i++ {
			bt := ring[i%len(ring)]
			ts := at.Add(time.Duration(i) * time.Millisecond)
			for j := range bt.Events {
				bt.Events[j].Time = ts
			}
			sub.ch <- bt
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Minute)
		if err := s.Close(cctx); err != nil {
			b.Fatal(err)
		}
		ccancel()
		el := time.Since(start)
		c1, i1 := cpuTicks(b, self), cpuTicks(b, ipid)
		// Threads that exited meanwhile drop out of the sum; it is a
		// lower bound.
		b.ReportMetric(max(runqWait(self)+runqWait(ipid)-w0, 0), "runq-wait-s")
		b.ReportMetric(float64(total)/el.Seconds(), "points/s")
		b.ReportMetric(el.Seconds(), "s/table")
		b.ReportMetric((c1-c0)/100, "sink-cpu-s")
		b.ReportMetric((i1-i0)/100, "influxd-cpu-s")
		b.StopTimer()
		body, err := in.Query(db, `SELECT COUNT("prefix") FROM "bmp_route"`)
		if err != nil {
			b.Fatal(err)
		}
		var r struct {
			Results []struct {
				Series []struct {
					Values [][]float64 `json:"values"`
				} `json:"series"`
			} `json:"results"`
		}
		_ = json.Unmarshal(body, &r)
		if len(r.Results) == 0 || len(r.Results[0].Series) == 0 || int(r.Results[0].Series[0].Values[0][1]) != total {
			b.Fatalf("InfluxDB holds %s, want %d points", body, total)
		}
		b.StartTimer()
	}
}

// BenchmarkSinkOnly runs the same table through the sink into an HTTP
// endpoint that reads and discards each request: the sink's own ceiling
// (mapping, encoding, spool, HTTP), with no InfluxDB cost in it.
func BenchmarkSinkOnly(b *testing.B) {
	total := envInt("MESHD_BENCH_ROUTES", 1_000_000)
	const per = 100
	total = (total + per - 1) / per * per
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got.Add(n)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	ring := make([]change.Batch, min(ringLen, total/per))
	for i := range ring {
		ring[i] = routes(i, per, time.Time{})
	}
	for n := 0; n < b.N; n++ {
		spool := b.TempDir()
		cfg := influx.Config{URL: srv.URL, Database: "bench", SpoolDir: spool,
			BatchSize: envInt("MESHD_BENCH_BATCH", 20000), WritesInFlight: envInt("MESHD_BENCH_INFLIGHT", 0),
			FlushInterval: 200 * time.Millisecond, Timeout: 30 * time.Second, SnapshotInterval: -1,
			Gzip: os.Getenv("MESHD_BENCH_GZIP") == "1"}
		s, err := influx.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		sub := chanSub{make(chan change.Batch, 64)}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		var r0, r1 syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
		start := time.Now()
		go func() { done <- s.Run(ctx, sub) }()
		at := time.Now().Add(-time.Hour)
		for i := 0; i < total/per; i++ {
			bt := ring[i%len(ring)]
			ts := at.Add(time.Duration(i) * time.Millisecond)
			for j := range bt.Events {
				bt.Events[j].Time = ts
			}
			sub.ch <- bt
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Minute)
		if err := s.Close(cctx); err != nil {
			b.Fatal(err)
		}
		ccancel()
		el := time.Since(start)
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
		cpu := time.Duration(r1.Utime.Nano()-r0.Utime.Nano()+r1.Stime.Nano()-r0.Stime.Nano()) * time.Nanosecond
		b.ReportMetric(float64(total)/el.Seconds(), "points/s")
		b.ReportMetric(cpu.Seconds(), "sink-cpu-s")
		b.ReportMetric(float64(total)/cpu.Seconds(), "points/cpu-s")
		b.ReportMetric(float64(got.Swap(0))/float64(total), "bytes/point")
	}
}
