// Command bmpreplay measures meshd's BMP path: it generates a realistic
// full table as a BMP stream, replays it over loopback TCP into the BMP
// bridge and merge core, and reports messages/s, CPU seconds, peak RSS
// and bytes per route.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
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
	routes := flag.Int("routes", 1_000_000, "routes in the table (IPv4 and IPv6)")
	v6 := flag.Float64("v6", 0.2, "share of IPv6 routes")
	perMsg := flag.Int("per-msg", 1, "prefixes per Route Monitoring message (FRR sends 1)")
	in := flag.String("in", "", "replay this BMP stream file instead of generating one")
	out := flag.String("out", "", "write the generated stream here and exit")
	events := flag.Bool("route-events", true, "emit a route event per route")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the replay")
	memProfile := flag.String("memprofile", "", "write a heap profile after the replay")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	flag.Parse()

	path := *in
	if path == "" {
		dir, err := os.MkdirTemp("", "bmpreplay")
		check(err)
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "table.bmp")
		if *out != "" {
			path = *out
		}
		t := time.Now()
		n, err := generate(path, *routes, *v6, *perMsg)
		check(err)
		fmt.Printf("generated %d messages (%d routes) in %v: %s\n", n, *routes, time.Since(t).Round(time.Millisecond), path)
		if *out != "" {
			return
		}
	}
	check(replay(path, *routes, *events, *cpuProfile, *memProfile, *timeout))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bmpreplay:", err)
		os.Exit(1)
	}
}

