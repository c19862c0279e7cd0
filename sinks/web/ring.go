package web

import (
	"time"

	"github.com/meshd/meshd/internal/sessions"
)

// point is one probe sample as the session's plots show it. Times in µs
// are float32: 24 bits of mantissa keep a 100 ms RTT to 0.01 µs, and a
// point costs 40 bytes rather than 64.
type point struct {
	at                    int64 // Unix ms
	rtt, min, p50, p99    float32
	jitter                float32
	losses                uint32
	hops                  uint8
	hopsKnown, rttPresent bool
}

func pointOf(r *sessions.Row, at time.Time) point {
	return point{
		at: at.UnixMilli(), rtt: float32(r.RTTus), min: float32(r.RTTMinUS),
		p50: float32(r.RTTP50US), p99: float32(r.RTTP99US), jitter: float32(r.JitterUS),
		losses: uint32(min(r.Losses, 1<<32-1)), hops: uint8(min(r.Hops, 255)),
		hopsKnown: r.Hops > 0, rttPresent: r.RTTus > 0,
	}
}

// maxPoints bounds a session's history: an hour of one sample a second.
// A probe samples once per keepalive (30 s or 60 s on most routers), so
// most sessions hold far fewer; the ring grows only as points come.
const maxPoints = 3600

// minSpacing merges samples closer than this into one point (the last),
// so a session that flaps its probe leaves many times a second costs no
// more than maxPoints.
const minSpacing = time.Second

// ring holds a session's points, oldest first from start: a circular
// buffer that grows (doubling, up to maxPoints) only as points come.
type ring struct {
	pts   []point
	start int
	n     int
}

func (r *ring) at(i int) *point { return &r.pts[(r.start+i)%len(r.pts)] }

// add appends p and forgets points older than window before it.
func (r *ring) add(p point, window time.Duration) {
	if r.n > 0 {
		if last := r.at(r.n - 1); p.at >= last.at && p.at-last.at < minSpacing.Milliseconds() {
			*last = p
			return
		}
	}
	for r.n > 0 && p.at-r.at(0).at > window.Milliseconds() {
		r.start = (r.start + 1) % len(r.pts)
		r.n--
	}
	if r.n == len(r.pts) {
		if r.n == maxPoints {
			r.start = (r.start + 1) % len(r.pts)
			r.n--
		} else {
			grown := make([]point, min(max(2*r.n, 8), maxPoints))
			for i := range r.n {
				grown[i] = *r.at(i)
			}
			r.pts, r.start = grown, 0
		}
	}
	*r.at(r.n) = p
	r.n++
}

func (r *ring) points() []point {
	out := make([]point, r.n)
	for i := range out {
		out[i] = *r.at(i)
	}
	return out
}

// Series is a session's history in columns, as uPlot takes it: times in
// Unix seconds, RTTs and jitter in ms (null where the point has none),
// the probe's loss counter (the page plots its differences) and hops.
type Series struct {
	Time   []float64  `json:"t"`
	RTT    []*float64 `json:"rtt"`
	Min    []*float64 `json:"rtt_min"`
	P50    []*float64 `json:"rtt_p50"`
	P99    []*float64 `json:"rtt_p99"`
	Jitter []*float64 `json:"jitter"`
	Losses []float64  `json:"losses"`
	Hops   []*float64 `json:"hops"`
}

func ms(us float32, ok bool) *float64 {
	if !ok {
		return nil
	}
	v := float64(us) / 1000
	return &v
}

func seriesOf(pts []point) Series {
	n := len(pts)
	s := Series{Time: make([]float64, n), RTT: make([]*float64, n), Min: make([]*float64, n),
		P50: make([]*float64, n), P99: make([]*float64, n), Jitter: make([]*float64, n),
		Losses: make([]float64, n), Hops: make([]*float64, n)}
	for i := range pts {
		p := &pts[i]
		s.Time[i] = float64(p.at) / 1000
		s.RTT[i] = ms(p.rtt, p.rttPresent)
		s.Min[i] = ms(p.min, p.rttPresent && p.min > 0)
		s.P50[i] = ms(p.p50, p.rttPresent && p.p50 > 0)
		s.P99[i] = ms(p.p99, p.rttPresent && p.p99 > 0)
		s.Jitter[i] = ms(p.jitter, p.rttPresent)
		s.Losses[i] = float64(p.losses)
		if p.hopsKnown {
			h := float64(p.hops)
			s.Hops[i] = &h
		}
	}
	return s
}

// Event is one entry of the page's timeline.
type Event struct {
	Seq             uint64         `json:"seq"`
	Time            time.Time      `json:"time"`
	Router          string         `json:"router"`
	NetworkInstance string         `json:"network_instance,omitempty"`
	Neighbor        string         `json:"neighbor,omitempty"`
	Kind            string         `json:"kind"`
	Source          string         `json:"source"`
	Fields          map[string]any `json:"fields,omitempty"`
	// Replica is the replica whose event it is, when another one's.
	Replica string `json:"replica,omitempty"`
}

// eventRing keeps the last max events, numbered.
type eventRing struct {
	buf   []Event
	start int
	max   int
	seq   uint64
}

func (r *eventRing) add(e Event) {
	r.seq++
	e.Seq = r.seq
	if len(r.buf) < r.max {
		r.buf = append(r.buf, e)
		return
	}
	r.buf[r.start] = e
	r.start = (r.start + 1) % len(r.buf)
}

func (r *eventRing) at(i int) *Event { return &r.buf[(r.start+i)%len(r.buf)] }

// since returns the events numbered after seq, oldest first.
func (r *eventRing) since(seq uint64) []Event {
	n := len(r.buf)
	i := n
	for i > 0 && r.at(i-1).Seq > seq {
		i--
	}
	out := make([]Event, 0, n-i)
	for ; i < n; i++ {
		out = append(out, *r.at(i))
	}
	return out
}

// last returns up to n of the newest events that keep holds, oldest first.
func (r *eventRing) last(n int, keep func(Event) bool) []Event {
	var out []Event
	for i := len(r.buf) - 1; i >= 0 && len(out) < n; i-- {
		if e := r.at(i); keep(*e) {
			out = append(out, *e)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
