package gnmisim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/gnmiclient"
	"github.com/meshd/meshd/gnmiclient/translate"
	"github.com/meshd/meshd/merge"
	"github.com/meshd/meshd/stage"
)

// The fleet benchmark runs the simulator in a child process (this test
// binary re-executed), so the CPU and RSS it reports are the collector's
// alone.
func TestMain(m *testing.M) {
	if os.Getenv("GNMISIM_CHILD") != "" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

func child() int {
	atoi := func(k string) int { v, _ := strconv.Atoi(os.Getenv(k)); return v }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gate := make(chan struct{})
	s, err := Start(ctx, Config{Targets: atoi("GNMISIM_TARGETS"), Neighbors: atoi("GNMISIM_NEIGHBORS"), Burst: atoi("GNMISIM_BURST"), BurstGate: gate})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := s.WriteTargetsFile(os.Getenv("GNMISIM_FILE")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	// A line on stdin starts the bursts; serve until the parent closes
	// stdin, and never longer than 30 min.
	done := make(chan struct{})
	go func() {
		in := bufio.NewReader(os.Stdin)
		stop := func() {}
		if _, err := in.ReadString('\n'); err == nil {
			// MESHD_BENCH_SIMPROFILE profiles the simulator from its burst on.
			if f, err := os.Create(os.Getenv("MESHD_BENCH_SIMPROFILE")); err == nil {
				if pprof.StartCPUProfile(f) == nil {
					stop = pprof.StopCPUProfile
				}
			}
			close(gate)
		}
		io.Copy(io.Discard, in)
		stop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Minute):
	}
	return 0
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

// counting is an Applier that only counts: the decode-only figure.
type counting struct{ n atomic.Uint64 }

func (c *counting) Apply(ch []change.Change, _ ...change.Event) merge.Result {
	c.n.Add(uint64(len(ch)))
	return merge.Result{Applied: len(ch)}
}
func (c *counting) ReleaseSource(string, change.Source) {}
func (c *counting) Emit(...change.Event)                {}

// forwarding counts what it hands on to a real merge core. Counting here
// rather than gathering the client's metrics keeps the bench's polling
// (a registry gather every few ms) out of the collector's CPU figure.
type forwarding struct {
	counting
	core *merge.Core
}

func (f *forwarding) Apply(ch []change.Change, ev ...change.Event) merge.Result {
	r := f.core.Apply(ch, ev...)
	f.n.Add(uint64(len(ch)))
	return r
}
func (f *forwarding) ReleaseSource(r string, s change.Source) { f.core.ReleaseSource(r, s) }
func (f *forwarding) Emit(ev ...change.Event)                 { f.core.Emit(ev...) }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the CPU time process pid has used (/proc/pid/stat's utime
// and stime, in USER_HZ ticks), or 0 if it cannot be read.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields after it do not.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	fs := strings.Fields(string(b[i+1:]))
	if len(fs) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(fs[11], 10, 64)
	st, _ := strconv.ParseInt(fs[12], 10, 64)
	return time.Duration(u+st) * time.Second / 100
}

// stolen is the CPU time the hypervisor has given this machine's CPUs to
// others since boot (/proc/stat's steal, in USER_HZ ticks).
func stolen() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fs := strings.Fields(line)
	if len(fs) < 9 || fs[0] != "cpu" {
		return 0
	}
	n, _ := strconv.ParseInt(fs[8], 10, 64)
	return time.Duration(n) * time.Second / 100
}

type gcStats struct{ allocs, cycles, gcCPU, cpu float64 }

// readGC reads the runtime's own counts: bytes allocated, GC cycles, and
// the CPU the GC and the whole process used, as the runtime estimates them.
func readGC() gcStats {
	ss := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/total:cpu-seconds"}}
	metrics.Read(ss)
	v := func(i int) float64 {
		if ss[i].Value.Kind() == metrics.KindUint64 {
			return float64(ss[i].Value.Uint64())
		}
		return ss[i].Value.Float64()
	}
	return gcStats{allocs: v(0), cycles: v(1), gcCPU: v(2), cpu: v(3)}
}

// rssMB returns the process's current and peak RSS in MiB.
func rssMB() (cur, peak float64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fs[1], 64)
		switch fs[0] {
		case "VmRSS:":
			cur = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return cur, peak
}

// BenchmarkFleet: MESHD_BENCH_TARGETS targets (1000) × MESHD_BENCH_NEIGHBORS
// neighbors (100) of 16 leaves each sync, then each target sends
// MESHD_BENCH_BURST leaf updates (1000) as fast as the client takes them.
// decode: translated and counted; merge: applied to a real merge core.
func BenchmarkFleet(b *testing.B) {
	for _, mode := range []string{"decode", "merge"} {
		b.Run(mode, func(b *testing.B) { benchFleet(b, mode) })
	}
}

func benchFleet(b *testing.B, mode string) {
	targets := envInt("MESHD_BENCH_TARGETS", 1000)
	nbrs := envInt("MESHD_BENCH_NEIGHBORS", 100)
	burst := envInt("MESHD_BENCH_BURST", 1000)
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	// MESHD_BENCH_MEMLIMIT (MiB) is meshd's memory-limit setting: the
	// collector's alone, not the simulator child's.
	if mib := envInt("MESHD_BENCH_MEMLIMIT", 0); mib > 0 {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(int64(mib) << 20))
	}
	for i := 0; i < b.N; i++ {
		file := filepath.Join(b.TempDir(), "targets.yaml")
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "GNMISIM_CHILD=1", "GNMISIM_FILE="+file,
			fmt.Sprint("GNMISIM_TARGETS=", targets), fmt.Sprint("GNMISIM_NEIGHBORS=", nbrs), fmt.Sprint("GNMISIM_BURST=", burst))
		stdin, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
			b.Fatalf("simulator did not start: %q %v", line, err)
		}
		func() {
			defer func() { stdin.Close(); cmd.Wait() }()
			runFleet(b, mode, file, targets, nbrs, burst, cmd.Process.Pid, func() { io.WriteString(stdin, "burst\n") })
		}()
	}
}

