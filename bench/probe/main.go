// Command probe measures the keepalive probe agent's cost with many BGP
// sessions: it synthesises keepalive traffic (keepalive, ACK, peer
// keepalive, ACK per peer and interval, an UPDATE now and then) and feeds
// it through probe.Agent, publishing into a gNMI target as `meshd probe`
// does, either paced at a realistic rate or as fast as it goes, and
// reports CPU seconds per second, peak RSS and packets per second.
//
//	go run ./bench/probe -peers 1000 -mode paced -duration 60s
//	go run ./bench/probe -peers 1000 -mode max -rounds 40
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"syscall"
	"time"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/gnmitarget"
	"github.com/meshd/meshd/probe"
	"github.com/meshd/meshd/probe/capture"
	"github.com/meshd/meshd/probe/packet"
)

type result struct {
	Mode          string  `json:"mode"`
	Peers         int     `json:"peers"`
	Packets       int     `json:"packets"`
	Seconds       float64 `json:"wall_s"`
	PktsPerSec    float64 `json:"pkts_per_s"`
	CPUPerSec     float64 `json:"cpu_s_per_s"`
	CPUUsPerPkt   float64 `json:"cpu_us_per_pkt"`
	PeakRSSMB     float64 `json:"peak_rss_mb"`
	HeapMB        float64 `json:"heap_inuse_mb"`
	FramesMB      float64 `json:"heap_before_mb"` // the pre-built frames, before the agent ran
	Samples       uint64  `json:"samples"`
	PeersMeasured int     `json:"peers_measured"`
	Losses        uint64  `json:"losses"`
}

func main() {
	peers := flag.Int("peers", 1000, "BGP sessions")
	mode := flag.String("mode", "paced", "paced (keepalive every -min..-max per peer, in real time) or max (as fast as possible)")
	dur := flag.Duration("duration", 60*time.Second, "paced: how long to run")
	minIv := flag.Duration("min", 3*time.Second, "paced: shortest keepalive interval")
	maxIv := flag.Duration("max", 30*time.Second, "paced: longest keepalive interval")
	rounds := flag.Int("rounds", 40, "max: keepalive rounds per peer")
	flag.Parse()
	if *peers < 1 || *peers > 60000 || *dur <= 0 || *dur > time.Hour || *rounds < 1 || *rounds > 10000 || *minIv <= 0 || *maxIv < *minIv {
		fmt.Fprintln(os.Stderr, "bad flags")
		os.Exit(2)
	}

	srv, err := gnmitarget.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	const router = "r1"
	publish := func(chs []change.Change) {
		ups := make([]change.Update, len(chs))
		for i, c := range chs {
			ups[i] = change.Update{Router: router, Path: c.Path, Key: change.PathKey(c.Path), Value: c.Value, Time: c.Time, Source: c.Source}
		}
		srv.Update(router, ups)
	}
	local := netip.MustParseAddr("10.0.0.1")
	a := probe.New(probe.Config{Router: router, LocalAddrs: []netip.Addr{local}, Window: 20, Publish: publish}, false)

	var frames []capture.Frame
	var start time.Time
	switch *mode {
	case "paced":
		// Schedule relative to 0; shifted to the wall clock at start.
		frames = paced(*peers, *dur, *minIv, *maxIv)
	case "max":
		frames = rounds2(*peers, *rounds)
	default:
		fmt.Fprintln(os.Stderr, "-mode: paced or max")
		os.Exit(2)
	}
	runtime.GC()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime()
	start = time.Now()
	if *mode == "paced" {
		base := start.UnixNano()
		tick := time.NewTicker(5 * time.Millisecond)
		i, lastExp := 0, base
		for i < len(frames) {
			now := (<-tick.C).UnixNano()
			for ; i < len(frames) && base+frames[i].Time <= now; i++ {
				f := frames[i]
				f.Time += base
				a.Handle(&f)
			}
			if now-lastExp > int64(time.Second) {
				a.Expire(now)
				lastExp = now
			}
		}
		tick.Stop()
		for time.Since(start) < *dur {
			time.Sleep(10 * time.Millisecond)
		}
	} else {
		var lastExp int64
		for i := range frames {
			a.Handle(&frames[i])
			if t := frames[i].Time; t-lastExp > int64(time.Second) {
				a.Expire(t)
				lastExp = t
			}
		}
	}
	wall := time.Since(start).Seconds()
	cpu := cpuTime() - cpu0
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	r := result{Mode: *mode, Peers: *peers, Packets: len(frames), Seconds: wall,
		PktsPerSec: float64(len(frames)) / wall, CPUPerSec: cpu / wall, CPUUsPerPkt: cpu / float64(len(frames)) * 1e6,
		PeakRSSMB: float64(ru.Maxrss) / 1024, HeapMB: float64(ms.HeapInuse) / (1 << 20), FramesMB: float64(ms0.HeapInuse) / (1 << 20),
		Samples: a.Counter.Samples, PeersMeasured: len(a.Snapshot(time.Now())), Losses: a.Counter.Losses}
	_ = json.NewEncoder(os.Stdout).Encode(r)
	runtime.KeepAlive(frames)
}

