package match_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/meshd/meshd/probe/internal/synth"
	"github.com/meshd/meshd/probe/match"
	"github.com/meshd/meshd/probe/packet"
)

var (
	a4 = netip.MustParseAddrPort("192.0.2.1:33001")
	b4 = netip.MustParseAddrPort("192.0.2.2:179")
	a6 = netip.MustParseAddrPort("[2001:db8::1]:179")
	b6 = netip.MustParseAddrPort("[2001:db8::2]:40000")
)

const ms = int64(time.Millisecond)

type result struct {
	samples  []int64 // RTTs of samples from side A (ns)
	methods  []match.Method
	samplesB []int64
	losses   map[match.LossReason]int
	msgs     map[uint8]int // by type, both directions
	kaA      int           // keepalives sent by A
	ttls     []uint8       // TTL events from B
	tr       *match.Tracker
}

func run(t *testing.T, s *synth.Session, expireAt int64) result {
	t.Helper()
	r := result{losses: map[match.LossReason]int{}, msgs: map[uint8]int{}}
	var flowA match.Dir
	r.tr = match.New(match.Config{Port: 179}, func(e *match.Event) {
		fromA := e.Flow.Key.Endpoint(e.Dir) == s.A
		switch e.Kind {
		case match.Sample:
			if fromA {
				r.samples = append(r.samples, e.RTT)
				r.methods = append(r.methods, e.Method)
			} else {
				r.samplesB = append(r.samplesB, e.RTT)
			}
		case match.Loss:
			if fromA {
				r.losses[e.Reason]++
			}
		case match.Message:
			r.msgs[e.MsgTyp]++
			if fromA && e.MsgTyp == 4 {
				r.kaA++
			}
		case match.TTL:
			if !fromA {
				r.ttls = append(r.ttls, e.TTL)
			}
		}
		_ = flowA
	})
	var p packet.Packet
	for _, f := range s.Frames {
		if err := packet.Decode(s.Link, f.Data, &p); err != nil {
			t.Fatalf("decode: %v", err)
		}
		r.tr.Packet(&p, f.Time)
	}
	if expireAt != 0 {
		r.tr.Expire(expireAt)
	}
	return r
}

