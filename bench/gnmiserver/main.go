// Command gnmiserver measures the re-serve path end to end: changes
// applied to a merge core travel through the gNMI sink to many gRPC
// subscribers on loopback; it reports source->subscriber latency, CPU and
// memory.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"syscall"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/merge"
	"github.com/meshd/meshd/sinks/gnmiserver"
)

func main() {
	routers := flag.Int("routers", 200, "routers in the fleet")
	neighbors := flag.Int("neighbors", 100, "BGP neighbors per router")
	subs := flag.Int("subscribers", 100, "gNMI subscribers on the whole tree, one connection each")
	rate := flag.Int("rate", 2000, "leaf changes per second")
	tick := flag.Duration("tick", 10*time.Millisecond, "changes are applied in one batch per tick (rate*tick changes each)")
	dur := flag.Duration("duration", 20*time.Second, "measurement time")
	pe := flag.Int("per-event", 3, "leaves one change event moves together (1-4; 1 is the worst case: every leaf change its own notification)")
	sync := flag.Bool("sync", false, "subscribers take the initial sync too (else updates_only)")
	cpuprof := flag.String("cpuprofile", "", "write a CPU profile of the measurement to this file (the clients' to FILE.clients)")
	memprof := flag.String("memprofile", "", "write a heap profile at the end of the measurement to this file")
	traceOut := flag.String("trace", "", "write an execution trace of the measurement's first 2 s to this file (go tool trace -pprof=sched shows where goroutines waited to run)")
	verdict := flag.Bool("verdict", false, "let the merge core compute its verdict leaves too")
	inproc := flag.Bool("inproc", false, "run the subscribers in this process (default: a child process)")
	childMode := flag.Bool("child", false, "internal: be the subscribers' child process")
	addr := flag.String("addr", "", "internal: the server the child subscribes to")
	cw := flag.Int("client-window", 0, "subscribers' HTTP/2 receive window in bytes; 0 keeps grpc-go's default, which estimates the bandwidth-delay product with a PING per burst received")
	flag.Parse()
	clientWindow = int32(*cw)
	useVerdict = *verdict
	if perEvent = *pe; perEvent < 1 || perEvent > len(counters) {
		fmt.Fprintf(os.Stderr, "gnmiserver bench: -per-event must be 1-%d\n", len(counters))
		os.Exit(2)
	}
	cpuProfile = *cpuprof
	traceFile = *traceOut
	memProfile = *memprof
	if *childMode {
		if err := runChild(*addr, *subs, *sync); err != nil {
			fmt.Fprintln(os.Stderr, "gnmiserver bench child:", err)
			os.Exit(1)
		}
		return
	}
	useInProc = *inproc
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := run(*routers, *neighbors, *subs, *rate, *tick, *dur, *sync); err != nil {
		fmt.Fprintln(os.Stderr, "gnmiserver bench:", err)
		os.Exit(1)
	}
}

// counters are the leaves that change; the others are static state. A
// BGP UPDATE received moves the first three together (the message
// counter, and the prefixes received and installed), and a router
// reports them in one notification; -per-event says how many of them
// one event moves.
var counters = []func(addr string) *gpb.Path{
	func(a string) *gpb.Path {
		return change.NeighborPath("default", a, "state", "messages", "received", "UPDATE")
	},
	func(a string) *gpb.Path {
		return change.AfiSafiPath("default", a, "IPV4_UNICAST", "state", "prefixes", "received")
	},
	func(a string) *gpb.Path {
		return change.AfiSafiPath("default", a, "IPV4_UNICAST", "state", "prefixes", "installed")
	},
	func(a string) *gpb.Path {
		return change.NeighborPath("default", a, "state", "messages", "sent", "UPDATE")
	},
}

