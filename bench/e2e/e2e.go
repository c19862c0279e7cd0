package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
	"github.com/meshd/meshd/internal/testenv"
)

// Scenario is one whole-binary run: the load meshd gets and how long the
// steady state is measured.
type Scenario struct {
	Name string
	// The gNMI fleet: Targets routers × Neighbors BGP neighbors, Rate leaf
	// updates per second over the whole fleet, each router sending its
	// share every 100 ms, with session flaps (see bench/gnmisim).
	Targets, Neighbors, Rate int
	// Subscribers on meshd's gNMI target, on `*`, updates_only, in their
	// own process.
	Subscribers int
	// BMP: BMPRouters routers, each replaying BMPRoutes routes from
	// BMPPeers peers, of which a NewAttrShare carry an attribute set never
	// seen before (1.0: every route its own).
	BMPRouters, BMPRoutes, BMPPeers int
	NewAttrShare                    float64
	// Steady is the measured window of the gNMI steady state.
	Steady time.Duration
	// MemoryLimit is meshd's memory-limit setting ("" leaves meshd's
	// default).
	MemoryLimit string
}

// Result is what one run measured.
type Result struct {
	Scenario Scenario

	SyncTime        time.Duration // until every gNMI target was synced (or syncDeadline)
	SyncedTargets   int           // how many were by then
	SyncCPU         time.Duration // meshd's CPU from start until then
	Updates         uint64        // leaf updates the fleet sent in the window
	UpdatesReceived uint64        // leaf updates meshd's collector took in it
	SteadyCPU       time.Duration // meshd's CPU over the window
	CPUPerUpdate    time.Duration // SteadyCPU / Updates
	Dropped         float64       // updates the merge core dropped for a consumer (meshd_merge_dropped_total)
	InfluxLost      float64       // updates the InfluxDB sink lost or dropped
	InfluxRefused   int64         // writes influxd did not acknowledge

	InfluxP50, InfluxP99 time.Duration // source timestamp → acknowledged by influxd
	InfluxSamples        int
	SubP50, SubP99       time.Duration // source timestamp → received by a subscriber
	SubMax               time.Duration
	SubSamples           int64

	BMPMessages    int           // BMP messages sent
	BMPRoutesSent  int           // routes in them
	BMPTime        time.Duration // first byte → the bridge had taken every message
	BMPCPU         time.Duration // meshd's CPU over BMPTime
	BMPRate        float64       // messages per second into the bridge
	BMPInfluxLag   time.Duration // last byte sent → last bmp_route point acknowledged
	BMPRoutePoints int64         // bmp_route points acknowledged
	HeapPerRoute   float64       // live heap growth over the BMP phase / routes held

	PeakRSS, SettledRSS int64         // meshd's VmHWM over the run, VmRSS after the load
	InfluxdCPU          time.Duration // influxd's CPU over the run
	Steal               time.Duration // CPU the hypervisor stole over the run
	MachineBusy         time.Duration // all processes' CPU over the run
	Wall                time.Duration
	StopTime            time.Duration // SIGTERM → meshd exited (sources stopped, sinks drained)
	StopErr             string        // why meshd did not stop cleanly, if it did not
}

// ports are fixed and below 32768 (the kernel hands out ephemeral ports
// above it); one benchmark runs at a time (make bench-e2e holds a lock).
const (
	portHTTP     = 21001
	portBMP      = 21002
	portGNMI     = 21003
	portProxy    = 21004
	portFleetLow = 22000 // one per simulated router
)