func eq(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestScenarios(t *testing.T) {
	t0 := int64(1_700_000_000) * 1e9
	tests := []struct {
		name     string
		a, b     netip.AddrPort
		build    func(s *synth.Session)
		expireAt int64
		samples  []int64
		samplesB []int64
		losses   map[match.LossReason]int
		methods  []match.Method
		kaA      int
	}{{
		name: "keepalive-each-way",
		build: func(s *synth.Session) {
			s.Segment(0, t0, synth.Keepalive())
			s.Ack(1, t0+20*ms)
			s.Segment(1, t0+1000*ms, synth.Keepalive())
			s.Ack(0, t0+1000*ms+50_000)
		},
		samples: []int64{20 * ms}, samplesB: []int64{50_000}, kaA: 1,
	}, {
		name: "ipv6-keepalive",
		a:    a6, b: b6,
		build: func(s *synth.Session) {
			s.Segment(0, t0, synth.Keepalive())
			s.Ack(1, t0+3*ms)
		},
		samples: []int64{3 * ms}, kaA: 1,
	}, {
		name: "keepalive-split-across-segments",
		build: func(s *synth.Session) {
			s.Segment(0, t0-10*ms, synth.Open()) // frames the stream
			k := synth.Keepalive()
			s.Segment(0, t0, k[:7])
			s.Segment(0, t0+1*ms, k[7:])
			s.Ack(1, t0+11*ms)
		},
		samples: []int64{10 * ms}, kaA: 1,
	}, {
		name: "update-split-then-keepalive",
		build: func(s *synth.Session) {
			u := synth.Update(3000)
			k := synth.Keepalive()
			s.Segment(0, t0, u[:1448])
			s.Segment(0, t0, u[1448:2896])
			s.Segment(0, t0, append(u[2896:], k...)) // tail of UPDATE + KEEPALIVE
			s.Ack(1, t0+5*ms)
		},
		samples: []int64{5 * ms}, kaA: 1,
	}, {
		name: "several-messages-in-one-segment",
		build: func(s *synth.Session) {
			var b []byte
			b = append(b, synth.Update(40)...)
			b = append(b, synth.Keepalive()...)
			b = append(b, synth.Message(5, 4)...)
			b = append(b, synth.Keepalive()...)
			s.Segment(0, t0, b)
			s.Ack(1, t0+7*ms)
		},
		// Both keepalives are covered by one ACK: only the newest samples.
		samples: []int64{7 * ms}, kaA: 2,
	}, {
		name: "retransmitted-keepalive-is-loss",
		build: func(s *synth.Session) {
			seq := s.Seq(0)
			s.Segment(0, t0, synth.Keepalive())
			s.SegmentAt(0, t0+200*ms, seq, synth.Keepalive(), s.Seq(1))
			s.Ack(1, t0+220*ms)
			s.Segment(0, t0+3000*ms, synth.Keepalive())
			s.Ack(1, t0+3020*ms)
		},
		samples: []int64{20 * ms}, losses: map[match.LossReason]int{match.Retransmitted: 1}, kaA: 2,
	}, {
		// Seen on a lab link whose user-space bridge stalled 270 ms: the
		// ACK of the first sending came after the retransmission, and
		// echoed the first sending's TSval.
		name: "spurious-retransmission-is-not-loss",
		build: func(s *synth.Session) {
			seq := s.Seq(0)
			s.Segment(0, t0, synth.Keepalive())
			first := s.TSval(0)
			s.SegmentAt(0, t0+214*ms, seq, synth.Keepalive(), s.Seq(1))
			s.AckEchoing(1, t0+268*ms, first)
			s.Segment(0, t0+3000*ms, synth.Keepalive())
			s.Ack(1, t0+3002*ms)
		},
		samples: []int64{2 * ms}, kaA: 2,
	}, {
		name: "retransmitted-keepalive-unacknowledged-is-loss",
		build: func(s *synth.Session) {
			seq := s.Seq(0)
			s.Segment(0, t0, synth.Keepalive())
			s.SegmentAt(0, t0+214*ms, seq, synth.Keepalive(), s.Seq(1))
		},
		expireAt: t0 + 1500*ms,
		losses:   map[match.LossReason]int{match.Retransmitted: 1}, kaA: 1,
	}, {
		name: "unacknowledged-keepalive-times-out",
		build: func(s *synth.Session) {
			s.Segment(0, t0, synth.Keepalive())
		},
		expireAt: t0 + 11_000*ms,
		losses:   map[match.LossReason]int{match.Unacknowledged: 1}, kaA: 1,
	}, {
		name: "ack-covering-later-update-is-not-a-sample",
		build: func(s *synth.Session) {
			s.TS = false
			s.Segment(0, t0, synth.Keepalive())
			s.Segment(0, t0+30*ms, synth.Update(50))
			s.Ack(1, t0+40*ms)
		},
		kaA: 1,
	}, {
		name: "tsecr-vouches-for-coalesced-ack",
		build: func(s *synth.Session) {
			s.Segment(0, t0, synth.Keepalive())
			// Same millisecond: the UPDATE carries the same TSval, and the
			// ACK echoes it.
			s.Segment(0, t0+100_000, synth.Update(50))
			s.Ack(1, t0+9*ms)
		},
		samples: []int64{9 * ms}, methods: []match.Method{match.TSEcho}, kaA: 1,
	}, {
		name: "partial-ack-then-full",
		build: func(s *synth.Session) {
			start := s.Seq(0)
			s.Segment(0, t0, synth.Update(100))
			s.Segment(0, t0+1*ms, synth.Keepalive())
			s.SegmentAt(1, t0+2*ms, s.Seq(1), nil, start+119) // covers the UPDATE only
			s.Ack(1, t0+4*ms)
		},
		samples: []int64{3 * ms}, kaA: 1,
	}, {
		name: "handshake-open-keepalive",
		build: func(s *synth.Session) {
			s.Handshake(t0, 2*ms)
			s.Segment(0, t0+3*ms, synth.Open())
			s.Segment(1, t0+4*ms, synth.Open())
			s.Segment(0, t0+5*ms, synth.Keepalive())
			s.Ack(1, t0+7*ms)
		},
		samples: []int64{2 * ms}, kaA: 1,
	}, {
		name: "joined-mid-message",
		build: func(s *synth.Session) {
			u := synth.Update(500)
			s.Segment(0, t0, u[100:]) // the capture starts inside an UPDATE
			s.Segment(0, t0+1*ms, synth.Keepalive())
			s.Ack(1, t0+2*ms)
		},
		samples: []int64{1 * ms}, kaA: 1,
	}, {
		name: "gap-in-capture-resyncs",
		build: func(s *synth.Session) {
			u := synth.Update(500)
			s.Segment(0, t0, u[:200])
			seq := s.Seq(0)
			s.Segment(0, t0, u[200:300]) // lost by the capture below
			s.Frames = s.Frames[:len(s.Frames)-1]
			_ = seq
			s.Segment(0, t0, u[300:])
			s.Segment(0, t0+1*ms, synth.Keepalive())
			s.Ack(1, t0+6*ms)
		},
		samples: []int64{5 * ms}, kaA: 1,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tc.a, tc.b
			if !a.IsValid() {
				a, b = a4, b4
			}
			s := synth.NewSession(a, b, packet.LinkEthernet)
			tc.build(s)
			r := run(t, s, tc.expireAt)
			if !eq(r.samples, tc.samples) {
				t.Errorf("samples A %v, want %v", r.samples, tc.samples)
			}
			if tc.samplesB != nil && !eq(r.samplesB, tc.samplesB) {
				t.Errorf("samples B %v, want %v", r.samplesB, tc.samplesB)
			}
			for k, v := range tc.losses {
				if r.losses[k] != v {
					t.Errorf("losses %v, want %v", r.losses, tc.losses)
				}
			}
			if tc.losses == nil && len(r.losses) != 0 {
				t.Errorf("losses %v, want none", r.losses)
			}
			if tc.methods != nil {
				for i, m := range tc.methods {
					if i >= len(r.methods) || r.methods[i] != m {
						t.Errorf("methods %v, want %v", r.methods, tc.methods)
					}
				}
			}
			if r.kaA != tc.kaA {
				t.Errorf("keepalives from A %d, want %d", r.kaA, tc.kaA)
			}
		})
	}
}