func cpuTime() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// session is one synthetic BGP session seen next to the local speaker.
type session struct {
	peer     netip.Addr
	port     uint16
	seq      [2]uint32 // next sequence number: 0 local, 1 peer
	interval time.Duration
}

// exchange appends one keepalive round at t: local keepalive, the peer's
// ACK after rtt, the peer's keepalive half an interval later and the local
// ACK; every fourth round the local side sends an UPDATE first.
func (s *session) exchange(out []capture.Frame, t int64, round int, rtt int64) []capture.Frame {
	if round%4 == 3 {
		out = append(out, s.seg(0, t, 60))
	}
	out = append(out, s.seg(0, t, 19), s.seg(1, t+rtt, 0))
	tp := t + int64(s.interval)/2
	return append(out, s.seg(1, tp, 19), s.seg(0, tp+50_000, 0))
}

// seg builds an Ethernet/IPv4/TCP frame from side d carrying a BGP
// message of n bytes (19 = KEEPALIVE, more = UPDATE), or a bare ACK.
func (s *session) seg(d int, t int64, n int) capture.Frame {
	payload := 0
	if n > 0 {
		payload = n
	}
	b := make([]byte, 14+20+20+payload)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(ip[2:], uint16(40+payload))
	src, dst := netip.MustParseAddr("10.0.0.1"), s.peer
	sp, dp := uint16(179), s.port
	if d == 1 {
		src, dst, sp, dp = dst, src, dp, sp
		ip[8] = 62
	}
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:], s4[:])
	copy(ip[16:], d4[:])
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp[0:], sp)
	binary.BigEndian.PutUint16(tcp[2:], dp)
	binary.BigEndian.PutUint32(tcp[4:], s.seq[d])
	binary.BigEndian.PutUint32(tcp[8:], s.seq[1-d])
	tcp[12], tcp[13] = 5<<4, 0x10 // ACK
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	if n > 0 {
		tcp[13] |= 0x08 // PSH
		m := tcp[20:]
		for i := 0; i < 16; i++ {
			m[i] = 0xff
		}
		binary.BigEndian.PutUint16(m[16:], uint16(n))
		m[18] = 4
		if n > 19 {
			m[18] = 2
		}
		s.seq[d] += uint32(n)
	}
	return capture.Frame{Data: b, Time: t, Link: packet.LinkEthernet}
}

func newSessions(n int, rng *rand.Rand, minIv, maxIv time.Duration) []*session {
	ss := make([]*session, n)
	for i := range ss {
		iv := minIv + time.Duration(rng.Int64N(int64(maxIv-minIv)+1))
		ss[i] = &session{peer: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), port: uint16(30000 + i),
			seq: [2]uint32{rng.Uint32(), rng.Uint32()}, interval: iv}
	}
	return ss
}

// paced returns every frame of dur of traffic, each peer keeping its own
// interval (uniform in [minIv, maxIv]) from a random phase, in time order.
func paced(n int, dur, minIv, maxIv time.Duration) []capture.Frame {
	rng := rand.New(rand.NewPCG(1, 2))
	ss := newSessions(n, rng, minIv, maxIv)
	var out []capture.Frame
	for _, s := range ss {
		for r, t := 0, rng.Int64N(int64(s.interval)); t < int64(dur)-int64(s.interval)/2-int64(time.Millisecond); r, t = r+1, t+int64(s.interval) {
			out = s.exchange(out, t, r, 200_000+rng.Int64N(2_000_000))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time < out[j].Time })
	return out
}

// rounds2 returns rounds keepalive rounds of every peer at 3 s intervals,
// interleaved, for the max-rate run.
func rounds2(n, rounds int) []capture.Frame {
	rng := rand.New(rand.NewPCG(3, 4))
	ss := newSessions(n, rng, 3*time.Second, 3*time.Second)
	t0 := int64(1_700_000_000) * 1e9
	var out []capture.Frame
	for r := 0; r < rounds; r++ {
		for i, s := range ss {
			out = s.exchange(out, t0+int64(r)*3e9+int64(i)*1e6, r, 200_000+rng.Int64N(2_000_000))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time < out[j].Time })
	return out
}