// run is one scenario, start to end. meshd, its config and the
// subscribers' program are built by the caller (see build).
func run(tb testing.TB, bins binaries, sc Scenario) (*Result, error) {
	res := &Result{Scenario: sc}
	dir := tb.TempDir()
	t0 := time.Now()
	busy0, steal0 := machineCPU()

	in := testenv.StartInfluxd(tb)
	proxy, err := startProxy(fmt.Sprintf("127.0.0.1:%d", portProxy), in.URL)
	if err != nil {
		return nil, err
	}
	defer proxy.close()

	// The BMP tables are generated before meshd starts: the generator's
	// CPU is not meshd's.
	var tables []string
	for i := range sc.BMPRouters {
		path := filepath.Join(dir, fmt.Sprintf("bmp-%d.bin", i))
		msgs, routes, err := writeTable(path, bmpgen.TableConfig{
			SysName: fmt.Sprintf("bmp-router-%d", i+1), Peers: max(sc.BMPPeers, 1), Routes: sc.BMPRoutes,
			V6Share: 0.15, NewAttrShare: sc.NewAttrShare, Seed: uint64(i + 1)})
		if err != nil {
			return nil, fmt.Errorf("bmp table %d: %w", i, err)
		}
		res.BMPMessages += msgs
		res.BMPRoutesSent += routes
		tables = append(tables, path)
	}

	var sim *simChild
	targetsFile := filepath.Join(dir, "targets.yaml")
	if sc.Targets > 0 {
		if sim, err = startSim(bins.self, simFleet{targets: sc.Targets, neighbors: sc.Neighbors, rate: sc.Rate, basePort: portFleetLow, prefix: "rtr"}, targetsFile); err != nil {
			return nil, err
		}
		defer sim.close()
	}

	cfgPath := filepath.Join(dir, "meshd.yaml")
	if err := os.WriteFile(cfgPath, []byte(meshdConfig(sc, targetsFile, proxy.URL(), dir)), 0o644); err != nil {
		return nil, err
	}
	m, err := startMeshd(bins.meshd, cfgPath, filepath.Join(dir, "meshd.log"))
	if err != nil {
		return nil, err
	}
	defer m.stop()
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", portHTTP)

	// Sync: every target's session synced. A fleet that is not synced
	// within the deadline is measured as it is, and the report says how
	// many targets were: a missed figure with its numbers is worth more
	// than none.
	if sc.Targets > 0 {
		synced := 0
		if err := waitFor(syncDeadline, 2*time.Second, func() (bool, error) {
			mfs, err := scrape(metricsURL)
			if err != nil {
				return false, nil
			}
			synced = int(sum(mfs, "meshd_gnmi_target_state", "state", "synced"))
			return synced == sc.Targets, m.exited()
		}); err != nil {
			if m.exited() != nil {
				return nil, fmt.Errorf("gNMI sync: %w (meshd log: %s)", err, m.logPath)
			}
			res.SyncedTargets = synced
		} else {
			res.SyncedTargets = sc.Targets
		}
		res.SyncTime = time.Since(m.started)
		res.SyncCPU, _ = procCPU(m.pid())
	}

	var subs *subChild
	if sc.Subscribers > 0 {
		if subs, err = startSubs(bins.subs, fmt.Sprintf("127.0.0.1:%d", portGNMI), sc.Subscribers); err != nil {
			return nil, fmt.Errorf("subscribers: %w (meshd log: %s)", err, m.logPath)
		}
		defer subs.close()
	}

	if sc.Targets > 0 && sc.Rate > 0 {
		// Let the fleet's streams and the sinks reach their steady state.
		time.Sleep(5 * time.Second)
		if err := measureSteady(res, sc, m, sim, subs, proxy, metricsURL); err != nil {
			return nil, err
		}
	}

	var bmpConns []net.Conn
	defer func() {
		for _, c := range bmpConns {
			c.Close()
		}
	}()
	if len(tables) > 0 {
		if err := measureBMP(res, m, proxy, tables, metricsURL, &bmpConns); err != nil {
			return nil, err
		}
	}

	// Settled: the load has ended (the fleet still sends at its rate);
	// give the runtime's scavenger time to return freed memory.
	time.Sleep(15 * time.Second)
	res.SettledRSS, res.PeakRSS, _ = procMem(m.pid())
	if err := m.exited(); err != nil {
		return nil, err
	}
	res.InfluxdCPU, _ = procCPU(in.PID())
	res.InfluxRefused = proxy.refused()
	busy1, steal1 := machineCPU()
	res.MachineBusy, res.Steal = busy1-busy0, steal1-steal0
	res.Wall = time.Since(t0)
	stopAt := time.Now()
	if err := m.stop(); err != nil {
		// The figures stand; a slow shutdown is reported with them.
		res.StopErr = err.Error()
	}
	res.StopTime = time.Since(stopAt)
	return res, nil
}