// runFleet times the fleet's sync, then calls startBurst and times the
// bursts: the two phases do not overlap.
func runFleet(b *testing.B, mode, file string, targets, nbrs, burst, sim int, startBurst func()) {
	var m stage.Applier
	var leaves func() uint64 // leaf updates handed to the merger so far
	reg := prometheus.NewRegistry()
	if mode == "decode" {
		cnt := &counting{}
		m, leaves = cnt, cnt.n.Load
	} else {
		core, err := merge.New()
		if err != nil {
			b.Fatal(err)
		}
		f := &forwarding{core: core}
		m, leaves = f, f.n.Load
	}
	// A fleet syncing at once takes a while; the stall watchdog must not
	// count that as a stall.
	cfg := gnmiclient.Config{TargetsFile: file, Defaults: gnmiclient.Target{SyncTimeout: 30 * time.Minute, Timeout: 2 * time.Minute}, Subscriptions: map[string]*gnmiclient.Subscription{
		"bgp-neighbors": {Paths: []string{"/network-instances/network-instance[name=*]/protocols/protocol[identifier=*][name=*]/bgp/neighbors/neighbor[neighbor-address=*]"},
			StreamMode: "on-change", Encoding: "proto"},
	}}
	c, err := gnmiclient.New(cfg, m, gnmiclient.WithRegisterer(reg))
	if err != nil {
		b.Fatal(err)
	}
	syncLeaves := uint64(targets * nbrs * LeavesPerNeighbor)
	total := syncLeaves + uint64(targets*burst)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cpu0, t0 := cpuTime(), time.Now()
	b.ResetTimer()
	go c.Run(ctx)
	wait := func(n uint64, limit time.Duration) bool {
		deadline := time.Now().Add(limit)
		for leaves() < n {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(5 * time.Millisecond)
		}
		return true
	}
	if !wait(syncLeaves, 15*time.Minute) {
		b.Fatalf("sync: %d of %d leaves", leaves(), syncLeaves)
	}
	// Sessions report their state to the core too, so the count can be
	// reached a little early: a target is done once it says synced (its
	// sync_response comes after its state, on the same stream).
	t1 := time.Now()
	for synced := 0; synced < targets; {
		synced = 0
		for _, s := range c.Status() {
			if s.State == gnmiclient.StateSynced {
				synced++
			}
		}
		if time.Since(t1) > time.Minute {
			b.Fatalf("%d of %d targets synced a minute after the last sync leaf", synced, targets)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// MESHD_BENCH_CPUPROFILE profiles the streamed burst alone, not the sync.
	if f := os.Getenv("MESHD_BENCH_CPUPROFILE"); f != "" {
		stop := startCPUProfile(b, f)
		defer stop()
	}
	// MESHD_BENCH_ALLOCPROFILE: heap profiles before (file.before) and
	// after the burst; pprof -base shows what the burst allocated.
	allocs := os.Getenv("MESHD_BENCH_ALLOCPROFILE")
	if allocs != "" {
		writeHeap(b, allocs+".before")
	}
	gc1, steal1, sim1 := readGC(), stolen(), procCPU(sim)
	cpu1, t1 := cpuTime(), time.Now()
	got1 := leaves()
	startBurst()
	if !wait(total, 15*time.Minute) {
		b.Fatalf("burst: %d of %d leaves", leaves(), total)
	}
	cpu2, t2 := cpuTime(), time.Now()
	gc2, steal2, sim2 := readGC(), stolen(), procCPU(sim)
	b.StopTimer()
	if allocs != "" {
		writeHeap(b, allocs)
	}
	cur, peak := rssMB()
	// MESHD_BENCH_MEMCLASSES prints where the runtime says the memory is
	// (live and free heap, fragmentation, stacks, metadata).
	if os.Getenv("MESHD_BENCH_MEMCLASSES") != "" {
		all := metrics.All()
		var ss []metrics.Sample
		for _, d := range all {
			if strings.HasPrefix(d.Name, "/memory/classes/") {
				ss = append(ss, metrics.Sample{Name: d.Name})
			}
		}
		metrics.Read(ss)
		for _, s := range ss {
			fmt.Fprintf(os.Stderr, "%-60s %8.1f MiB\n", s.Name, float64(s.Value.Uint64())/(1<<20))
		}
	}
	if f := os.Getenv("MESHD_BENCH_HEAPPROFILE"); f != "" {
		writeHeap(b, f) // while the fleet's state is live
	}
	streamed := float64(leaves() - got1)
	b.ReportMetric(float64(got1)/t1.Sub(t0).Seconds(), "sync-updates/s")
	b.ReportMetric(streamed/t2.Sub(t1).Seconds(), "stream-updates/s")
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(got1), "sync-cpu-µs/update")
	b.ReportMetric(float64((cpu2-cpu1).Microseconds())/streamed, "stream-cpu-µs/update")
	// What the stream cost in garbage collection: the bytes it allocated,
	// the cycles they took, and the share of the CPU the collector had.
	b.ReportMetric((gc2.allocs-gc1.allocs)/streamed, "stream-alloc-B/update")
	b.ReportMetric(gc2.cycles-gc1.cycles, "stream-gc-cycles")
	// The hypervisor's steal decides a run's throughput as much as meshd:
	// the cores it took meanwhile, on average.
	b.ReportMetric((steal2-steal1).Seconds()/t2.Sub(t1).Seconds(), "stream-stolen-cores")
	// The simulated fleet runs on the same two cores: what it took of
	// them is what the collector could not have.
	b.ReportMetric((sim2-sim1).Seconds()/t2.Sub(t1).Seconds(), "stream-sim-cores")
	b.ReportMetric((cpu2-cpu1).Seconds()/t2.Sub(t1).Seconds(), "stream-collector-cores")
	b.ReportMetric((gc2.gcCPU-gc1.gcCPU)/(gc2.cpu-gc1.cpu), "stream-gc-cpu-share")
	dec := testutil.ToFloat64(mustCounter(reg, "meshd_gnmi_decode_seconds_total"))
	app := testutil.ToFloat64(mustCounter(reg, "meshd_gnmi_apply_seconds_total"))
	all := float64(leaves())
	b.ReportMetric(dec*1e6/all, "decode-µs/update")
	b.ReportMetric(app*1e6/all, "apply-µs/update")
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "live-heap-MiB")
	b.ReportMetric(cur, "rss-MiB")
	// A daemon lives on after its fleet synced: the runtime hands the
	// sync's garbage back to the system over the next minutes. Wait
	// MESHD_BENCH_SETTLE seconds (20) with the fleet connected and idle,
	// and report the RSS then too.
	if settle := envInt("MESHD_BENCH_SETTLE", 20); settle > 0 {
		time.Sleep(time.Duration(settle) * time.Second)
		settled, _ := rssMB()
		b.ReportMetric(settled, "settled-rss-MiB")
	}
	b.ReportMetric(peak, "peak-rss-MiB")
	st := c.Status()
	synced, failures := 0, uint64(0)
	errs := map[string]int{}
	for _, s := range st {
		if s.LastError != "" {
			errs[s.LastError]++
		}
		if s.State == gnmiclient.StateSynced {
			synced++
		}
		failures += s.Failures
	}
	b.ReportMetric(float64(synced), "synced-targets")
	if synced != targets || failures > 0 {
		b.Errorf("%d of %d targets synced, %d session failures (%v): the figures include re-sent data", synced, targets, failures, errs)
	}
	cancel()
}

