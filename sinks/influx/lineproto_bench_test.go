package influx

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/meshd/meshd/sinks/influx/spool"
)

// The encoder in lineproto.go is kept instead of line-protocol/v2's
// because of BenchmarkLineProtocol (figures in doc.go). These tests hold
// it to the library: on the same points, both write the same bytes.

// benchPoints returns points shaped like the sink's: per 10, six BMP
// route events (six tags, AS path and communities), three neighbor
// state points and one per-AFI prefix count, over 1,000 neighbors.
func benchPoints(n int) []point {
	ts := time.Unix(1_700_000_000, 0).UnixNano()
	out := make([]point, n)
	for i := range out {
		nbr := fmt.Sprintf("10.%d.%d.1", i/250%250, i%250)
		router := fmt.Sprintf("edge%02d", i%40)
		p := &out[i]
		p.ts = ts + int64(i)*int64(time.Millisecond)
		switch i % 10 {
		case 0, 1, 2, 3, 4, 5:
			p.meas = mBMPRoute
			action := "announce"
			if i%7 == 0 {
				action = "withdraw"
			}
			p.tags = []tag{{"router", router}, {"network_instance", "default"}, {"neighbor", nbr},
				{"afi_safi", "IPV4_UNICAST"}, {"rib", "adj-rib-in-pre"}, {"action", action}}
			p.fields = []field{
				{"prefix", strV(fmt.Sprintf("198.%d.%d.0/24", i/256%256, i%256))},
				{"as_path", strV(fmt.Sprintf("4200000001 65%03d 3356 %d", i%1000, 64512+i%1000))},
				{"origin_as", intV(int64(64512 + i%1000))},
				{"next_hop", strV(nbr)},
				{"local_pref", intV(100)},
				{"communities", strV("65000:100 65000:200 no-export")},
			}
		case 6, 7, 8:
			p.meas = mNeighbor
			p.tags = []tag{{"router", router}, {"network_instance", "default"}, {"neighbor", nbr}, {"peer_as", "4200000002"}}
			p.fields = []field{
				{"session_state", strV("ESTABLISHED")},
				{"established_transitions", intV(int64(i % 9))},
				{"last_established", intV(ts - int64(i)*int64(time.Second))},
				{"messages_received_update", intV(int64(i * 31))},
				{"messages_sent_update", intV(int64(i * 7))},
				{"hold_time", intV(90)},
				{"keepalive_interval", intV(30)},
				{"up", boolV(true)},
				{"rtt_ms", floatV(float64(i%97) + 0.125)},
			}
		default:
			p.meas = mNeighborAfi
			p.tags = []tag{{"router", router}, {"network_instance", "default"}, {"neighbor", nbr}, {"peer_as", "4200000002"}, {"afi_safi", "IPV4_UNICAST"}}
			p.fields = []field{{"received", intV(int64(i % 1000))}, {"installed", intV(int64(i % 900))}, {"sent", intV(12)}}
		}
	}
	return out
}

// libAppend encodes p with line-protocol/v2's encoder, tags and fields
// sorted and empty tags left out as lineproto.go does.
func libAppend(e *lineprotocol.Encoder, p *point, ts int64) {
	sortTags(p.tags)
	sortFields(p.fields)
	e.StartLine(p.meas)
	for _, t := range p.tags {
		if t.v != "" {
			e.AddTag(t.k, t.v)
		}
	}
	for _, f := range p.fields {
		var v lineprotocol.Value
		switch f.v.k {
		case kInt:
			v = lineprotocol.IntValue(f.v.i)
		case kFloat:
			v, _ = lineprotocol.FloatValue(f.v.f)
		case kBool:
			v = lineprotocol.BoolValue(f.v.b)
		default:
			v, _ = lineprotocol.StringValue(f.v.s)
		}
		e.AddField(f.k, v)
	}
	e.EndLine(time.Unix(0, ts))
}

// TestLineProtocolMatchesLibrary: lineproto.go writes, byte for byte,
// what line-protocol/v2's encoder writes for the same points, escaping
// included. (Newlines are outside the comparison: the library refuses
// them, lineproto.go turns them into a space or \n.)
func TestLineProtocolMatchesLibrary(t *testing.T) {
	pts := benchPoints(200)
	pts = append(pts,
		point{meas: "bgp neighbor,x", tags: []tag{{"router", "edge 1,a=b"}, {"neighbor", `fe80::1%eth0\x`}, {"empty", ""}},
			fields: []field{{"desc ription", strV(`say "hi" \ bye`)}, {"a=b,c", intV(-42)}, {"f", floatV(1e21)}, {"g", floatV(-0.5)}, {"ok", boolV(false)}}, ts: 1},
		point{meas: mNeighbor, tags: []tag{{"router", "r"}}, fields: []field{{"big", floatV(123456789.125)}, {"tiny", floatV(1e-9)}, {"zero", intV(0)}}, ts: 2},
	)
	for i := range pts {
		p := &pts[i]
		got, ok := newEncoder().appendPoint(nil, p)
		if !ok {
			t.Fatalf("point %d not encoded", i)
		}
		var e lineprotocol.Encoder
		e.SetPrecision(lineprotocol.Nanosecond)
		libAppend(&e, p, p.ts)
		if err := e.Err(); err != nil {
			t.Fatalf("point %d: line-protocol/v2: %v", i, err)
		}
		if string(got) != string(e.Bytes()) {
			t.Errorf("point %d:\nmeshd: %s\nlib:   %s", i, got, e.Bytes())
		}
	}
}