func measureSteady(res *Result, sc Scenario, m *meshdProc, sim *simChild, subs *subChild, proxy *influxProxy, metricsURL string) error {
	before, err := scrape(metricsURL)
	if err != nil {
		return err
	}
	sent0, err := sim.sent()
	if err != nil {
		return err
	}
	cpu0, _ := procCPU(m.pid())
	w0 := time.Now()
	proxy.window(w0, w0.Add(sc.Steady))
	if subs != nil {
		if err := subs.start(); err != nil {
			return err
		}
	}
	prof := startProfile(sc.Name+"-steady", sc.Steady)
	time.Sleep(sc.Steady)
	prof()
	saveHeap(sc.Name + "-steady")
	cpu1, _ := procCPU(m.pid())
	sent1, err := sim.sent()
	if err != nil {
		return err
	}
	end, err := scrape(metricsURL)
	if err != nil {
		return err
	}
	if subs != nil {
		r, err := subs.stop()
		if err != nil {
			return err
		}
		res.SubP50, res.SubP99, res.SubMax, res.SubSamples = r.P50, r.P99, r.Max, r.Notifications
	}
	// Points stamped in the window have until 10 s after it to reach
	// influxd, or they count at their (late) arrival all the same.
	time.Sleep(10 * time.Second)
	after, err := scrape(metricsURL)
	if err != nil {
		return err
	}
	res.Updates = sent1 - sent0
	res.UpdatesReceived = uint64(sum(end, "meshd_gnmi_leaves_total") - sum(before, "meshd_gnmi_leaves_total"))
	res.SteadyCPU = cpu1 - cpu0
	if res.Updates > 0 {
		res.CPUPerUpdate = res.SteadyCPU / time.Duration(res.Updates)
	}
	res.Dropped = sum(after, "meshd_merge_dropped_total")
	res.InfluxLost = sum(after, "meshd_influx_source_lost_total") + sum(after, "meshd_influx_points_dropped_total")
	lat := proxy.latency()
	res.InfluxSamples = len(lat)
	res.InfluxP50, res.InfluxP99 = pct(lat, 50), pct(lat, 99)
	return m.exited()
}

// measureBMP replays the tables; it hands the senders' connections to
// keep, for the caller to close once meshd has stopped.
func measureBMP(res *Result, m *meshdProc, proxy *influxProxy, tables []string, metricsURL string, keep *[]net.Conn) error {
	heap0, err := liveHeap()
	if err != nil {
		return err
	}
	before, err := scrape(metricsURL)
	if err != nil {
		return err
	}
	msgs0 := sum(before, "meshd_bmp_messages_total")
	routes0, _ := proxy.count("bmp_route")
	cpu0, _ := procCPU(m.pid())
	start := time.Now()
	prof := startProfile(res.Scenario.Name+"-bmp", 30*time.Second)
	defer prof()
	var wg sync.WaitGroup
	lastByte := make([]time.Time, len(tables))
	errs := make([]error, len(tables))
	conns := make([]net.Conn, len(tables))
	defer func() {
		for _, c := range conns {
			if c != nil {
				*keep = append(*keep, c)
			}
		}
	}()
	for i, path := range tables {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lastByte[i], conns[i], errs[i] = sendTable(path, fmt.Sprintf("127.0.0.1:%d", portBMP))
		}()
	}
	// The bridge has taken every message when its counter says so; the
	// senders' connections stay open, as a router's would.
	want := msgs0 + float64(res.BMPMessages)
	var got float64
	err = waitFor(20*time.Minute, 250*time.Millisecond, func() (bool, error) {
		mfs, err := scrape(metricsURL)
		if err != nil {
			return false, err
		}
		got = sum(mfs, "meshd_bmp_messages_total")
		return got >= want, m.exited()
	})
	done := time.Now()
	cpu1, _ := procCPU(m.pid())
	wg.Wait()
	if err != nil {
		return fmt.Errorf("BMP: the bridge took %.0f of %d messages: %w", got-msgs0, res.BMPMessages, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	res.BMPTime, res.BMPCPU = done.Sub(start), cpu1-cpu0
	res.BMPRate = float64(res.BMPMessages) / res.BMPTime.Seconds()
	last := lastByte[0]
	for _, t := range lastByte {
		if t.After(last) {
			last = t
		}
	}
	// Every route is one bmp_route point (its announcement).
	var n int64
	var at time.Time
	_ = waitFor(5*time.Minute, 100*time.Millisecond, func() (bool, error) {
		n, at = proxy.count("bmp_route")
		return n-routes0 >= int64(res.BMPRoutesSent), m.exited()
	})
	res.BMPRoutePoints = n - routes0
	if res.BMPRoutePoints >= int64(res.BMPRoutesSent) {
		res.BMPInfluxLag = at.Sub(last)
	}
	heap1, err := liveHeap()
	if err != nil {
		return err
	}
	saveHeap(res.Scenario.Name + "-bmp")
	if res.BMPRoutesSent > 0 {
		res.HeapPerRoute = float64(heap1-heap0) / float64(res.BMPRoutesSent)
	}
	return m.exited()
}

// liveHeap is meshd's live heap after a forced collection (pprof's
// heap?gc=1 runs one), read from the memory statistics at its end.
func liveHeap() (int64, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?gc=1&debug=1", portHTTP))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("meshd's /debug/pprof/heap: HTTP %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New("meshd's heap profile has no HeapAlloc line")
}

// syncDeadline bounds the wait for a fleet's sync.
const syncDeadline = 15 * time.Minute

// profileDir is where MESHD_E2E_PROFILE asks for meshd's profiles.
var profileDir = os.Getenv("MESHD_E2E_PROFILE")

// startProfile takes a CPU profile of meshd over d into profileDir, if
// set. The returned func waits for it.
func startProfile(name string, d time.Duration) (wait func()) {
	if profileDir == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fetch(fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d.Seconds())), filepath.Join(profileDir, name+".cpu.pprof"))
	}()
	return func() { <-done }
}