func TestTTLEvents(t *testing.T) {
	s := synth.NewSession(a4, b4, packet.LinkEthernet)
	s.Segment(1, 1e9, synth.Keepalive())
	s.Ack(1, 2e9)
	s.TTL[1] = 62
	s.Ack(1, 3e9)
	r := run(t, s, 0)
	if len(r.ttls) != 2 || r.ttls[0] != 63 || r.ttls[1] != 62 {
		t.Fatalf("TTL events %v, want [63 62]", r.ttls)
	}
}

func TestMessagesCountedOnceDespiteRetransmission(t *testing.T) {
	s := synth.NewSession(a4, b4, packet.LinkEthernet)
	seq := s.Seq(0)
	u := synth.Update(100)
	s.Segment(0, 1e9, u)
	s.SegmentAt(0, 2e9, seq, u, s.Seq(1))
	r := run(t, s, 0)
	if r.msgs[2] != 1 {
		t.Fatalf("UPDATEs counted %d, want 1", r.msgs[2])
	}
}

func TestFlowEndsOnRST(t *testing.T) {
	s := synth.NewSession(a4, b4, packet.LinkEthernet)
	s.Segment(0, 1e9, synth.Keepalive())
	f := synth.Seg{Src: b4, Dst: a4, Flags: packet.FlagRST}.Frame(packet.LinkEthernet)
	s.Frames = append(s.Frames, synth.Frame{Time: 2e9, Data: f})
	r := run(t, s, 0)
	if r.tr.Flows() != 0 {
		t.Fatalf("%d flows after RST", r.tr.Flows())
	}
}

func TestPacketNoAlloc(t *testing.T) {
	s := synth.NewSession(a4, b4, packet.LinkEthernet)
	for i := int64(0); i < 4; i++ {
		s.Segment(0, i*1e9, synth.Keepalive())
		s.Ack(1, i*1e9+1e6)
	}
	tr := match.New(match.Config{}, func(*match.Event) {})
	ps := make([]packet.Packet, len(s.Frames))
	for i, f := range s.Frames {
		if err := packet.Decode(s.Link, f.Data, &ps[i]); err != nil {
			t.Fatal(err)
		}
	}
	tr.Packet(&ps[0], 0) // creates the flow
	i := 0
	n := testing.AllocsPerRun(200, func() {
		tr.Packet(&ps[i%len(ps)], int64(i))
		i++
	})
	if n != 0 {
		t.Fatalf("Packet allocates %v times per segment", n)
	}
}