func neighborLeaves(router string, i int, at time.Time) []change.Change {
	addr := fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256)
	mk := func(v *gpb.TypedValue, elems ...string) change.Change {
		return change.Change{Router: router, Path: change.NeighborPath("default", addr, elems...), Value: v, Time: at, Source: change.SourceGNMI}
	}
	af := func(v *gpb.TypedValue, leaf string) change.Change {
		return change.Change{Router: router, Path: change.AfiSafiPath("default", addr, "IPV4_UNICAST", "state", "prefixes", leaf), Value: v, Time: at, Source: change.SourceGNMI}
	}
	return []change.Change{
		mk(change.String("ESTABLISHED"), "state", "session-state"),
		mk(change.Uint(64512), "state", "peer-as"),
		mk(change.Uint(65000), "state", "local-as"),
		mk(change.Uint(1), "state", "established-transitions"),
		mk(change.Uint(0), "state", "messages", "received", "UPDATE"),
		mk(change.Uint(0), "state", "messages", "sent", "UPDATE"),
		mk(change.Uint(0), "state", "messages", "received", "NOTIFICATION"),
		mk(change.Uint(0), "state", "messages", "sent", "NOTIFICATION"),
		af(change.Uint(1000), "received"),
		af(change.Uint(900), "installed"),
		af(change.Uint(10), "sent"),
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy is the CPU time all processes used (the cpu line of
// /proc/stat, less idle and iowait), and of it the time the hypervisor
// gave this virtual machine's CPUs to others (steal).
func machineBusy() (busy, steal time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var ticks int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is in user already
			continue
		}
		var n int64
		fmt.Sscan(v, &n)
		ticks += n
		if i == 7 {
			steal = time.Duration(n) * time.Second / 100
		}
	}
	return time.Duration(ticks) * time.Second / 100, steal // USER_HZ
}

func procStatus(key string) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key+":") {
			return strings.TrimSpace(strings.TrimPrefix(l, key+":"))
		}
	}
	return "?"
}

var (
	perEvent     int
	clientWindow int32
	useInProc    bool
	useVerdict   bool
	cpuProfile   string
	traceFile    string
	memProfile   string
)