func startCPUProfile(b *testing.B, file string) (stop func()) {
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

func writeHeap(b *testing.B, file string) {
	runtime.GC()
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

// mustCounter finds a registered counter's value through the registry.
func mustCounter(reg *prometheus.Registry, name string) prometheus.Collector {
	return counterFrom{reg: reg, name: name}
}

type counterFrom struct {
	reg  *prometheus.Registry
	name string
}

func (c counterFrom) Describe(ch chan<- *prometheus.Desc) {}
func (c counterFrom) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := c.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == c.name {
			v := mf.GetMetric()[0].GetCounter().GetValue()
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(c.name, "", nil, nil), prometheus.CounterValue, v)
		}
	}
}

// BenchmarkTranslate is the decode cost alone, without gRPC: a neighbor's
// full state and a typical change, PROTO and JSON_IETF.
func BenchmarkTranslate(b *testing.B) {
	tr, err := translate.New()
	if err != nil {
		b.Fatal(err)
	}
	n := &neighbor{addr: "10.0.0.1", peerAS: 65001, state: "ESTABLISHED", updRx: 10, pfxRx: 5}
	cases := map[string]*gpb.Notification{
		"full-proto":     n.full(gpb.Encoding_PROTO, 1),
		"full-json_ietf": n.full(gpb.Encoding_JSON_IETF, 1),
	}
	for name, note := range cases {
		b.Run(name, func(b *testing.B) {
			var res translate.Result
			leaves := 0
			for i := 0; i < b.N; i++ {
				res.Reset()
				tr.Notification("r", note, change.SourceGNMI, time.Time{}, &res)
				leaves += len(res.Changes)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(leaves), "ns/update")
			b.ReportMetric(float64(leaves)/b.Elapsed().Seconds(), "updates/s")
		})
	}
}

