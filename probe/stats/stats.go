// Package stats keeps the keepalive probe's per-peer figures: a sliding
// window of RTT samples (bounded by count and by age) summarised as last,
// min, max, mean, p50, p99 and jitter; counters; and the hop count derived
// from the peer's TTL, with path-change detection.
//
// # Robust figures for a verdict
//
// Single samples run long for reasons that are not the path: a peer that
// delays its ACK (40-200 ms on Linux), a busy host that reads the frame
// late. A verdict therefore reads two minima, never a single sample:
// Peer.Recent, the least of the last RecentSamples (5) samples (a step
// must last that many keepalives to show, a burst of late samples shorter
// than that never does), and Peer.Baseline, the least RTT over the last
// BaselineAge (in BaselineBucket buckets), which a sustained rise is
// measured against. Both leave out samples whose ACK rode on the peer's
// own data (probe/match's Piggybacked): the peer held that ACK back, and
// how long depends on when it next had something to send, not on the
// path. A peer that holds every ACK gives neither figure.
// After BaselineAge at a new level the baseline has moved there too: the
// new RTT is then the path's normal.
package stats

import (
	"slices"
	"time"
)

// Window is a sliding window of RTT samples: it holds at most Size
// samples, none older than MaxAge. Adding a sample pushes the oldest out;
// ageing drops samples as time passes even when none arrive, so a quiet
// window empties rather than freezing an old picture.
type Window struct {
	size   int
	maxAge int64
	rtt    []int64 // ring, ns
	at     []int64 // ring, capture time of each sample
	head   int     // index of the oldest
	n      int
	last   int64
	lastAt int64
	sorted []int64 // scratch for percentiles
}

// NewWindow returns a window of at most size samples, none older than
// maxAge (0: no age limit).
func NewWindow(size int, maxAge time.Duration) *Window {
	if size <= 0 {
		size = 100
	}
	return &Window{size: size, maxAge: maxAge.Nanoseconds(), rtt: make([]int64, size), at: make([]int64, size)}
}

// Add adds a sample of rtt ns taken at now (Unix ns).
func (w *Window) Add(now, rtt int64) {
	w.expire(now)
	if w.n == w.size {
		w.head = (w.head + 1) % w.size
		w.n--
	}
	i := (w.head + w.n) % w.size
	w.rtt[i], w.at[i] = rtt, now
	w.n++
	w.last, w.lastAt = rtt, now
}

// Reset empties the window (the counters of the caller are not its
// business).
func (w *Window) Reset() { w.head, w.n = 0, 0 }

func (w *Window) expire(now int64) {
	if w.maxAge <= 0 {
		return
	}
	for w.n > 0 && now-w.at[w.head] > w.maxAge {
		w.head = (w.head + 1) % w.size
		w.n--
	}
}

// RecentSamples is how many of the latest samples Peer.Recent is the
// least of.
const RecentSamples = 5

// Summary describes a window at one moment. Durations are ns.
type Summary struct {
	N        int
	Last     int64 // the latest sample ever, even if aged out
	Min, Max int64
	Mean     float64
	P50, P99 int64
	Jitter   float64 // mean absolute difference of consecutive samples
	LastAt   int64
}

// Summary ages the window to now and summarises it. Percentiles are
// nearest-rank, so each is a sample that was really measured.
func (w *Window) Summary(now int64) Summary {
	w.expire(now)
	s := Summary{N: w.n, Last: w.last, LastAt: w.lastAt}
	if w.n == 0 {
		return s
	}
	w.sorted = w.sorted[:0]
	var sum, jit float64
	prev := int64(0)
	for k := 0; k < w.n; k++ {
		v := w.rtt[(w.head+k)%w.size]
		w.sorted = append(w.sorted, v)
		sum += float64(v)
		if k > 0 {
			d := v - prev
			if d < 0 {
				d = -d
			}
			jit += float64(d)
		}
		prev = v
	}
	slices.Sort(w.sorted)
	s.Min, s.Max = w.sorted[0], w.sorted[w.n-1]
	s.Mean = sum / float64(w.n)
	s.P50, s.P99 = rank(w.sorted, 50), rank(w.sorted, 99)
	if w.n > 1 {
		s.Jitter = jit / float64(w.n-1)
	}
	return s
}

// rank is the nearest-rank percentile of sorted values.
func rank(sorted []int64, p int) int64 {
	i := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	if i < 1 {
		i = 1
	}
	return sorted[i-1]
}