func run(routers, neighbors, nsubs, rate int, every, dur time.Duration, withSync bool) error {
	mopts := []merge.Option{merge.WithRegisterer(prometheus.NewRegistry())}
	if !useVerdict {
		mopts = append(mopts, merge.WithoutVerdict())
	}
	core, err := merge.New(mopts...)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	sink, err := gnmiserver.New(gnmiserver.Config{Listen: "127.0.0.1:0", MaxSubscriptionsPerClient: nsubs + 1}, core, gnmiserver.WithRegisterer(reg))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	start := time.Now()
	t0 := time.Now()
	for r := 0; r < routers; r++ {
		name := fmt.Sprintf("router%03d", r)
		var chs []change.Change
		for i := 0; i < neighbors; i++ {
			chs = append(chs, neighborLeaves(name, i, t0)...)
		}
		if res := core.Apply(chs); res.Err != nil {
			return fmt.Errorf("apply: %w", res.Err)
		}
	}
	leaves := len(core.Snapshot(""))
	fmt.Printf("fleet: %d routers x %d neighbors, %d leaves in the merge core (built in %v)\n", routers, neighbors, leaves, time.Since(start).Round(time.Millisecond))

	sub := core.Subscribe("gnmi-server", 4096, merge.WithKeys())
	go func() { _ = sink.Run(ctx, sub) }()
	for sink.Addr() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	addr := sink.Addr().String()
	// Run starts with a full resync from the core; wait until it is done.
	for len(sink.Server().Targets()) < routers {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)

	// One full-tree initial sync, timed on its own.
	{
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		st, err := gpb.NewGNMIClient(cc).Subscribe(ctx)
		if err != nil {
			return err
		}
		c0, w0 := cpuTime(), time.Now()
		_ = st.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: &gpb.SubscriptionList{
			Prefix: &gpb.Path{Target: "*"}, Mode: gpb.SubscriptionList_ONCE, Encoding: gpb.Encoding_PROTO,
			Subscription: []*gpb.Subscription{{Path: &gpb.Path{}}}}}})
		n := 0
		for {
			r, err := st.Recv()
			if err != nil {
				return fmt.Errorf("sync: %w", err)
			}
			if r.GetSyncResponse() {
				break
			}
			n += len(r.GetUpdate().GetUpdate())
		}
		fmt.Printf("one whole-tree ONCE sync: %d leaves in %v (%v CPU, client decode included)\n", n, time.Since(w0).Round(time.Millisecond), (cpuTime() - c0).Round(time.Millisecond))
		_ = cc.Close()
	}

	var cl clients
	if useInProc {
		cl, err = startInProc(ctx, addr, nsubs, withSync)
	} else {
		cl, err = startChild(addr, nsubs, withSync)
	}
	if err != nil {
		return err
	}
	defer cl.close()
	fmt.Printf("%d subscribers synced in %v (updates_only=%v, clients %s)\n", nsubs, cl.syncTime().Round(time.Millisecond), !withSync, map[bool]string{true: "in this process", false: "in a child process"}[useInProc])

	// Changes: every tick a batch of the counter increments due by then
	// (rate*tick on time) on random neighbors, stamped just before Apply.
	if err := cl.start(); err != nil {
		return err
	}
	runtime.GC()
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if traceFile != "" {
		f, err := os.Create(traceFile)
		if err != nil {
			return err
		}
		if err := trace.Start(f); err != nil {
			return err
		}
		time.AfterFunc(2*time.Second, trace.Stop)
	}
	m0, s0 := machineBusy()
	c0, w0 := cpuTime(), time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	vals := map[int]uint64{}
	tick := time.NewTicker(every)
	applied := 0
	for time.Since(w0) < dur {
		<-tick.C
		now := time.Now()
		// As many changes as are due by now: a late tick catches up.
		per := int(float64(rate)*now.Sub(w0).Seconds()) - applied
		if per <= 0 {
			continue
		}
		chs := make([]change.Change, 0, per)
		for len(chs) < per {
			r, nb := rng.IntN(routers), rng.IntN(neighbors)
			addr := fmt.Sprintf("10.%d.%d.%d", nb/65536, nb/256%256, nb%256)
			first := 0
			if perEvent == 1 {
				first = rng.IntN(len(counters))
			}
			for c := first; c < first+perEvent && len(chs) < per; c++ {
				key := (r*neighbors+nb)*len(counters) + c
				vals[key]++
				chs = append(chs, change.Change{Router: fmt.Sprintf("router%03d", r), Path: counters[c](addr),
					Value: change.Uint(vals[key]), Time: now, Source: change.SourceGNMI})
			}
		}
		core.Apply(chs)
		applied += len(chs)
	}
	tick.Stop()
	wall := time.Since(w0)
	time.Sleep(500 * time.Millisecond)
	cpu := cpuTime() - c0
	res, err := cl.stop()
	if err != nil {
		return err
	}
	m1, s1 := machineBusy()
	busy, steal := m1-m0, s1-s0
	if memProfile != "" {
		f, err := os.Create(memProfile)
		if err != nil {
			return err
		}
		runtime.GC()
		_ = pprof.WriteHeapProfile(f)
		_ = f.Close()
	}

	var dropped, resyncs float64
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		switch mf.GetName() {
		case "meshd_gnmitarget_updates_dropped_total":
			for _, m := range mf.GetMetric() {
				dropped += m.GetCounter().GetValue()
			}
		case "meshd_gnmitarget_resyncs_total":
			resyncs = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	fmt.Printf("changes in batches every %v\n", every)
	fmt.Printf("changes: %d leaves applied in %v (%.0f/s); %d leaf updates received by %d subscribers (%.1f%% of %d expected)\n",
		applied, wall.Round(time.Millisecond), float64(applied)/wall.Seconds(), res.Received, nsubs,
		100*float64(res.Received)/float64(applied*nsubs), applied*nsubs)
	fmt.Printf("latency source->subscriber per notification: p50 %v  p99 %v  p99.9 %v  max %v  (%d notifications)\n",
		res.P50, res.P99, res.P999, res.Max, res.Notifications)
	fmt.Printf("per batch (%d): first subscriber p50 %v p99 %v; last subscriber p50 %v p99 %v\n",
		res.Batches, res.FirstP50, res.FirstP99, res.LastP50, res.LastP99)
	who := "server and merge core"
	if useInProc {
		who = fmt.Sprintf("server, merge core and the %d client decoders in one process", nsubs)
	}
	fmt.Printf("CPU: %.2f cores (%v over %v; %s)\n", cpu.Seconds()/wall.Seconds(), cpu.Round(time.Millisecond), wall.Round(time.Millisecond), who)
	fmt.Printf("memory: RSS %s, peak RSS %s; dropped (coalesced/overflow) %v, resyncs %v\n", procStatus("VmRSS"), procStatus("VmHWM"), dropped, resyncs)
	if !useInProc {
		fmt.Printf("clients (child process): CPU %.2f cores, RSS %s\n", res.CPU.Seconds()/wall.Seconds(), res.RSS)
	}
	// Other processes on the machine skew latency; say how much they ran.
	fmt.Printf("machine: %.2f cores busy, %.2f of them not this bench's (%.2f stolen by the hypervisor)\n",
		busy.Seconds()/wall.Seconds(), (busy-cpu-res.CPU).Seconds()/wall.Seconds(), steal.Seconds()/wall.Seconds())
	return nil
}
