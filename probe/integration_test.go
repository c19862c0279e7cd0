//go:build integration

package probe

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/internal/wire"
)

// delayLab is two gobgpd speakers, A (AS 65001) and B (AS 65002), with an
// IPv4 and an IPv6 session, and the probe running in A. Between them sits
// an impairment box E: internal/wire's user-space bridge in its own
// namespace (the kernels meshd is tested on have no netem).
// Direction 1 of the returned impairment is B towards A, so a delay there
// delays the peer's ACKs, after the probe's tap on A's keepalives.
type impair interface {
	delay(t *testing.T, d time.Duration)
	loss(t *testing.T, p float64)
}

// wireImpair impairs frames from B (entering the wire on its b-side
// interface) towards A.
type wireImpair struct {
	l    *wire.Link
	from string
}

func (e wireImpair) delay(t *testing.T, d time.Duration) {
	if err := e.l.Set(e.from, wire.Impairment{Delay: time.Millisecond + d}); err != nil {
		t.Fatal(err)
	}
}

func (e wireImpair) loss(t *testing.T, p float64) {
	if err := e.l.Set(e.from, wire.Impairment{Delay: time.Millisecond, Loss: p}); err != nil {
		t.Fatal(err)
	}
}

func delayLab(t *testing.T) (imp impair, pr *probeRun, dump string) {
	l := newDelayLab(t, nil)
	return l.imp, l.pr, l.dump
}

// lab is delayLab's parts, for tests that also act on the links.
type lab struct {
	imp        wireImpair
	pr         *probeRun
	dump       string
	a, b       *testenv.Netns
	aDev, bDev string
}

