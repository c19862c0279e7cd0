//go:build integration

package influx

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/merge"
)

// TestBurstWaitsForTheSink: many routers' publishers against a queue of
// 1 with the core's wait, while the sink's snapshots walk those routers
// every second. Every route event reaches InfluxDB and the core drops
// nothing: a full queue holds the publishers back, and the sink's walks
// never wait for a router a waiting publisher holds (TryReadRouter).
// With WalkRouter there, a walk and a waiting publisher stall each other
// for the whole wait.
func TestBurstWaitsForTheSink(t *testing.T) {
	in := testenv.StartInfluxd(t)
	in.CreateDB(t, "meshd")
	reg := prometheus.NewRegistry()
	core, err := merge.New(merge.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, in.URL, "meshd")
	cfg.SnapshotInterval = time.Second
	s, err := New(cfg, WithRegisterer(reg), WithLogger(logger(t)), WithSnapshotter(core))
	if err != nil {
		t.Fatal(err)
	}
	sub := core.Subscribe("influx", 1, merge.WithWait(time.Minute))
	stop := runSink(t, s, sub)

	// Publishing goes on until the sink has taken three snapshots (or a
	// bound in count and time), so its walks meet publishers that wait.
	const routers, maxBatches, per = 50, 20000, 4
	base := time.Now().Add(-time.Hour)
	until := time.Now().Add(time.Minute)
	var sent atomic.Int64
	var wg sync.WaitGroup
	for r := range routers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("r%d", r)
			for i := range maxBatches {
				if i%100 == 0 && (metric(t, reg, "meshd_influx_snapshots_total", "") >= 3 || time.Now().After(until)) {
					return
				}
				at := base.Add(time.Duration(i) * time.Millisecond)
				res := core.Apply([]change.Change{{Router: name, Path: change.NeighborPath("default", "192.0.2.1", "state", "peer-as"),
					Value: change.Uint(uint64(64512 + i)), Time: at, Source: change.SourceGNMI}}, routeEvents(name, i*per, per, at)...)
				if res.Err != nil {
					t.Error(res.Err)
					return
				}
				sent.Add(per)
			}
		}()
	}
	published := make(chan struct{})
	go func() { wg.Wait(); close(published) }()
	select {
	case <-published:
	case <-time.After(3 * time.Minute):
		t.Fatal("publishers still held back after 3 minutes: a walk of the sink and a publisher waiting on its queue hold each other up")
	}
	want := int(sent.Load())
	testenv.WaitFor(t, time.Minute, "every route event in InfluxDB", func() bool {
		return count(t, in, "meshd", mBMPRoute, "prefix") >= want
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	sub.Close()
	if got := count(t, in, "meshd", mBMPRoute, "prefix"); got != want {
		t.Errorf("route points in InfluxDB: %d, want %d", got, want)
	}
	if d := sub.Dropped(); d != 0 {
		t.Errorf("the core dropped %d updates and events for the sink", d)
	}
	if w := metric(t, reg, "meshd_merge_queue_waits_total", "room"); w == 0 {
		t.Error("no publisher found the queue full: the test did not test the wait")
	}
	if n := metric(t, reg, "meshd_influx_snapshots_total", ""); n < 2 {
		t.Errorf("%v snapshots: the sink's walks did not run during the burst", n)
	}
}
