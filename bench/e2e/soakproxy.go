package e2e

import (
	"bytes"
	"cmp"
	"hash/fnv"
	"net"
	"net/http"
	"slices"
	"time"
)

// The soak harness's faults live in the proxy between meshd and influxd:
// "down" closes its listener and every connection, so meshd's writes are
// refused as by a stopped server; "slow" holds each write before
// forwarding it. influxd itself keeps running and keeps what it has.

// down makes InfluxDB unreachable: connections are refused until up.
func (p *influxProxy) down() { _ = p.srv.Close() }

// up serves again on the same address.
func (p *influxProxy) up() error {
	lis, err := relisten(p.addr)
	if err != nil {
		return err
	}
	p.lis = lis
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(lis)
	return nil
}

// relisten listens on addr again after a listener there was closed: the
// old socket may take a moment to go.
func relisten(addr string) (net.Listener, error) {
	var lis net.Listener
	err := waitFor(10*time.Second, 50*time.Millisecond, func() (bool, error) {
		var err error
		lis, err = net.Listen("tcp", addr)
		return err == nil, nil
	})
	return lis, err
}

// slow holds every write d before forwarding it (0: none).
func (p *influxProxy) slow(d time.Duration) { p.hold.Store(int64(d)) }

// trackKeys starts keeping the key of every acknowledged point, for
// duplicated.
func (p *influxProxy) trackKeys() {
	p.mu.Lock()
	p.track = true
	p.mu.Unlock()
}

// ackedPoint is an acknowledged point: its key (series and time) and a
// hash of its whole line (fields too).
type ackedPoint struct{ key, line uint64 }

// duplicated is the number of points influxd acknowledged more than once:
// the same series and timestamp in two acknowledged writes. InfluxDB keeps
// one point per series and time, so a duplicate is either a re-send of
// the same line (a write retried after influxd had taken it, a spool
// replayed past its last saved acknowledgement), harmless, or a different
// line on the same series and time: overwritten counts those. InfluxDB
// merges two writes of one series and time, the later one's fields
// replacing the earlier one's where both have a field, so an overwrite
// changed a stored value unless the later line only added fields.
func (p *influxProxy) duplicated() (dup, overwritten int64) {
	p.mu.Lock()
	keys := slices.Clone(p.keys)
	p.mu.Unlock()
	slices.SortFunc(keys, func(a, b ackedPoint) int {
		if a.key != b.key {
			return cmp.Compare(a.key, b.key)
		}
		return cmp.Compare(a.line, b.line)
	})
	for i := 1; i < len(keys); i++ {
		if keys[i].key == keys[i-1].key {
			dup++
			if keys[i].line != keys[i-1].line {
				overwritten++
			}
		}
	}
	return dup, overwritten
}

// acknowledged is the number of points influxd has acknowledged, over
// every measurement.
func (p *influxProxy) acknowledged() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for _, c := range p.lines {
		n += c
	}
	return n
}

// pointKey hashes a line's series (measurement and tags) and timestamp,
// which together name one point in InfluxDB.
func pointKey(line []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(seriesOf(line))
	if sp := bytes.LastIndexByte(line, ' '); sp >= 0 {
		_, _ = h.Write(line[sp:])
	}
	return h.Sum64()
}

// lineHash hashes a whole line.
func lineHash(line []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(line)
	return h.Sum64()
}

// seriesOf is a line's measurement and tags: up to the first unescaped
// space.
func seriesOf(line []byte) []byte {
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case ' ':
			return line[:i]
		}
	}
	return line
}
