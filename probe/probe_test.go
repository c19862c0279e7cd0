package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/probe/capture"
	"github.com/meshd/meshd/probe/internal/synth"
	"github.com/meshd/meshd/probe/packet"
)

var update = flag.Bool("update", false, "rewrite the pcap fixtures in testdata/")

const ms = int64(time.Millisecond)

// scenario writes one session into s: handshake, OPENs, then ten rounds
// of keepalives each way. A's keepalive of round i is acknowledged after
// 10+i ms; B's after 100 µs. Round 5 sends a 3000-byte UPDATE split over
// three segments with the keepalive coalesced into the last; round 7's
// keepalive is retransmitted (a loss); from round 8 on B's TTL is one
// lower (a path change).
func scenario(s *synth.Session, t0 int64) {
	s.Handshake(t0, 2*ms)
	s.Segment(0, t0+3*ms, synth.Open())
	s.Segment(1, t0+5*ms, synth.Open())
	s.Segment(0, t0+6*ms, synth.Keepalive())
	s.Ack(1, t0+8*ms)
	s.Segment(1, t0+9*ms, synth.Keepalive())
	s.Ack(0, t0+9*ms+100_000)
	for i := int64(0); i < 10; i++ {
		t := t0 + (i+1)*3000*ms
		if i == 8 {
			s.TTL[1]--
		}
		rtt := (10 + i) * ms
		switch i {
		case 5:
			u := append(synth.Update(3000-19), synth.Keepalive()...)
			s.Segment(0, t, u[:1448])
			s.Segment(0, t, u[1448:2896])
			s.Segment(0, t, u[2896:])
			s.Ack(1, t+rtt)
		case 7:
			seq := s.Seq(0)
			s.Segment(0, t, synth.Keepalive())
			s.SegmentAt(0, t+200*ms, seq, synth.Keepalive(), s.Seq(1))
			s.Ack(1, t+200*ms+rtt)
		default:
			s.Segment(0, t, synth.Keepalive())
			s.Ack(1, t+rtt)
		}
		s.Segment(1, t+1500*ms, synth.Keepalive())
		s.Ack(0, t+1500*ms+100_000)
	}
}

// Expected figures of scenario, for side A.
var (
	wantA = []int64{2 * ms, 10 * ms, 11 * ms, 12 * ms, 13 * ms, 14 * ms, 15 * ms, 16 * ms, 18 * ms, 19 * ms}
)

type fixture struct {
	file string
	link packet.LinkType
	a, b netip.AddrPort
	ng   bool
	mod  func(s *synth.Session)
}

var fixtures = []fixture{
	{file: "ethernet-v4-ts.pcap", link: packet.LinkEthernet, a: netip.MustParseAddrPort("192.0.2.1:33001"), b: netip.MustParseAddrPort("192.0.2.2:179")},
	{file: "qinq-v6-md5.pcap", link: packet.LinkEthernet, a: netip.MustParseAddrPort("[2001:db8::1]:179"), b: netip.MustParseAddrPort("[2001:db8::2]:45000"),
		mod: func(s *synth.Session) { s.VLANs = []uint16{100, 200}; s.MD5 = true }},
	{file: "sll-v4-md5-nots.pcap", link: packet.LinkLinuxSLL, a: netip.MustParseAddrPort("198.51.100.1:179"), b: netip.MustParseAddrPort("198.51.100.2:51000"),
		mod: func(s *synth.Session) { s.MD5 = true; s.TS = false }},
	{file: "sll2-v6-ao.pcapng", link: packet.LinkLinuxSLL2, ng: true, a: netip.MustParseAddrPort("[2001:db8:1::1]:40001"), b: netip.MustParseAddrPort("[2001:db8:1::2]:179"),
		mod: func(s *synth.Session) { s.AO = true; s.TS = false }},
	{file: "raw-v4.pcap", link: packet.LinkRaw, a: netip.MustParseAddrPort("203.0.113.1:179"), b: netip.MustParseAddrPort("203.0.113.2:60000")},
	{file: "null-v6.pcapng", link: packet.LinkNull, ng: true, a: netip.MustParseAddrPort("[fd00::1]:179"), b: netip.MustParseAddrPort("[fd00::2]:50000")},
}

