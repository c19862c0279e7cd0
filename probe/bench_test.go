package probe

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/meshd/meshd/probe/capture"
	"github.com/meshd/meshd/probe/internal/synth"
	"github.com/meshd/meshd/probe/match"
	"github.com/meshd/meshd/probe/packet"
)

// benchPcap builds a pcap of peers sessions from one router, each doing
// rounds of keepalive exchanges (keepalive, ACK, peer keepalive, ACK) and
// an UPDATE every fourth round, interleaved in time order.
func benchPcap(b *testing.B, peers, rounds int) []byte {
	b.Helper()
	var buf bytes.Buffer
	w, err := capture.NewWriter(&buf, packet.LinkEthernet)
	if err != nil {
		b.Fatal(err)
	}
	ss := make([]*synth.Session, peers)
	for i := range ss {
		a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, 1}), 179)
		p := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), uint16(30000+i))
		ss[i] = synth.NewSession(a, p, packet.LinkEthernet)
	}
	t0 := int64(1_700_000_000) * 1e9
	for r := 0; r < rounds; r++ {
		for i, s := range ss {
			t := t0 + int64(r)*3e9 + int64(i)*1e6
			s.Frames = s.Frames[:0]
			if r%4 == 3 {
				s.Segment(0, t, synth.Update(60))
			}
			s.Segment(0, t, synth.Keepalive())
			s.Ack(1, t+200_000)
			s.Segment(1, t+1e9, synth.Keepalive())
			s.Ack(0, t+1e9+50_000)
			for _, f := range s.Frames {
				if err := w.WriteFrame(time.Unix(0, f.Time), f.Data); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	return buf.Bytes()
}

func loadFrames(b *testing.B, data []byte) []capture.Frame {
	r, err := capture.NewFileReader(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	var out []capture.Frame
	for {
		f, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			b.Fatal(err)
		}
		f.Data = append([]byte(nil), f.Data...)
		out = append(out, f)
	}
}

// BenchmarkDecodeMatch is the parser and the matcher on one core, frames
// already in memory: the figure the issue asks for.
func BenchmarkDecodeMatch(b *testing.B) {
	frames := loadFrames(b, benchPcap(b, 1000, 20))
	var samples int
	tr := match.New(match.Config{Port: 179}, func(e *match.Event) {
		if e.Kind == match.Sample {
			samples++
		}
	})
	var p packet.Packet
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		f := &frames[n%len(frames)]
		if f.Decode(&p) == nil {
			tr.Packet(&p, f.Time)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "pkts/s")
}

// BenchmarkAgentFromPcap is the whole agent reading a pcap held in
// memory: file parsing, decoding, matching and per-peer statistics for
// 1000 peers, with sample outputs off.
func BenchmarkAgentFromPcap(b *testing.B) {
	data := benchPcap(b, 1000, 20)
	frames := 0
	b.ReportAllocs()
	for b.Loop() {
		r, err := capture.NewFileReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		a := New(Config{Router: "r"}, true)
		if _, err := Feed(context.Background(), a, r); err != nil {
			b.Fatal(err)
		}
		frames += int(a.Counter.Frames)
	}
	b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "pkts/s")
}

// BenchmarkMemory1000Peers reports the heap held by the agent for 1000
// peers (flows, windows full with 100 samples each, records).
func BenchmarkMemory1000Peers(b *testing.B) {
	frames := loadFrames(b, benchPcap(b, 1000, 101))
	for b.Loop() {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		a := New(Config{Router: "r", LocalAddrs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}, false)
		for i := range frames {
			a.Handle(&frames[i])
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		if len(a.Snapshot(time.Unix(0, frames[len(frames)-1].Time))) != 1000 {
			b.Fatal("not 1000 peers")
		}
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/1000, "heapB/peer")
		runtime.KeepAlive(a)
	}
}
