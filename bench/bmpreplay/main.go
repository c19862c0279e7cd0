// Command bmpreplay measures meshd's BMP path: it generates realistic
// full tables as BMP streams (bmpgen.WriteTable: -new-attr-share 1.0 is
// the worst case, every route its own attribute set; 0.35 what real full
// tables show), replays them over loopback TCP into the BMP bridge and
// merge core, one connection per router, and reports messages/s, CPU
// seconds per 1M messages, peak RSS and heap bytes per held route.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/bmpbridge"
	"github.com/meshd/meshd/bmpbridge/bmpgen"
	"github.com/meshd/meshd/merge"
)

func main() {
	routes := flag.Int("routes", 1_000_000, "routes in each router's table (all peers, IPv4 and IPv6)")
	peers := flag.Int("peers", 4, "monitored peers per router; each sends routes/peers routes")
	routers := flag.Int("routers", 1, "BMP routers, each on its own connection with its own table")
	v6 := flag.Float64("v6", 0.2, "share of IPv6 routes")
	newAttr := flag.Float64("new-attr-share", 0.35, "share of routes whose attribute set is new (1.0: worst case, each route its own)")
	seed := flag.Uint64("seed", 1, "generator seed")
	in := flag.String("in", "", "replay this BMP stream file instead of generating one (one router)")
	out := flag.String("out", "", "write the generated stream of router 1 here and exit")
	events := flag.Bool("route-events", true, "emit a route event per route")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the replay")
	memProfile := flag.String("memprofile", "", "write a heap profile after the replay")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	flag.Parse()

	var streams []stream
	if *in != "" {
		streams = append(streams, stream{path: *in, routes: *routes, peers: *peers, sysName: "bench-router"})
	} else {
		dir, err := os.MkdirTemp("", "bmpreplay")
		check(err)
		defer os.RemoveAll(dir)
		for i := 0; i < *routers; i++ {
			st := stream{path: filepath.Join(dir, fmt.Sprintf("table%d.bmp", i)), sysName: fmt.Sprintf("bench-router-%d", i+1), peers: *peers}
			if i == 0 {
				st.sysName = "bench-router"
				if *out != "" {
					st.path = *out
				}
			}
			t := time.Now()
			f, err := os.Create(st.path)
			check(err)
			c := bmpgen.TableConfig{SysName: st.sysName, Peers: *peers, Routes: *routes, V6Share: *v6, NewAttrShare: *newAttr, Seed: *seed + uint64(i)}
			n, r, err := bmpgen.WriteTable(f, c)
			check(err)
			check(f.Close())
			st.routes = r
			fmt.Printf("generated %d messages (%d routes, %d peers, new-attr-share %.2f) in %v: %s\n", n, r, *peers, *newAttr, time.Since(t).Round(time.Millisecond), st.path)
			if *out != "" {
				return
			}
			streams = append(streams, st)
		}
	}
	check(replay(streams, *events, *cpuProfile, *memProfile, *timeout))
}

// stream is one router's generated table.
type stream struct {
	path, sysName string
	routes, peers int
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bmpreplay:", err)
		os.Exit(1)
	}
}

type rusage struct{ user, sys time.Duration }

func cpu() rusage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return rusage{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}
}

// peakRSS returns VmHWM from /proc/self/status, in bytes.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// held returns the routes the bridge holds for a stream's peers.
func held(br *bmpbridge.Bridge, st stream) int {
	n := 0
	for i := 0; i < st.peers; i++ {
		p := bmpgen.TablePeer(i)
		n += br.RouteCount(st.sysName, "default", p.Addr.String(), "ADJ_RIB_IN_PRE")
	}
	return n
}

func replay(streams []stream, events bool, cpuProfile, memProfile string, timeout time.Duration) error {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	core, err := merge.New(merge.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		return err
	}
	// A consumer that keeps up, as the sinks do.
	sub := core.Subscribe("bench", 1024)
	var nEvents, lost atomic.Int64
	go func() {
		for b := range sub.C() {
			nEvents.Add(int64(len(b.Events)))
			lost.Add(int64(b.Lost))
		}
	}()
	cfg := bmpbridge.Config{RouteEvents: &events}
	br, err := bmpbridge.New(core, bmpbridge.WithConfig(cfg), bmpbridge.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = br.Serve(ctx, ln) }()

	var size int64
	routes, msgs := 0, 0
	files := make([]*os.File, len(streams))
	for i, s := range streams {
		f, err := os.Open(s.path)
		if err != nil {
			return err
		}
		defer f.Close()
		st, _ := f.Stat()
		size += st.Size()
		routes += s.routes
		msgs += countMessages(s.path)
		files[i] = f
	}
	base := heapInUse()
	if cpuProfile != "" {
		pf, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		check(pprof.StartCPUProfile(pf))
		defer pprof.StopCPUProfile()
	}
	conns := make([]net.Conn, len(streams))
	for i := range streams {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		conns[i] = c
	}
	load0 := loadAvg()
	c0, t0 := cpu(), time.Now()
	for i, c := range conns {
		go func() { _, _ = io.Copy(c, files[i]) }()
	}
	deadline := time.Now().Add(timeout)
	for {
		n := 0
		for _, s := range streams {
			n += held(br, s)
		}
		if n >= routes {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timeout: %d of %d routes after %v", n, routes, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
	el, c1 := time.Since(t0), cpu()
	if cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	time.Sleep(300 * time.Millisecond) // let the last event batch reach the consumer
	heldHeap := heapInUse()
	if memProfile != "" {
		pf, err := os.Create(memProfile)
		if err == nil {
			_ = pprof.WriteHeapProfile(pf)
			pf.Close()
		}
	}
	cpuSec := (c1.user + c1.sys - c0.user - c0.sys).Seconds()
	fmt.Printf("stream: %d routers, %d bytes, %d route-monitoring messages, %d routes\n", len(streams), size, msgs, routes)
	fmt.Printf("elapsed: %.2f s, route-monitoring msgs/s: %.0f, routes/s: %.0f\n", el.Seconds(), float64(msgs)/el.Seconds(), float64(routes)/el.Seconds())
	fmt.Printf("cpu: %.2f s (user %.2f, sys %.2f), GOMAXPROCS %d; cpu-s per 1M msgs: %.2f, per 1M routes: %.2f\n", cpuSec, (c1.user - c0.user).Seconds(), (c1.sys - c0.sys).Seconds(), runtime.GOMAXPROCS(0),
		cpuSec*1e6/float64(msgs), cpuSec*1e6/float64(routes))
	fmt.Printf("events delivered: %d, lost by the consumer queue: %d\n", nEvents.Load(), lost.Load())
	fmt.Printf("heap held after replay: %d MB, bytes/route: %.0f\n", (heldHeap-base)>>20, float64(heldHeap-base)/float64(routes))
	fmt.Printf("peak RSS: %d MB\n", peakRSS()>>20)
	// Other work on the machine takes CPU from the replay: msgs/s means
	// little without it; cpu seconds are the steadier figure.
	fmt.Printf("load average (1 5 15 min) before: %s, after: %s, CPUs: %d\n", load0, loadAvg(), runtime.NumCPU())
	return nil
}

func countMessages(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	n := 0
	var hdr [6]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return n
		}
		l := int(hdr[1])<<24 | int(hdr[2])<<16 | int(hdr[3])<<8 | int(hdr[4])
		if hdr[5] == bmpgen.RouteMonitoring {
			n++
		}
		if _, err := r.Discard(l - 6); err != nil {
			return n
		}
	}
}