// TestSimServes is a small real-gRPC check that the simulator syncs, streams
// at its rate and answers ONCE, through gnmiclient into a merge core.
func TestSimServes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Start(ctx, Config{Targets: 3, Neighbors: 5, Rate: 300})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "t.yaml")
	if err := s.WriteTargetsFile(file); err != nil {
		t.Fatal(err)
	}
	core, err := merge.New()
	if err != nil {
		t.Fatal(err)
	}
	c, err := gnmiclient.New(gnmiclient.Config{TargetsFile: file}, core)
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { c.Run(cctx); close(done) }()
	defer func() { ccancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := c.Status()
		ok := len(st) == 3
		for _, x := range st {
			ok = ok && x.State == gnmiclient.StateSynced && x.Leaves > 5*LeavesPerNeighbor
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fleet not synced and streaming: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	v, _, _, ok := core.Leaf("sim-0001", change.NeighborPath("default", "10.1.0.1", "state", "session-state"))
	if !ok || (v.GetStringVal() != "ESTABLISHED" && v.GetStringVal() != "ACTIVE") {
		t.Errorf("sim-0001 10.1.0.1 session-state = %v %v", v, ok)
	}
	var got []string
	err = gnmiclient.Subscribe(ctx, &gnmiclient.Target{Name: "sim-0002", Address: s.Targets()["sim-0002"], Insecure: ptrTrue()},
		&gnmiclient.Subscription{Paths: []string{"/"}, Mode: "once", Encoding: "json_ietf"}, 0, 0,
		func(n *gpb.Notification) error { got = append(got, n.GetPrefix().String()); return nil })
	if err != nil || len(got) != 5 {
		t.Errorf("ONCE: %d notifications, %v", len(got), err)
	}
}

func ptrTrue() *bool { v := true; return &v }

// The simulator's hand-built wire form of a step is what protobuf makes
// of the same notification, flaps (string values) included.
func TestStepEncoding(t *testing.T) {
	tg := &target{sim: &Sim{cfg: Config{Neighbors: 3}}, seed: 9}
	nbrs := tg.neighbors()
	r := rand.New(rand.NewPCG(1, 2))
	// A twin fleet steps the same way in one reused scratch: what the
	// scratch holds from the step before must never show.
	twin, r2 := tg.neighbors(), rand.New(rand.NewPCG(1, 2))
	var enc stepEncoder
	var sc stepScratch
	kinds := map[int]bool{}
	for i := 0; i < 3000; i++ {
		n := nbrs[i%len(nbrs)].step(r, int64(i)*1e6, nil)
		if m := twin[i%len(twin)].step(r2, int64(i)*1e6, &sc); !proto.Equal(m, n) {
			t.Fatalf("step %d in a reused scratch:\n%v\nwant\n%v", i, m, n)
		}
		kinds[len(n.Update)] = true
		var got gpb.SubscribeResponse
		if err := proto.Unmarshal(*enc.encode(n), &got); err != nil {
			t.Fatal(err)
		}
		if want := (&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: n}}); !proto.Equal(&got, want) {
			t.Fatalf("step %d encoded as\n%v\nwant\n%v", i, &got, want)
		}
	}
	if !kinds[3] || !kinds[5] || !kinds[6] {
		t.Errorf("steps of %v updates: want plain steps and both kinds of flap", kinds)
	}
}