// InitialTTLs are the initial TTLs operating systems use; hops are counted
// from the nearest one at or above the observed TTL.
var InitialTTLs = [...]uint8{64, 128, 255}

// Hops returns the hop count implied by a received TTL. A TTL of 1 counts
// as 0 hops: single-hop eBGP speakers send exactly 1 (so do FRR and
// gobgp), and nothing sent with 1 crosses a router.
func Hops(ttl uint8) uint8 {
	if ttl == 1 {
		return 0
	}
	for _, init := range InitialTTLs {
		if ttl <= init {
			return init - ttl
		}
	}
	return 0
}

// Baseline ages, see the package documentation.
const (
	BaselineAge    = time.Hour
	BaselineBucket = 5 * time.Minute
)

const baselineBuckets = int(BaselineAge / BaselineBucket)

// Baseline keeps the least RTT of each BaselineBucket over BaselineAge.
type Baseline struct {
	b [baselineBuckets]struct{ start, min int64 }
}

// Add records a sample of rtt ns taken at now (Unix ns).
func (b *Baseline) Add(now, rtt int64) {
	start := now - now%int64(BaselineBucket)
	i := int(start/int64(BaselineBucket)) % baselineBuckets
	if i < 0 {
		i += baselineBuckets
	}
	if b.b[i].start != start {
		b.b[i].start, b.b[i].min = start, rtt
		return
	}
	b.b[i].min = min(b.b[i].min, rtt)
}

// Min returns the least RTT of the buckets of the last BaselineAge, 0 when
// there is none.
func (b *Baseline) Min(now int64) int64 {
	var m int64
	for _, x := range b.b {
		if x.start == 0 || now-x.start >= int64(BaselineAge) {
			continue
		}
		if m == 0 || x.min < m {
			m = x.min
		}
	}
	return m
}

// Peer is what the probe knows of one (local, peer) pair.
type Peer struct {
	Window   *Window
	Baseline Baseline
	recent   [RecentSamples]int64
	recentN  int

	Samples            uint64
	Losses             uint64
	LastLoss           int64  // Unix ns, 0 never
	KeepalivesSent     uint64 // by the local speaker
	KeepalivesReceived uint64 // from the peer
	MessagesSeen       uint64 // any type, both directions
	MessagesByType     [7]uint64

	TTL           uint8
	Hops          uint8
	HasTTL        bool
	HopChanges    uint64
	LastHopChange int64
}

// NewPeer returns a Peer with a window of the given size and age.
func NewPeer(size int, maxAge time.Duration) *Peer {
	return &Peer{Window: NewWindow(size, maxAge)}
}

// HopChange is a change of the hop count towards a peer.
type HopChange struct {
	OldTTL, NewTTL   uint8
	OldHops, NewHops uint8
}

// ObserveTTL records the TTL of a packet from the peer. It returns the
// change when the hop count differs from the previous packet's; a TTL
// change within the same initial-TTL bracket that keeps the hop count
// cannot happen, and a first observation is no change.
func (p *Peer) ObserveTTL(now int64, ttl uint8) (HopChange, bool) {
	hops := Hops(ttl)
	if !p.HasTTL {
		p.TTL, p.Hops, p.HasTTL = ttl, hops, true
		return HopChange{}, false
	}
	if ttl == p.TTL {
		return HopChange{}, false
	}
	c := HopChange{OldTTL: p.TTL, NewTTL: ttl, OldHops: p.Hops, NewHops: hops}
	p.TTL = ttl
	if hops == p.Hops {
		return HopChange{}, false
	}
	p.Hops = hops
	p.HopChanges++
	p.LastHopChange = now
	return c, true
}

// AddLoss records a lost keepalive.
func (p *Peer) AddLoss(now int64) {
	p.Losses++
	p.LastLoss = max(p.LastLoss, now)
}

// AddSample records an RTT sample; piggybacked says its ACK rode on the
// peer's data, which keeps it out of Recent and Baseline.
func (p *Peer) AddSample(now, rtt int64, piggybacked bool) {
	p.Samples++
	p.Window.Add(now, rtt)
	if piggybacked {
		return
	}
	p.Baseline.Add(now, rtt)
	p.recent[p.recentN%RecentSamples] = rtt
	p.recentN++
}

// Recent returns the least of the last RecentSamples samples that were
// not piggybacked, 0 when there is none.
func (p *Peer) Recent() int64 {
	var m int64
	for i := 0; i < min(p.recentN, RecentSamples); i++ {
		if m == 0 || p.recent[i] < m {
			m = p.recent[i]
		}
	}
	return m
}
