package e2e

import (
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// influxProxy stands between meshd and influxd and times every write:
// once influxd has acknowledged a write, its points are queryable, so a
// point's latency is the acknowledgement's time minus the point's
// timestamp. It forwards bytes unchanged and adds one loopback hop.
type influxProxy struct {
	to  string // influxd's base URL
	cli *http.Client
	lis net.Listener
	srv *http.Server

	mu        sync.Mutex
	from, til int64 // only points stamped in [from, til) are timed
	// acked maps a source timestamp to the time its last point was
	// acknowledged. The fleet stamps a router's whole tick with one
	// timestamp, and a snapshot all its points with one, so each is one
	// sample however many points it has: the latency of a batch of
	// changes, not of lines.
	acked    map[int64]int64
	lines    map[string]int64 // acknowledged points by measurement
	lastAck  map[string]time.Time
	failures int64 // writes influxd refused

	// The soak harness's faults and duplicate count (soakproxy.go).
	addr  string
	hold  atomic.Int64 // ns each write is held before it is forwarded
	track bool         // keep every acknowledged point's key in keys
	keys  []ackedPoint
}

// timedMeasurements are the measurements whose timestamps are the
// sources' (gNMI notifications' timestamps).
var timedMeasurements = map[string]bool{"bgp_neighbor": true, "bgp_neighbor_afi": true}

func startProxy(addr, to string) (*influxProxy, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &influxProxy{to: to, lis: lis, addr: addr, acked: map[int64]int64{}, lines: map[string]int64{}, lastAck: map[string]time.Time{},
		cli: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(lis)
	return p, nil
}

func (p *influxProxy) URL() string { return "http://" + p.lis.Addr().String() }

func (p *influxProxy) close() { _ = p.srv.Close() }

// window starts timing points stamped from now on (and ends the previous
// window); stop ends it.
func (p *influxProxy) window(from, til time.Time) {
	p.mu.Lock()
	p.from, p.til = from.UnixNano(), til.UnixNano()
	clear(p.acked)
	p.mu.Unlock()
}

func (p *influxProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if d := p.hold.Load(); d > 0 && r.Method == http.MethodPost {
		time.Sleep(time.Duration(d))
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.to+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := p.cli.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	ack := time.Now()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	if r.Method != http.MethodPost || (r.URL.Path != "/write" && r.URL.Path != "/api/v2/write") {
		return
	}
	if resp.StatusCode/100 != 2 {
		p.mu.Lock()
		p.failures++
		p.mu.Unlock()
		return
	}
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return
		}
		if body, err = io.ReadAll(zr); err != nil {
			return
		}
	}
	p.record(body, ack)
}

// record counts an acknowledged write's points. Precision is ns (meshd
// writes with precision=ns).
func (p *influxProxy) record(body []byte, ack time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := ack.UnixNano()
	for len(body) > 0 {
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		m := measurement(line)
		if p.track {
			p.keys = append(p.keys, ackedPoint{pointKey(line), lineHash(line)})
		}
		p.lines[string(m)]++
		p.lastAck[string(m)] = ack
		if !timedMeasurements[string(m)] {
			continue
		}
		sp := bytes.LastIndexByte(line, ' ')
		ts, err := strconv.ParseInt(string(line[sp+1:]), 10, 64)
		if err != nil || ts < p.from || ts >= p.til {
			continue
		}
		if a > p.acked[ts] {
			p.acked[ts] = a
		}
	}
}

// measurement is a line's measurement name: up to the first unescaped
// comma or space.
func measurement(line []byte) []byte {
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case ',', ' ':
			return line[:i]
		}
	}
	return line
}

// latency returns the timed samples' latencies, sorted.
func (p *influxProxy) latency() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]time.Duration, 0, len(p.acked))
	for ts, a := range p.acked {
		out = append(out, time.Duration(a-ts))
	}
	slices.Sort(out)
	return out
}

// refused is the number of writes influxd did not acknowledge.
func (p *influxProxy) refused() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failures
}

// count is the number of acknowledged points of measurement m and when
// the last was acknowledged.
func (p *influxProxy) count(m string) (int64, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lines[m], p.lastAck[m]
}

// pct is the p-th percentile (0-100) of sorted durations.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}
