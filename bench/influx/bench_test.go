//go:build integration

// Package influxbench measures the InfluxDB sink end to end against a
// local influxd 1.8.10: points/s, and the CPU of the sink process and of
// influxd, separately. Run with bench/influx/run.sh.
package influxbench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/sinks/influx"
)

type chanSub struct{ ch chan change.Batch }

func (c chanSub) C() <-chan change.Batch { return c.ch }
func (c chanSub) Dropped() uint64        { return 0 }

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

// BenchmarkRouteTable writes a full table of route events (1M by default,
// MESHD_BENCH_ROUTES to change) through the sink into influxd and waits
// until InfluxDB acknowledged every point.
func BenchmarkRouteTable(b *testing.B) {
	total := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("MESHD_BENCH_ROUTES")); err == nil && v > 0 {
		total = v
	}
	const per = 100
	in := testenv.StartInfluxd(b)
	ipid := influxdPid(b, in.Dir)
	self := strconv.Itoa(os.Getpid())
	for n := 0; n < b.N; n++ {
		db := fmt.Sprintf("bench%d", n)
		cfg := influx.Config{URL: in.URL, Database: db, CreateDatabase: true, SpoolDir: b.TempDir(),
			BatchSize: 10000, FlushInterval: 200 * time.Millisecond, Timeout: 30 * time.Second, SnapshotInterval: -1,
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
		go func() { done <- s.Run(ctx, sub) }()
		at := time.Now().Add(-time.Hour)
		for i := 0; i < total/per; i++ {
			sub.ch <- routes(i, per, at.Add(time.Duration(i)*time.Millisecond))
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