// saveHeap writes meshd's heap profile into profileDir, if set.
func saveHeap(name string) {
	if profileDir != "" {
		fetch("/debug/pprof/heap?gc=1", filepath.Join(profileDir, name+".heap.pprof"))
	}
}

func fetch(path, file string) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", portHTTP, path))
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: profile %s: %v\n", path, err)
		return
	}
	defer resp.Body.Close()
	if f, err := os.Create(file); err == nil {
		_, _ = io.Copy(f, resp.Body)
		f.Close()
	}
}

// meshdConfig is the production config the bench runs meshd with.
func meshdConfig(sc Scenario, targetsFile, influxURL, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "log:\n  level: warn\nhttp:\n  listen: \"127.0.0.1:%d\"\n", portHTTP)
	if sc.MemoryLimit != "" {
		fmt.Fprintf(&b, "memory-limit: %s\n", sc.MemoryLimit)
	}
	if sc.Targets > 0 {
		fmt.Fprintf(&b, "targets-file: %q\n", targetsFile)
	}
	fmt.Fprintf(&b, "bmp:\n  listen: [\"127.0.0.1:%d\"]\n", portBMP)
	fmt.Fprintf(&b, "influxdb:\n  url: %q\n  database: meshd\n  create-database: true\n  spool-dir: %q\n", influxURL, filepath.Join(dir, "spool"))
	fmt.Fprintf(&b, "gnmi-server:\n  listen: \"127.0.0.1:%d\"\n", portGNMI)
	return b.String()
}

// waitFor polls cond every step until it holds, returns an error, or
// timeout passes.
func waitFor(timeout, step time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", timeout)
		}
		time.Sleep(step)
	}
}

// writeTable writes a BMP router's full table to a file.
func writeTable(path string, c bmpgen.TableConfig) (msgs, routes int, err error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	msgs, routes, err = bmpgen.WriteTable(w, c)
	if err == nil {
		err = w.Flush()
	}
	return msgs, routes, errors.Join(err, f.Close())
}

// sendTable replays a table file to meshd's BMP listener (the kernel's
// sendfile does the copy, so the sender costs the machine little) and
// returns when its last byte was sent, and the connection: the caller
// keeps it open as a router would (closing it would withdraw every route).
func sendTable(path, addr string) (time.Time, net.Conn, error) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, nil, err
	}
	defer f.Close()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return time.Time{}, nil, err
	}
	if _, err := io.Copy(c, f); err != nil {
		c.Close()
		return time.Time{}, nil, err
	}
	return time.Now(), c, nil
}

// meshdProc is the running `meshd run`.
type meshdProc struct {
	cmd     *exec.Cmd
	logPath string
	started time.Time
	done    chan struct{}
	err     error
}

func startMeshd(bin, cfg, logPath string) (*meshdProc, error) {
	return startMeshdAt(bin, cfg, logPath, portHTTP)
}

// startMeshdAt starts meshd with its HTTP listener (whose /healthz says
// it is up) on httpPort.
func startMeshdAt(bin, cfg, logPath string, httpPort int) (*meshdProc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "-c", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	m := &meshdProc{cmd: cmd, logPath: logPath, started: time.Now(), done: make(chan struct{})}
	go func() { m.err = cmd.Wait(); logf.Close(); close(m.done) }()
	if err := waitFor(30*time.Second, 50*time.Millisecond, func() (bool, error) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", httpPort))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil, m.exited()
	}); err != nil {
		m.stop()
		return nil, fmt.Errorf("meshd did not start: %w (log: %s)", err, logPath)
	}
	return m, nil
}

func (m *meshdProc) pid() int { return m.cmd.Process.Pid }

// exited is an error once meshd has exited.
func (m *meshdProc) exited() error {
	select {
	case <-m.done:
		log, _ := os.ReadFile(m.logPath)
		return fmt.Errorf("meshd exited (%v); its log:\n%s", m.err, tail(log, 4096))
	default:
		return nil
	}
}

func (m *meshdProc) stop() error {
	select {
	case <-m.done:
		return nil
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
		return nil
	case <-time.After(60 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
		return errors.New("meshd did not stop within 60 s of SIGTERM")
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