func FuzzTracker(f *testing.F) {
	f.Add([]byte{0, 19, 1, 19, 0, 0, 2}, synth.Keepalive())
	f.Add([]byte{0, 7, 0, 12, 1, 0, 0, 30}, append(synth.Update(20), synth.Keepalive()...))
	f.Add([]byte{2, 5, 3, 40, 0, 100}, append(synth.Open(), synth.Keepalive()...))
	// ops is a script: pairs (op, n). Op 0/1: A sends the next n bytes of
	// stream (1: as a retransmission of the last n), op 2: B ACKs all,
	// op 3: B sends n bytes of stream.
	f.Fuzz(func(t *testing.T, ops []byte, stream []byte) {
		if len(stream) == 0 {
			return
		}
		s := synth.NewSession(a4, b4, packet.LinkRaw)
		pos := 0
		now := int64(0)
		for i := 0; i+1 < len(ops) && i < 200; i += 2 {
			n := int(ops[i+1])
			now += int64(n) * 1000
			switch ops[i] % 4 {
			case 0:
				end := min(pos+n, len(stream))
				s.Segment(0, now, stream[pos:end])
				pos = end % len(stream)
			case 1:
				back := min(n, pos)
				s.SegmentAt(0, now, s.Seq(0)-uint32(back), stream[pos-back:pos], s.Seq(1))
			case 2:
				s.Ack(1, now)
			case 3:
				s.Segment(1, now, stream[:min(n, len(stream))])
			}
		}
		tr := match.New(match.Config{}, func(e *match.Event) {
			if e.Kind == match.Sample && e.RTT < 0 {
				t.Fatalf("negative RTT %d", e.RTT)
			}
		})
		var p packet.Packet
		for _, fr := range s.Frames {
			if err := packet.Decode(packet.LinkRaw, fr.Data, &p); err != nil {
				t.Fatal(err)
			}
			tr.Packet(&p, fr.Time)
		}
		tr.Expire(now + int64(time.Hour))
		if tr.Flows() != 0 {
			t.Fatalf("idle flow survived expiry")
		}
	})
}

// drive feeds s's frames through a tracker with Expire every 100 ms of
// capture time, as a live probe calls it, up to until, and returns the
// losses of A's keepalives by reason with the time of each.
func drive(t *testing.T, s *synth.Session, until int64) (map[match.LossReason]int, []int64) {
	t.Helper()
	losses := map[match.LossReason]int{}
	var at []int64
	tr := match.New(match.Config{Port: 179}, func(e *match.Event) {
		if e.Kind == match.Loss && e.Flow.Key.Endpoint(e.Dir) == s.A {
			losses[e.Reason]++
			at = append(at, e.Time)
		}
	})
	var p packet.Packet
	next := int64(0)
	tick := func(now int64) {
		if next == 0 {
			next = now
		}
		for ; next <= now; next += 100 * ms {
			tr.Expire(next)
		}
	}
	for _, f := range s.Frames {
		tick(f.Time)
		if err := packet.Decode(s.Link, f.Data, &p); err != nil {
			t.Fatalf("decode: %v", err)
		}
		tr.Packet(&p, f.Time)
	}
	tick(until)
	return losses, at
}