// generate writes an Initiation, a Peer Up and the table: prefixes spread
// over realistic lengths, AS paths of 1-8 hops from a few thousand origins
// (4-byte ones among them), communities on a third, large communities on
// a tenth, a few thousand distinct attribute sets as on real tables.
func generate(path string, routes int, v6share float64, perMsg int) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	peerAddr := netip.MustParseAddr("192.0.2.2")
	peer := &bmpgen.Peer{Addr: peerAddr, AS: 42009012, BGPID: netip.MustParseAddr("10.255.0.2"), Time: time.Unix(1_700_000_000, 0)}
	fams := []uint32{1<<16 | 1, 2<<16 | 1}
	b := bmpgen.AppendInitiation(nil, "bench-router", "bmpreplay")
	b = bmpgen.AppendPeerUp(b, peer, netip.MustParseAddr("192.0.2.1"), 179, 40000,
		bmpgen.Open{AS: 65001, HoldTime: 90, ID: netip.MustParseAddr("10.255.0.1"), Families: fams, FourOctet: true},
		bmpgen.Open{AS: 42009012, HoldTime: 90, ID: peer.BGPID, Families: fams, FourOctet: true}, "")
	if _, err := w.Write(b); err != nil {
		return 0, err
	}
	// Attribute sets: a pool, picked with a skew, as real tables share
	// attributes between many prefixes of one origin.
	const nSets = 20000
	sets := make([]bmpgen.Route, nSets)
	for i := range sets {
		hops := 1 + rng.IntN(8)
		path := []uint32{42009012}
		for h := 1; h < hops; h++ {
			if rng.IntN(5) == 0 {
				path = append(path, 4200000000+uint32(rng.IntN(100000)))
			} else {
				path = append(path, 1+uint32(rng.IntN(64000)))
			}
		}
		r := bmpgen.Route{ASPath: path}
		if rng.IntN(3) == 0 {
			for c := 0; c < 1+rng.IntN(4); c++ {
				r.Communities = append(r.Communities, uint32(rng.IntN(65535))<<16|uint32(rng.IntN(1000)))
			}
		}
		if rng.IntN(10) == 0 {
			r.Large = [][3]uint32{{42009012, uint32(rng.IntN(100)), uint32(rng.IntN(100))}}
		}
		if rng.IntN(4) == 0 {
			m := uint32(rng.IntN(1000))
			r.MED = &m
		}
		sets[i] = r
	}
	nh4, nh6 := peerAddr, netip.MustParseAddr("2001:db8::2")
	seen := map[netip.Prefix]bool{}
	msgs := 0
	nV6 := int(float64(routes) * v6share)
	var pending []netip.Prefix
	flush := func(set int, isV6 bool) error {
		r := sets[set]
		r.Prefixes = pending
		r.NextHop = nh4
		if isV6 {
			r.NextHop = nh6
		}
		b = bmpgen.AppendRouteMonitoring(b[:0], peer, &r)
		msgs++
		pending = pending[:0]
		_, err := w.Write(b)
		return err
	}
	for i := 0; i < routes; i++ {
		isV6 := i >= routes-nV6
		var p netip.Prefix
		for {
			if isV6 {
				bits := []int{32, 36, 40, 44, 48, 48, 48, 48}[rng.IntN(8)]
				var a [16]byte
				a[0], a[1] = 0x20, 0x01+byte(rng.IntN(3))
				for k := 2; k < 8; k++ {
					a[k] = byte(rng.IntN(256))
				}
				p, _ = netip.AddrFrom16(a).Prefix(bits)
			} else {
				bits := []int{16, 19, 20, 21, 22, 22, 23, 24, 24, 24, 24, 24}[rng.IntN(12)]
				a := [4]byte{byte(1 + rng.IntN(222)), byte(rng.IntN(256)), byte(rng.IntN(256)), 0}
				p, _ = netip.AddrFrom4(a).Prefix(bits)
			}
			if !seen[p] {
				seen[p] = true
				break
			}
		}
		pending = append(pending, p)
		if len(pending) >= perMsg || i == routes-1 || (i == routes-nV6-1) {
			// A skewed pick: low set numbers are popular.
			set := int(float64(nSets) * rng.Float64() * rng.Float64())
			if err := flush(set, isV6); err != nil {
				return 0, err
			}
		}
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	return msgs, nil
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

func replay(path string, routes int, events bool, cpuProfile, memProfile string, timeout time.Duration) error {
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

	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, _ := f.Stat()
	base := heapInUse()
	if cpuProfile != "" {
		pf, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		check(pprof.StartCPUProfile(pf))
		defer pprof.StopCPUProfile()
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	load0 := loadAvg()
	c0, t0 := cpu(), time.Now()
	go func() { _, _ = io.Copy(c, f) }()
	deadline := time.Now().Add(timeout)
	for br.RouteCount("bench-router", "default", "192.0.2.2", "ADJ_RIB_IN_PRE") < routes {
		if time.Now().After(deadline) {
			return fmt.Errorf("timeout: %d of %d routes after %v", br.RouteCount("bench-router", "default", "192.0.2.2", ""), routes, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
	el, c1 := time.Since(t0), cpu()
	if cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	msgs := countMessages(path)
	time.Sleep(300 * time.Millisecond) // let the last event batch reach the consumer
	held := heapInUse()
	if memProfile != "" {
		pf, err := os.Create(memProfile)
		if err == nil {
			_ = pprof.WriteHeapProfile(pf)
			pf.Close()
		}
	}
	cpuSec := (c1.user + c1.sys - c0.user - c0.sys).Seconds()
	fmt.Printf("stream: %d bytes, %d messages, %d routes\n", st.Size(), msgs, routes)
	fmt.Printf("elapsed: %.2f s, route-monitoring msgs/s: %.0f, routes/s: %.0f\n", el.Seconds(), float64(msgs)/el.Seconds(), float64(routes)/el.Seconds())
	fmt.Printf("cpu: %.2f s (user %.2f, sys %.2f), GOMAXPROCS %d\n", cpuSec, (c1.user - c0.user).Seconds(), (c1.sys - c0.sys).Seconds(), runtime.GOMAXPROCS(0))
	fmt.Printf("events delivered: %d, lost by the consumer queue: %d\n", nEvents.Load(), lost.Load())
	fmt.Printf("heap held after replay: %d MB, bytes/route: %.0f\n", (held-base)>>20, float64(held-base)/float64(routes))
	fmt.Printf("peak RSS: %d MB\n", peakRSS()>>20)
	// Other work on the machine takes CPU from the replay: msgs/s means
	// little without it; cpu seconds are the steadier figure.
	fmt.Printf("load average (1 5 15 min) before: %s, after: %s, CPUs: %d\n", load0, loadAvg(), runtime.NumCPU())
	c.Close()
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