// BenchmarkLineProtocol encodes the same realistic points three ways:
// lineproto.go as the sink runs it (with each series' timestamps kept
// unique), line-protocol/v2's encoder alone (less work: no timestamp
// bookkeeping), and line-protocol/v2 with the same bookkeeping, which is
// what the sink would cost with the library.
func BenchmarkLineProtocol(b *testing.B) {
	const n = 10000
	pts := benchPoints(n)
	b.Run("lineproto.go", func(b *testing.B) {
		enc := newEncoder()
		buf := make([]byte, 0, 1<<20)
		b.ReportAllocs()
		cpu0 := cpuTime()
		for i := range b.N {
			if i%n == 0 {
				buf = buf[:0]
			}
			buf, _ = enc.appendPoint(buf, &pts[i%n])
		}
		reportCPU(b, cpu0, "cpu-ns/point")
	})
	b.Run("line-protocol-v2", func(b *testing.B) {
		var e lineprotocol.Encoder
		e.SetPrecision(lineprotocol.Nanosecond)
		e.SetBuffer(make([]byte, 0, 1<<20))
		b.ReportAllocs()
		cpu0 := cpuTime()
		for i := range b.N {
			if i%n == 0 {
				e.Reset()
			}
			p := &pts[i%n]
			libAppend(&e, p, p.ts)
		}
		if err := e.Err(); err != nil {
			b.Fatal(err)
		}
		reportCPU(b, cpu0, "cpu-ns/point")
	})
	b.Run("line-protocol-v2+unique-time", func(b *testing.B) {
		var e lineprotocol.Encoder
		e.SetPrecision(lineprotocol.Nanosecond)
		e.SetBuffer(make([]byte, 0, 1<<20))
		enc := newEncoder()
		var key []byte
		b.ReportAllocs()
		cpu0 := cpuTime()
		for i := range b.N {
			if i%n == 0 {
				e.Reset()
			}
			p := &pts[i%n]
			key = appendSeriesKey(key[:0], p)
			var ts int64
			if tl, route := enc.timelineKey(key, p); route {
				ts = bumpInOrder(enc.lastOf(tl), p.ts)
			} else {
				ts = enc.uniqueTime(tl, p.ts)
			}
			libAppend(&e, p, ts)
		}
		if err := e.Err(); err != nil {
			b.Fatal(err)
		}
		reportCPU(b, cpu0, "cpu-ns/point")
	})
}

// cpuTime is the process's user and system CPU time: on a shared,
// noisy machine CPU per point says more than wall-clock ns/op.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, since time.Duration, unit string) {
	b.ReportMetric(float64((cpuTime()-since).Nanoseconds())/float64(b.N), unit)
}

// BenchmarkWriteRequest sends one batch of 5,000 points (1.5 MB of
// line protocol, as the spool hands it over) to a local HTTP server
// that reads and discards it: the sink's write (the client's HTTP
// service, gzip with a pooled BestSpeed writer) against the client's
// WriteAPIBlocking.WriteRecord, plain and gzipped. Both include the
// server's share of the CPU, which is the same for both.
func BenchmarkWriteRequest(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	pts := benchPoints(5000)
	enc := newEncoder()
	var data []byte
	for i := range pts {
		data, _ = enc.appendPoint(data, &pts[i])
	}
	batch := spool.Batch{Data: data, Points: len(pts)}
	for _, gz := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "gzip"}[gz]
		b.Run("sink/"+name, func(b *testing.B) {
			cfg := Config{URL: srv.URL, Database: "meshd", SpoolDir: b.TempDir(), Gzip: gz}
			s, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close(context.Background())
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			cpu0 := cpuTime()
			for range b.N {
				if err := s.write(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu0, "cpu-ns/batch")
		})
		b.Run("WriteAPIBlocking/"+name, func(b *testing.B) {
			c := influxdb2.NewClientWithOptions(srv.URL, "", influxdb2.DefaultOptions().SetUseGZip(gz).SetLogLevel(0))
			defer c.Close()
			w := c.WriteAPIBlocking("", "meshd")
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			cpu0 := cpuTime()
			for range b.N {
				// The spool's bytes become the string the API takes.
				if err := w.WriteRecord(context.Background(), string(data)); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu0, "cpu-ns/batch")
		})
	}
}