// TestLossBound: a keepalive not acknowledged within the loss bound
// (3 × recent RTT, at least 1 s) is lost, long before the hold time.
func TestLossBound(t *testing.T) {
	t0 := int64(1_700_000_000) * 1e9
	tests := []struct {
		name  string
		rtt   int64 // of the acknowledged keepalives before the last
		until int64 // after the last keepalive's sending
		want  int
	}{
		{"fast-path-within-floor", 20 * ms, 900 * ms, 0},
		{"fast-path-past-floor", 20 * ms, 1100 * ms, 1},
		{"delayed-acks-within-floor", 200 * ms, 900 * ms, 0},
		{"slow-path-within-3rtt", 500 * ms, 1400 * ms, 0},
		{"slow-path-past-3rtt", 500 * ms, 1600 * ms, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := synth.NewSession(a4, b4, packet.LinkEthernet)
			var last int64
			for i := int64(0); i < 4; i++ {
				last = t0 + i*3000*ms
				s.Segment(0, last, synth.Keepalive())
				if i < 3 {
					s.Ack(1, last+tc.rtt)
				}
			}
			losses, _ := drive(t, s, last+tc.until)
			if got := losses[match.Unacknowledged]; got != tc.want {
				t.Errorf("unacknowledged losses %d, want %d (%v)", got, tc.want, losses)
			}
		})
	}
}

// TestMissingKeepalives: when a sender's keepalives stop appearing on the
// wire (its link is down: no route, nothing sent), each one due counts as
// lost once its interval and the loss bound have passed, at most three
// per silence; jittered intervals, a closed session and a sender whose
// interval is not known yet count none.
func TestMissingKeepalives(t *testing.T) {
	t0 := int64(1_700_000_000) * 1e9
	sec := 1000 * ms
	tests := []struct {
		name  string
		gaps  []int64 // between A's keepalives, each ACKed at once
		fin   bool
		until int64 // after the last keepalive
		want  []int64
	}{
		{"none-before-interval-and-bound", []int64{3 * sec, 3 * sec, 3 * sec}, false, 3900 * ms, nil},
		{"one-after-4s", []int64{3 * sec, 3 * sec, 3 * sec}, false, 4200 * ms, []int64{4100 * ms}},
		{"two-after-7s", []int64{3 * sec, 3 * sec, 3 * sec}, false, 7200 * ms, []int64{4100 * ms, 7100 * ms}},
		{"at-most-three", []int64{3 * sec, 3 * sec, 3 * sec}, false, 60 * sec, []int64{4100 * ms, 7100 * ms, 10100 * ms}},
		{"jittered-interval", []int64{3 * sec, 2250 * ms, 2900 * ms, 2300 * ms, 3 * sec, 2250 * ms}, false, 3900 * ms, nil},
		{"closed", []int64{3 * sec, 3 * sec}, true, 60 * sec, nil},
		{"interval-unknown", nil, false, 60 * sec, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := synth.NewSession(a4, b4, packet.LinkEthernet)
			last := t0
			s.Segment(0, last, synth.Keepalive())
			s.Ack(1, last+ms)
			for _, g := range tc.gaps {
				last += g
				s.Segment(0, last, synth.Keepalive())
				s.Ack(1, last+ms)
			}
			if tc.fin {
				s.FIN(0, last+2*ms)
				s.FIN(1, last+3*ms)
			}
			losses, at := drive(t, s, last+tc.until)
			var rel []int64
			for _, x := range at {
				rel = append(rel, x-last)
			}
			if !eq(rel, tc.want) || losses[match.Unacknowledged]+losses[match.Retransmitted] != 0 {
				t.Errorf("losses %v at %v after the last keepalive, want %d missing at %v", losses, rel, len(tc.want), tc.want)
			}
		})
	}
}

// TestPiggybacked: a sample whose ACK rode on the peer's own keepalive is
// marked, a pure ACK's is not.
func TestPiggybacked(t *testing.T) {
	s := synth.NewSession(a4, b4, packet.LinkEthernet)
	s.Segment(0, 1e9, synth.Keepalive())
	s.Ack(1, 1e9+ms)
	s.Segment(0, 4e9, synth.Keepalive())
	s.Segment(1, 4e9+17*ms, synth.Keepalive()) // carries the ACK
	var got []bool
	tr := match.New(match.Config{Port: 179}, func(e *match.Event) {
		if e.Kind == match.Sample && e.Flow.Key.Endpoint(e.Dir) == s.A {
			got = append(got, e.Piggybacked)
		}
	})
	var p packet.Packet
	for _, f := range s.Frames {
		if err := packet.Decode(s.Link, f.Data, &p); err != nil {
			t.Fatal(err)
		}
		tr.Packet(&p, f.Time)
	}
	if len(got) != 2 || got[0] || !got[1] {
		t.Errorf("piggybacked %v, want [false true]", got)
	}
}