func writeFixture(t *testing.T, fx fixture) {
	s := synth.NewSession(fx.a, fx.b, fx.link)
	if fx.mod != nil {
		fx.mod(s)
	}
	scenario(s, 1_700_000_000*1e9)
	var buf bytes.Buffer
	if fx.ng {
		w, err := capture.NewNGWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range s.Frames {
			if err := w.WriteFrame(time.Unix(0, f.Time), fx.link, f.Data); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		w, err := capture.NewWriter(&buf, fx.link)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range s.Frames {
			if err := w.WriteFrame(time.Unix(0, f.Time), f.Data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join("testdata", fx.file), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFixtures(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.file, func(t *testing.T) {
			if *update {
				writeFixture(t, fx)
			}
			var got []int64
			var hop []change.Event
			var jsonOut bytes.Buffer
			sessionChanges := 0
			cfg := Config{
				Router: "r1", Pcap: filepath.Join("testdata", fx.file), LocalAddrs: []netip.Addr{fx.a.Addr()},
				OnSample:        func(s Sample) { got = append(got, int64(s.RTT)) },
				OnEvent:         func(e change.Event) { hop = append(hop, e) },
				OnSessionChange: func() { sessionChanges++ },
				JSON:            &jsonOut,
			}
			final, err := FromPcap(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(wantA) {
				t.Fatalf("samples %v, want %v", got, wantA)
			}
			for i := range got {
				if got[i] != wantA[i] {
					t.Fatalf("samples %v, want %v", got, wantA)
				}
			}
			if len(final) != 1 {
				t.Fatalf("%d peers, want 1 (router mode)", len(final))
			}
			p := final[0].Peer
			if final[0].PeerKey.Peer != fx.b.Addr() || final[0].Local != fx.a.Addr() {
				t.Errorf("peer key %+v", final[0].PeerKey)
			}
			if p.Samples != 10 || p.Losses != 1 || p.KeepalivesSent != 11 || p.KeepalivesReceived != 11 {
				t.Errorf("samples %d losses %d ka sent %d received %d", p.Samples, p.Losses, p.KeepalivesSent, p.KeepalivesReceived)
			}
			// 2 OPEN + 22 KEEPALIVE + 1 UPDATE.
			if p.MessagesSeen != 25 {
				t.Errorf("messages %d, want 25", p.MessagesSeen)
			}
			// The two OPENs (an UPDATE or a KEEPALIVE is no session change).
			if sessionChanges != 2 {
				t.Errorf("%d session changes seen on the wire, want 2", sessionChanges)
			}
			if p.Min != 2*ms || p.Max != 19*ms || p.P50 != 13*ms || p.Last != 19*ms {
				t.Errorf("window %+v", p.Summary)
			}
			if p.TTL != 62 || p.Hops != 2 || p.HopChanges != 1 {
				t.Errorf("ttl %d hops %d changes %d", p.TTL, p.Hops, p.HopChanges)
			}
			if len(hop) != 1 || hop[0].Fields["old_hops"] != int64(1) || hop[0].Fields["new_hops"] != int64(2) || hop[0].Neighbor != fx.b.Addr().String() {
				t.Errorf("hop events %+v", hop)
			}
			lines := strings.Split(strings.TrimSpace(jsonOut.String()), "\n")
			if len(lines) != 12 { // 10 samples + 1 loss + 1 path change
				t.Errorf("%d JSON lines, want 12", len(lines))
			}
			var loss struct{ Event, Reason string }
			for _, l := range lines {
				if strings.Contains(l, `"event":"loss"`) {
					if err := json.Unmarshal([]byte(l), &loss); err != nil {
						t.Fatalf("JSON line %q: %v", l, err)
					}
				}
			}
			if loss.Reason != "retransmitted" {
				t.Errorf("loss line %+v, want the retransmitted keepalive", loss)
			}
			var first map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
				t.Fatalf("JSON line %q: %v", lines[0], err)
			}
			if first["rtt_us"] != 2000.0 || first["neighbor"] != fx.b.Addr().String() || first["router"] != "r1" {
				t.Errorf("JSON line %v", first)
			}
		})
	}
}

func TestFixtureBothDirections(t *testing.T) {
	fx := fixtures[0]
	final, err := FromPcap(context.Background(), Config{Pcap: filepath.Join("testdata", fx.file)})
	if err != nil {
		t.Fatal(err)
	}
	if len(final) != 2 {
		t.Fatalf("%d records, want one per direction", len(final))
	}
	for _, s := range final {
		switch s.Local {
		case fx.a.Addr():
			if s.Peer.Samples != 10 {
				t.Errorf("A samples %d", s.Peer.Samples)
			}
		case fx.b.Addr():
			// B's keepalives are acknowledged by A 100 µs later, every one.
			if s.Peer.Samples != 11 || s.Peer.Min != 100_000 || s.Peer.Max != 100_000 || s.Peer.Jitter != 0 {
				t.Errorf("B: %+v", s.Peer)
			}
			if s.Peer.TTL != 64 || s.Peer.HopChanges != 0 {
				t.Errorf("B sees A's TTL %d, changes %d", s.Peer.TTL, s.Peer.HopChanges)
			}
		}
	}
}

func TestChanges(t *testing.T) {
	st := PeerState{Samples: 3, TTL: 63, Hops: 1}
	st.N, st.Last, st.Min, st.Max, st.Mean, st.P50, st.P99, st.Jitter, st.LastAt = 3, 1500, 1000, 2000, 1500, 1500, 2000, 500, 42
	cs := Changes("r1", "default", netip.MustParseAddr("192.0.2.2"), st, time.Unix(1, 0), false)
	byLeaf := map[string]*change.Change{}
	for i := range cs {
		elems := cs[i].Path.GetElem()
		byLeaf[elems[len(elems)-1].GetName()] = &cs[i]
	}
	want := change.PathKey(change.MeshdNeighborPath("default", "192.0.2.2", "probe", "state", "rtt-last"))
	if c := byLeaf["rtt-last"]; c == nil || change.PathKey(c.Path) != want {
		t.Fatalf("rtt-last path missing: %v", byLeaf)
	}
	if d := byLeaf["rtt-last"].Value.GetDecimalVal(); d.GetDigits() != 1500 || d.GetPrecision() != 3 {
		t.Errorf("rtt-last %v, want 1.500 µs", d)
	}
	if byLeaf["hops"].Value.GetUintVal() != 1 || byLeaf["samples"].Value.GetUintVal() != 3 {
		t.Errorf("hops/samples wrong")
	}
	if byLeaf["rtt-last"].Router != "r1" || byLeaf["rtt-last"].Source != change.SourceProbe {
		t.Errorf("router/source wrong")
	}
	if cs := Changes("r1", "default", netip.MustParseAddr("192.0.2.2"), st, time.Unix(1, 0), true); len(cs) >= len(byLeaf) {
		t.Errorf("counter-only update has %d leaves", len(cs))
	}
}

// The probe tells its BGP poller to look again when the wire shows a
// session changing: a NOTIFICATION, an OPEN, a reset connection; not a
// KEEPALIVE or an UPDATE.
func TestSessionChangeOnTheWire(t *testing.T) {
	a, b := netip.MustParseAddrPort("192.0.2.1:179"), netip.MustParseAddrPort("192.0.2.2:50000")
	s := synth.NewSession(a, b, packet.LinkEthernet)
	t0 := int64(1_700_000_000 * 1e9)
	var steps []string
	changes := 0
	ag := New(Config{Router: "r1", LocalAddrs: []netip.Addr{a.Addr()}, OnSessionChange: func() { changes++ }}, false)
	feed := func(what string, want int) {
		t.Helper()
		for _, f := range s.Frames {
			ag.Handle(&capture.Frame{Data: f.Data, Time: f.Time, Link: packet.LinkEthernet})
		}
		s.Frames = s.Frames[:0]
		steps = append(steps, what)
		if changes != want {
			t.Fatalf("after %v: %d session changes, want %d", steps, changes, want)
		}
	}
	s.Segment(0, t0, synth.Keepalive())
	s.Ack(1, t0+ms)
	s.Segment(1, t0+2*ms, synth.Update(40))
	feed("keepalive and update", 0)
	s.Segment(1, t0+3*ms, synth.Message(3, 2)) // Cease
	feed("notification", 1)
	s.Frames = append(s.Frames, synth.Frame{Time: t0 + 4*ms,
		Data: synth.Seg{Src: a, Dst: b, Seq: s.Seq(0), Flags: packet.FlagRST, TTL: 64}.Frame(packet.LinkEthernet)})
	feed("reset", 2)
}

// stalledSource hands out its frames, then ends the run; it stands for a
// socket whose frames waited while the probe was starved of CPU.
type stalledSource struct {
	frames []capture.Frame
	cancel context.CancelFunc
}

func (s *stalledSource) Next() (capture.Frame, error) {
	if len(s.frames) == 0 {
		s.cancel()
		return capture.Frame{}, capture.ErrTimeout
	}
	f := s.frames[0]
	s.frames = s.frames[1:]
	return f, nil
}

func (s *stalledSource) Stats() (uint32, uint32, error) { return 0, 0, nil }

// TestLiveClockStalledProbe: a live probe that reads a keepalive and its
// ACK 5 s after they were captured (it was starved) must not count the
// keepalive lost in between: its loss timers run on the frames' clock
// while frames are waiting.
func TestLiveClockStalledProbe(t *testing.T) {
	t0 := int64(1_700_000_000) * 1e9
	s := synth.NewSession(netip.MustParseAddrPort("192.0.2.1:40000"), netip.MustParseAddrPort("192.0.2.2:179"), packet.LinkEthernet)
	s.Segment(0, t0, synth.Keepalive())
	s.Ack(1, t0+ms)
	s.Segment(0, t0+3000*ms, synth.Keepalive())
	s.Ack(1, t0+3001*ms)
	ctx, cancel := context.WithCancel(context.Background())
	src := &stalledSource{cancel: cancel}
	for _, f := range s.Frames {
		src.frames = append(src.frames, capture.Frame{Data: f.Data, Time: f.Time, Link: packet.LinkEthernet})
	}
	var samples int
	a := New(Config{Router: "r1", LocalAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, OnSample: func(Sample) { samples++ }}, false)
	wall := t0 + 5000*ms // every frame is read 2-5 s late
	if err := a.live(ctx, src, func() int64 { return wall }, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if a.Counter.Losses != 0 || samples != 2 {
		t.Errorf("losses %d, samples %d; want 0 and 2", a.Counter.Losses, samples)
	}
}