// newDelayLab builds delayLab; cfg, when set, adjusts the probe's config
// before it starts.
func newDelayLab(t *testing.T, cfg func(*Config)) *lab {
	testenv.RequireRoot(t)
	a, e, b := testenv.NewNetns(t, "pa"), testenv.NewNetns(t, "pe"), testenv.NewNetns(t, "pb")
	testenv.Binary(t, "ethtool")
	aDev, e0 := testenv.Veth(t, a, e, []string{"10.71.0.1/24", "fd71::1/64"}, nil)
	e1, bDev := testenv.Veth(t, e, b, nil, []string{"10.71.0.2/24", "fd71::2/64"})
	// The bridge re-sends frames as they were captured: they must carry
	// finished checksums, not offload placeholders.
	a.Run(t, "ethtool", "-K", aDev, "tx", "off")
	b.Run(t, "ethtool", "-K", bDev, "tx", "off")
	quickack(t, a, aDev, "10.71.0.0/24", "fd71::/64")
	quickack(t, b, bDev, "10.71.0.0/24", "fd71::/64")
	l, err := wire.Open(e.Name, e0, e1)
	if err != nil {
		t.Fatalf("impairment bridge: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	// A fixed 1 ms each way: the bridge then forwards on its schedule, not
	// whenever its reader wakes, which keeps the baseline steady.
	for _, ifn := range []string{e0, e1} {
		if err := l.Set(ifn, wire.Impairment{Delay: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	dir := os.Getenv("MESHD_PROBE_TCPDUMP")
	if dir == "" {
		dir = t.TempDir()
	}
	dump := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".pcap")
	tcpdump(t, a, dump)
	startGoBGP(t, a, 65001, "10.71.0.1", []neighbor{{addr: "10.71.0.2", local: "10.71.0.1", as: 65002}, {addr: "fd71::2", local: "fd71::1", as: 65002}})
	startGoBGP(t, b, 65002, "10.71.0.2", []neighbor{{addr: "10.71.0.1", local: "10.71.0.2", as: 65001, passive: true}, {addr: "fd71::1", local: "fd71::2", as: 65001, passive: true}})
	pc := Config{Router: "pa", Netns: a.Name, Window: 5}
	if cfg != nil {
		cfg(&pc)
	}
	pr := startProbe(t, pc)
	return &lab{imp: wireImpair{l: l, from: e1}, pr: pr, dump: dump, a: a, b: b, aDev: aDev, bDev: bDev}
}

// TestNetemDelay checks the measured RTT against a netem delay on the
// peer's egress (the peer's ACKs are delayed), for IPv4 and IPv6, and that
// the window follows a change of the delay.
func TestNetemDelay(t *testing.T) {
	imp, pr, dump := delayLab(t)
	peers := []netip.Addr{netip.MustParseAddr("10.71.0.2"), netip.MustParseAddr("fd71::2")}

	// The baseline is measured before the delays and again after them,
	// and the lesser taken: on a starved machine the emulator can run a
	// few ms late for a stretch, even steadily enough for two samples to
	// agree (a CI run's baseline came out 3.2 ms, the path's ~2 ms). Ten
	// samples each time at least: the tolerance below is their spread,
	// and a spread needs samples.
	base := map[netip.Addr]time.Duration{}
	baseRTTs := map[netip.Addr][]time.Duration{}
	baseline := func(start func(netip.Addr) int) {
		for _, p := range peers {
			ss := confirmedMin(t, pr, p, start(p), 10, 20)
			if b, ok := base[p]; !ok || minRTT(ss) < b {
				base[p] = minRTT(ss)
			}
			baseRTTs[p] = append(baseRTTs[p], rttsOf(ss)...)
			t.Logf("%s baseline RTTs %v, min %v", p, rttsOf(ss), minRTT(ss))
		}
	}
	for _, p := range peers {
		pr.waitSamples(t, p, 1, 60*time.Second) // session set-up
	}
	baseline(pr.counted)
	type phase struct {
		p     netip.Addr
		delay time.Duration
		least time.Duration
	}
	var phases []phase

	for _, delay := range []time.Duration{20 * time.Millisecond, 40 * time.Millisecond} {
		imp.delay(t, delay)
		starts := map[netip.Addr]int{}
		for _, p := range peers {
			starts[p] = pr.counted(p) + 1 // the first may straddle the change
		}
		for _, p := range peers {
			ss := confirmedMin(t, pr, p, starts[p], 5, 20)
			for _, s := range ss {
				t.Logf("%s delay %v: rtt %v (ts-rtt %v, %s)", p, delay, s.RTT, s.TSRTT, s.Method)
			}
			phases = append(phases, phase{p, delay, minRTT(ss)})
			// The window holds exactly the last five samples: its min is
			// theirs, which also shows it let go of the old delay.
			last := ss[len(ss)-1].Peer
			if last.N != 5 {
				t.Errorf("%s: window holds %d samples, want 5", p, last.N)
			}
			if w := minRTT(ss[len(ss)-5:]); time.Duration(last.Min) != w {
				t.Errorf("%s: window min %v, want the last five samples' min %v", p, time.Duration(last.Min), w)
			}
			t.Logf("%s delay %v: window min %v, p50 %v", p, delay, time.Duration(last.Min), time.Duration(last.P50))
		}
	}
	imp.delay(t, 0)
	baseline(func(p netip.Addr) int { return pr.counted(p) + 1 })
	// The emulator is a Go program on a busy 2-core machine and now and
	// then forwards a frame late, so single samples run long; the
	// confirmed least must be the path, within 0.2 ms (issue 7), or
	// within the noise of a least, when a loaded machine makes that
	// larger: twice the baseline's low spread, see rttSpread. And never
	// under the wire's own holds (1 ms each way and the delay), which it
	// keeps from the kernel's receive time.
	for _, ph := range phases {
		want := ph.delay + base[ph.p]
		tol := max(200*time.Microsecond, 2*rttSpread(baseRTTs[ph.p]))
		floor := ph.delay + 2*time.Millisecond
		if d := ph.least - want; d < -tol || d > tol || ph.least < floor {
			t.Errorf("%s: least RTT %v with delay %v, want %v ± %v and at least %v", ph.p, ph.least, ph.delay, want, tol, floor)
		} else {
			t.Logf("%s delay %v: least RTT %v, want %v ± %v (error %v)", ph.p, ph.delay, ph.least, want, tol, d)
		}
	}
	checkAgainstPcap(t, pr, dump, netip.MustParseAddr("10.71.0.1"), netip.MustParseAddr("fd71::1"))
}

// confirmedMin waits, from the peer's sample number start on, for samples
// whose two least RTTs agree within 0.2 ms (a least sample seen twice is
// the path, not a lucky or unlucky moment of the emulator), at least
// atLeast of them, or max. It returns them all, in order, with none left
// out, so the last five are the probe's window.
func confirmedMin(t *testing.T, pr *probeRun, peer netip.Addr, start, atLeast, max int) []Sample {
	t.Helper()
	var ss []Sample
	testenv.WaitFor(t, time.Duration(max)*5*time.Second, fmt.Sprintf("a confirmed least RTT toward %s", peer), func() bool {
		ss = pr.since(peer, start)
		if len(ss) < atLeast {
			return false
		}
		r := rttsOf(ss)
		slices.Sort(r)
		return r[1]-r[0] <= 200*time.Microsecond || len(ss) >= max
	})
	return ss
}

// rttSpread is the low spread of baseline RTTs: their ⌈n/4⌉-th least
// less their least, how far the least of a set of samples strays. The rest is left out: on a loaded machine most samples may be
// the emulator's spikes (ms; stress runs saw the 75th percentile 4-40 ms
// over a least that was right within 54 µs).
func rttSpread(rtts []time.Duration) time.Duration {
	s := slices.Clone(rtts)
	slices.Sort(s)
	return s[(len(s)+3)/4-1] - s[0]
}

func minRTT(ss []Sample) time.Duration {
	m := ss[0].RTT
	for _, s := range ss[1:] {
		m = min(m, s.RTT)
	}
	return m
}

// checkAgainstPcap reads tcpdump's nanosecond capture of the same run and
// requires the live probe's samples to match the pcap reader's exactly:
// both are timed by the kernel's receive timestamps.
func checkAgainstPcap(t *testing.T, pr *probeRun, dump string, local ...netip.Addr) {
	t.Helper()
	pr.cancel()
	pr.mu.Lock()
	var last time.Time
	for _, s := range pr.samples {
		if s.Time.After(last) {
			last = s.Time
		}
	}
	pr.mu.Unlock()
	fromPcap := pcapSamples(t, dump, last, local...)
	pr.mu.Lock()
	defer pr.mu.Unlock()
	byKey := map[string]time.Duration{}
	for _, s := range fromPcap {
		byKey[s.PeerKey.Peer.String()+s.Time.Format(time.RFC3339Nano)] = s.RTT
	}
	matched := 0
	for _, s := range pr.samples {
		rtt, ok := byKey[s.PeerKey.Peer.String()+s.Time.Format(time.RFC3339Nano)]
		if !ok {
			continue // tcpdump started a moment after the probe, or stopped before
		}
		matched++
		if rtt != s.RTT {
			t.Errorf("%s at %v: live %v, tcpdump %v", s.PeerKey.Peer, s.Time, s.RTT, rtt)
		}
	}
	t.Logf("%d of %d live samples found in tcpdump's capture (%d there), all equal", matched, len(pr.samples), len(fromPcap))
	if matched < len(pr.samples)/2 {
		t.Errorf("only %d of %d live samples found in the capture", matched, len(pr.samples))
	}
}

// TestNetemLoss drops everything B sends for a while: A's keepalive goes
// unacknowledged and is retransmitted, which must count as a loss and not
// as a (long) sample.
func TestNetemLoss(t *testing.T) {
	imp, pr, _ := delayLab(t)
	p := netip.MustParseAddr("10.71.0.2")
	pr.waitSamples(t, p, 1, 30*time.Second)
	imp.loss(t, 1)
	time.Sleep(4 * time.Second) // one keepalive interval and some, well inside the 9 s hold time
	imp.loss(t, 0)
	ss := pr.waitSamples(t, p, 1, 30*time.Second)
	s := ss[len(ss)-1]
	t.Logf("after loss: losses %d samples %d max %v", s.Peer.Losses, s.Peer.Samples, time.Duration(s.Peer.Max))
	if s.Peer.Losses < 1 {
		t.Fatalf("no loss counted after 4 s of 100%% loss on the peer's egress")
	}
	// A keepalive sent just before the loss ends is acknowledged late
	// but legitimately, by the peer's first segment after it (CI and
	// local runs saw 120 and 179 ms): it was never retransmitted, so the
	// sample is shorter than Linux's first retransmission timeout
	// (TCP_RTO_MIN, 200 ms; the lab sets no rto_min). A keepalive sent
	// earlier in the 4 s of loss is retransmitted, and a sample timed from
	// its first sending, against Karn's rule, would span the rest of the
	// loss: twice the minimum timeout stays clear of timer slop.
	if time.Duration(s.Peer.Max) >= 400*time.Millisecond {
		t.Errorf("a retransmitted keepalive made a sample of %v", time.Duration(s.Peer.Max))
	}
}

// quickack makes the namespace's TCP acknowledge at once on the connected
// routes given. Without it Linux delays the ACK of a lone keepalive by
// 40-200 ms whenever the connection is in its interactive (pingpong) mode,
// and the measured time is the peer's ACK policy, not the path. The
// route attribute is read when a connection picks its route, so this runs
// before the speakers start.
func quickack(t *testing.T, ns *testenv.Netns, dev string, prefixes ...string) {
	t.Helper()
	for _, p := range prefixes {
		args := []string{"route", "replace", p, "dev", dev, "proto", "kernel", "scope", "link", "quickack", "1"}
		if strings.Contains(p, ":") {
			// The kernel's own IPv6 connected route has metric 256;
			// replace it rather than adding a second one.
			args = []string{"-6", "route", "replace", p, "dev", dev, "proto", "kernel", "metric", "256", "quickack", "1"}
		}
		ns.Run(t, "ip", args...)
	}
}

// tcpdump records the namespace's BGP traffic to file for the length of
// the test (set MESHD_PROBE_TCPDUMP=dir to get one per test).
// pcapSamples reads the samples in tcpdump's capture once it holds one
// taken at until or later, or after 10 s: tcpdump writes each packet as
// it gets it (-U), but a loaded machine runs it late.
func pcapSamples(t *testing.T, dump string, until time.Time, local ...netip.Addr) []Sample {
	t.Helper()
	var ss []Sample
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ss = ss[:0]
		_, err := FromPcap(context.Background(), Config{Pcap: dump, LocalAddrs: local, OnSample: func(s Sample) { ss = append(ss, s) }})
		if err != nil {
			t.Fatalf("reading tcpdump's capture: %v", err)
		}
		if len(ss) > 0 && !ss[len(ss)-1].Time.Before(until) || time.Now().After(deadline) {
			return ss
		}
	}
}

func tcpdump(t *testing.T, ns *testenv.Netns, file string) {
	t.Helper()
	cmd := ns.Command(testenv.Binary(t, "tcpdump"), "-i", "any", "-s", "0", "-U", "--time-stamp-precision=nano", "-w", file, "tcp port 179")
	if err := cmd.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
}
