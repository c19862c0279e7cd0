// Package probe is meshd's on-box keepalive probe: it watches a router's
// BGP sessions on the wire and measures, per peer, the round-trip time from
// each KEEPALIVE the local speaker sends to the peer's TCP ACK covering its
// last byte, plus losses, message counts and the hop count from the peer's
// TTL. Results go out as JSON lines, as change.Change leaves of meshd's
// probe model (for a gNMI target or the merge core), and as hop-change
// events.
//
// The pipeline is capture (probe/capture) → decode (probe/packet) →
// flow matching (probe/match) → per-peer statistics (probe/stats); this
// package wires them and owns nothing but the per-peer records.
//
// # Which side is local
//
// On a router, the local speaker is the endpoint whose address belongs to
// the namespace the probe captures in: Config.LocalAddrs, or when that is
// empty in live mode, the addresses of every interface in the namespace
// (re-read every 30 s). Only keepalives sent from a local address are
// measured, and a record is keyed by the peer's address.
//
// Reading a pcap without LocalAddrs (a host or span-port capture), both
// speakers count as local: each one's keepalives are timed against the
// other's ACKs, giving two records per session, one per direction. The
// capture point sits next to neither speaker then, so each RTT is the
// part of the path beyond the capture point plus the peer's ACK delay.
//
// # Where the clock runs
//
// Frames are timed by the kernel as AF_PACKET sees them: on the way out
// that is after the egress qdisc, on the way in before the ingress
// stack. Delay or loss added by a qdisc on the probe's own egress is
// therefore not seen (it happens before the tap); the same on the peer's
// side, or anywhere on the path, is.
//
// # The peer's ACK policy
//
// The earliest sign that the peer got a keepalive is its ACK, so the RTT
// includes however long the peer's TCP holds that ACK back. Linux ACKs a
// lone segment at once in quick-ack mode but delays it 40-200 ms in its
// interactive (pingpong) mode, which a BGP session enters now and then.
// Such samples show up as p50/p99/jitter above a steady minimum; the
// window's minimum is the path's RTT. A peer under the operator's control
// can be told to ACK at once with `ip route ... quickack 1`.
//
// # Noise, and what the verdict reads
//
// Single samples run long for reasons that are not a change of the
// path, and the verdict (merge) never reads a single sample: it reads
// rtt-recent (the least of the last 5) against rtt-baseline (the least
// of the last hour), see probe/stats, and losses, see probe/match. In
// meshd's namespace lab, tcpdump in the router and on both sides of the
// user-space bridge (internal/wire) put the idle lab's spikes (3-152 ms
// over a 0.2-0.4 ms path, on a 2-core machine at load 5-10) inside the
// bridge: frames waited there, in one direction or both, while the
// peer's turnaround stayed under 0.16 ms (no delayed ACKs: the lab sets
// quickack) and the probe's RTTs equalled tcpdump's. When the bridge
// stalls past the sender's RTO, the keepalive is retransmitted
// spuriously; the ACK echoes the first sending's timestamp, and the
// probe does not count it lost.
//
// A peer that holds its ACK and sends it on its own next message
// (piggybacked) gives samples that time its keepalive timer's phase, not
// the path: after a lab link went down and up, its routes had lost
// quickack, and every one of r1's samples toward r2 (FRR) rode on r2's
// keepalive 4-17 ms later. Such samples stay in the window figures but
// not in rtt-recent and rtt-baseline.
//
// # Config for the CLI (meshd probe)
//
//	Router           --router      target name for gNMI, "router" in JSON (default: host name)
//	NetworkInstance  --network-instance  key in the model (default "default")
//	Netns            --netns       network namespace name (/run/netns) or path; needs CAP_SYS_ADMIN
//	Interfaces       --interface   repeatable; empty = all interfaces
//	Port             --port        BGP port (default 179)
//	Pcap             --pcap        read this pcap/pcapng file instead of capturing
//	LocalAddrs       --local       repeatable; the local speaker's addresses (see above)
//	Window           --window      samples in the sliding window (default 100)
//	WindowAge        --window-age  max sample age in the window (default 10m)
//	LossTimeout      --loss-timeout  the most a keepalive may wait for its ACK (default 10s); below it
//	                               the bound is max(1 s, 3 × recent RTT), see probe/match
//	JSON             --json        write one JSON line per sample and per path change (os.Stdout)
//	Publish          (wiring)      receives the probe-state leaves after each change, for a gNMI target
//	OnEvent          (wiring)      receives hop-change events
//
// Run(ctx, cfg) captures until ctx ends; FromPcap(ctx, cfg) reads cfg.Pcap
// and returns the final per-peer figures.
package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/probe/capture"
	"github.com/meshd/meshd/probe/match"
	"github.com/meshd/meshd/probe/packet"
	"github.com/meshd/meshd/probe/stats"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
)

// Config configures a probe; the zero value of every field has a usable
// default (see the package documentation for the CLI flag of each).
type Config struct {
	Router          string
	NetworkInstance string
	Netns           string
	Interfaces      []string
	Port            uint16
	Pcap            string
	LocalAddrs      []netip.Addr
	Window          int
	WindowAge       time.Duration
	LossTimeout     time.Duration
	IdleTimeout     time.Duration
	MaxPeers        int // bound on per-peer records (default 10000)

	JSON    io.Writer
	Publish func([]change.Change)
	OnEvent func(change.Event)
	// OnSample receives each sample (library use and tests).
	OnSample func(Sample)
	// OnSessionChange is called when the wire shows a session changing:
	// an OPEN or a NOTIFICATION, or its connection closed. It must not
	// block (bgpstate.Poller.Poke).
	OnSessionChange func()
	Logger          *slog.Logger
}

func (c *Config) defaults() {
	if c.Router == "" {
		c.Router, _ = os.Hostname()
	}
	if c.NetworkInstance == "" {
		c.NetworkInstance = "default"
	}
	if c.Port == 0 {
		c.Port = 179
	}
	if c.Window <= 0 {
		c.Window = 100
	}
	if c.WindowAge <= 0 {
		c.WindowAge = 10 * time.Minute
	}
	if c.MaxPeers <= 0 {
		c.MaxPeers = 10000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// PeerKey identifies a measured pair: the local speaker's address and the
// peer's.
type PeerKey struct {
	Local, Peer netip.Addr
}

// Sample is one RTT measurement with the peer's figures after it.
type Sample struct {
	Time            time.Time
	Router          string
	NetworkInstance string
	PeerKey
	RTT    time.Duration
	TSRTT  time.Duration // from the TSval the ACK echoed; 0 without timestamps
	Method string        // "seqack" or "tsecho", see match.Method
	// Piggybacked: the ACK rode on the peer's data (see match.Event).
	Piggybacked bool
	Peer        PeerState
}

// PeerState is a peer's figures at one moment.
type PeerState struct {
	stats.Summary
	Samples            uint64
	Losses             uint64
	LastLoss           int64 // Unix ns, 0 never
	Recent             int64 // least of the last stats.RecentSamples samples not piggybacked, ns
	Baseline           int64 // least RTT over stats.BaselineAge, ns
	KeepalivesSent     uint64
	KeepalivesReceived uint64
	MessagesSeen       uint64
	TTL                uint8
	Hops               uint8
	HopChanges         uint64
	LastHopChange      int64 // Unix ns, 0 never
	TSMismatches       uint64
}

// Counters are the agent's totals, for logs and metrics.
type Counters struct {
	Frames       uint64
	DecodeErrors uint64
	NotTCP       uint64
	Samples      uint64
	Losses       uint64
	HopChanges   uint64
	PeersDropped uint64
}

type peer struct {
	key          PeerKey
	st           *stats.Peer
	tsMismatches uint64
}

// notLocal marks a flow endpoint that is not the local speaker, so the
// lookup is done once per flow.
var notLocal = &peer{}

// Agent is the probe core without a capture: feed it frames with Handle.
// It is not safe for concurrent use, except Snapshot and SetLocalAddrs.
type Agent struct {
	cfg     Config
	tracker *match.Tracker
	pkt     packet.Packet
	peers   map[PeerKey]*peer
	local   atomic.Pointer[[]netip.Addr]
	both    bool
	mu      sync.Mutex // guards peers for Snapshot
	Counter Counters
}

// New returns an Agent. With no local addresses and both set, every
// endpoint is measured (pcap/host mode).
func New(cfg Config, both bool) *Agent {
	cfg.defaults()
	a := &Agent{cfg: cfg, peers: map[PeerKey]*peer{}, both: both}
	a.SetLocalAddrs(cfg.LocalAddrs)
	a.tracker = match.New(match.Config{Port: cfg.Port, LossTimeout: cfg.LossTimeout, IdleTimeout: cfg.IdleTimeout}, a.onEvent)
	return a
}

// SetLocalAddrs replaces the local speaker's addresses; flows already
// seen keep their sides.
func (a *Agent) SetLocalAddrs(addrs []netip.Addr) {
	s := make([]netip.Addr, 0, len(addrs))
	for _, ad := range addrs {
		s = append(s, ad.Unmap())
	}
	slices.SortFunc(s, netip.Addr.Compare)
	a.local.Store(&s)
}

func (a *Agent) isLocal(ad netip.Addr) bool {
	s := *a.local.Load()
	if len(s) == 0 {
		return a.both
	}
	_, ok := slices.BinarySearchFunc(s, ad, netip.Addr.Compare)
	return ok
}

// Handle decodes and processes one frame.
func (a *Agent) Handle(f *capture.Frame) {
	a.Counter.Frames++
	if err := f.Decode(&a.pkt); err != nil {
		if errors.Is(err, packet.ErrNotTCP) || errors.Is(err, packet.ErrFragment) {
			a.Counter.NotTCP++
		} else {
			a.Counter.DecodeErrors++
		}
		return
	}
	a.tracker.Packet(&a.pkt, f.Time)
}

// Expire runs the loss and idle timers up to now (Unix ns).
func (a *Agent) Expire(now int64) { a.tracker.Expire(now) }

// Tracker exposes the flow tracker's counters.
func (a *Agent) Tracker() *match.Tracker { return a.tracker }

// peerOf returns the record measured from endpoint d of f, or nil when
// that endpoint is not local.
func (a *Agent) peerOf(f *match.Flow, d match.Dir) *peer {
	if p, ok := f.Aux[d].(*peer); ok {
		if p == notLocal {
			return nil
		}
		return p
	}
	me, them := f.Key.Endpoint(d).Addr().Unmap(), f.Key.Endpoint(1-d).Addr().Unmap()
	if !a.isLocal(me) {
		f.Aux[d] = notLocal
		return nil
	}
	k := PeerKey{Local: me, Peer: them}
	p := a.peers[k]
	if p == nil {
		if len(a.peers) >= a.cfg.MaxPeers {
			a.Counter.PeersDropped++
			f.Aux[d] = notLocal
			return nil
		}
		p = &peer{key: k, st: stats.NewPeer(a.cfg.Window, a.cfg.WindowAge)}
		a.mu.Lock()
		a.peers[k] = p
		a.mu.Unlock()
	}
	f.Aux[d] = p
	return p
}

func (a *Agent) onEvent(e *match.Event) {
	switch e.Kind {
	case match.Message:
		for d := match.Dir(0); d < 2; d++ {
			p := a.peerOf(e.Flow, d)
			if p == nil {
				continue
			}
			p.st.MessagesSeen++
			if int(e.MsgTyp) < len(p.st.MessagesByType) {
				p.st.MessagesByType[e.MsgTyp]++
			}
			if e.MsgTyp == 4 && e.MsgLen == 19 {
				if d == e.Dir {
					p.st.KeepalivesSent++
				} else {
					p.st.KeepalivesReceived++
				}
			}
		}
		if (e.MsgTyp == 1 || e.MsgTyp == 3) && a.cfg.OnSessionChange != nil {
			a.cfg.OnSessionChange()
		}
	case match.FlowEnd:
		if a.cfg.OnSessionChange != nil {
			a.cfg.OnSessionChange()
		}
	case match.Sample:
		p := a.peerOf(e.Flow, e.Dir)
		if p == nil {
			return
		}
		a.Counter.Samples++
		p.st.AddSample(e.Time, e.RTT, e.Piggybacked)
		if e.Method == match.SeqAck && e.TSRTT != 0 && absDiff(e.TSRTT, e.RTT) > 2*int64(time.Millisecond) {
			// TSval ticks in ms on Linux: beyond two ticks the two
			// methods disagree about which segment was acknowledged.
			p.tsMismatches++
		}
		s := a.sample(p, e)
		a.emitSample(s)
	case match.Loss:
		p := a.peerOf(e.Flow, e.Dir)
		if p == nil {
			return
		}
		a.Counter.Losses++
		p.st.AddLoss(e.Time)
		if a.cfg.JSON != nil {
			a.writeJSON(lossLine{Time: time.Unix(0, e.Time).UTC().Format(time.RFC3339Nano), Event: "loss",
				Router: a.cfg.Router, NetworkInstance: a.cfg.NetworkInstance, Local: p.key.Local.String(),
				Neighbor: p.key.Peer.String(), Reason: e.Reason.String(), Losses: p.st.Losses})
		}
		a.publish(a.state(p, e.Time), e.Time, p.key, true)
	case match.TTL:
		p := a.peerOf(e.Flow, 1-e.Dir)
		if p == nil {
			return
		}
		hc, changed := p.st.ObserveTTL(e.Time, e.TTL)
		if changed {
			a.Counter.HopChanges++
			a.emitHopChange(p, e.Time, hc)
		}
	}
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

func (a *Agent) state(p *peer, now int64) PeerState {
	st := p.st
	return PeerState{
		Summary: st.Window.Summary(now), Samples: st.Samples, Losses: st.Losses, LastLoss: st.LastLoss,
		Recent: st.Recent(), Baseline: st.Baseline.Min(now),
		KeepalivesSent: st.KeepalivesSent, KeepalivesReceived: st.KeepalivesReceived,
		MessagesSeen: st.MessagesSeen, TTL: st.TTL, Hops: st.Hops, HopChanges: st.HopChanges,
		LastHopChange: st.LastHopChange, TSMismatches: p.tsMismatches,
	}
}

func (a *Agent) sample(p *peer, e *match.Event) Sample {
	m := "seqack"
	if e.Method == match.TSEcho {
		m = "tsecho"
	}
	return Sample{
		Time: time.Unix(0, e.Time), Router: a.cfg.Router, NetworkInstance: a.cfg.NetworkInstance,
		PeerKey: p.key, RTT: time.Duration(e.RTT), TSRTT: time.Duration(e.TSRTT), Method: m,
		Piggybacked: e.Piggybacked, Peer: a.state(p, e.Time),
	}
}

func (a *Agent) emitSample(s Sample) {
	if a.cfg.OnSample != nil {
		a.cfg.OnSample(s)
	}
	if a.cfg.JSON != nil {
		a.writeJSON(sampleJSON(s))
	}
	a.publish(s.Peer, s.Time.UnixNano(), s.PeerKey, false)
}

func (a *Agent) emitHopChange(p *peer, now int64, hc stats.HopChange) {
	ev := change.HopChange{
		Time: time.Unix(0, now), Router: a.cfg.Router, NetworkInstance: a.cfg.NetworkInstance,
		Neighbor: p.key.Peer.String(), Source: change.SourceProbe,
		OldHops: uint64(hc.OldHops), NewHops: uint64(hc.NewHops),
		Local: p.key.Local.String(), OldTTL: hc.OldTTL, NewTTL: hc.NewTTL,
	}.Event()
	if a.cfg.OnEvent != nil {
		a.cfg.OnEvent(ev)
	}
	if a.cfg.JSON != nil {
		a.writeJSON(pathChangeJSON{
			Time: ev.Time.UTC().Format(time.RFC3339Nano), Event: "path_change", Router: ev.Router,
			NetworkInstance: ev.NetworkInstance, Local: p.key.Local.String(), Neighbor: ev.Neighbor,
			OldTTL: hc.OldTTL, NewTTL: hc.NewTTL, OldHops: hc.OldHops, NewHops: hc.NewHops,
		})
	}
	a.publish(a.state(p, now), now, p.key, true)
}

func (a *Agent) writeJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	b = append(b, '\n')
	// A broken pipe on stdout should not stop the measurement.
	_, _ = a.cfg.JSON.Write(b)
}

func (a *Agent) publish(st PeerState, now int64, k PeerKey, counterOnly bool) {
	if a.cfg.Publish == nil {
		return
	}
	a.cfg.Publish(Changes(a.cfg.Router, a.cfg.NetworkInstance, k.Peer, st, time.Unix(0, now), counterOnly))
}

// Changes returns the probe-model leaves for a peer's state. With
// counterOnly, only counters and TTL leaves are included (a loss or hop
// change moves those, not the RTT figures).
func Changes(router, ni string, neighbor netip.Addr, st PeerState, t time.Time, counterOnly bool) []change.Change {
	addr := neighbor.String()
	out := make([]change.Change, 0, 20)
	add := func(leaf string, v any) {
		tv := toTyped(v)
		out = append(out, change.Change{Router: router, Path: change.MeshdNeighborPath(ni, addr, "probe", "state", leaf),
			Value: tv, Time: t, Source: change.SourceProbe})
	}
	us := func(ns int64) any { return decimalUS(float64(ns) / 1e3) }
	if !counterOnly && st.N > 0 {
		add("rtt-last", us(st.Last))
		add("rtt-min", us(st.Min))
		add("rtt-max", us(st.Max))
		add("rtt-mean", decimalUS(st.Mean/1e3))
		add("rtt-p50", us(st.P50))
		add("rtt-p99", us(st.P99))
		add("jitter", decimalUS(st.Jitter/1e3))
		if st.Recent != 0 {
			add("rtt-recent", us(st.Recent))
		}
		if st.Baseline != 0 {
			add("rtt-baseline", us(st.Baseline))
		}
		add("last-sample", uint64(st.LastAt))
	}
	add("window-samples", uint64(st.N))
	add("samples", st.Samples)
	add("losses", st.Losses)
	if st.LastLoss != 0 {
		add("last-loss", uint64(st.LastLoss))
	}
	add("keepalives-sent", st.KeepalivesSent)
	add("keepalives-received", st.KeepalivesReceived)
	add("messages-seen", st.MessagesSeen)
	if st.TTL != 0 {
		add("ttl", uint64(st.TTL))
		add("hops", uint64(st.Hops))
	}
	add("hop-changes", st.HopChanges)
	if st.LastHopChange != 0 {
		add("last-hop-change", uint64(st.LastHopChange))
	}
	return out
}

type decimalUS float64

func toTyped(v any) *gpb.TypedValue {
	switch x := v.(type) {
	case decimalUS:
		return change.Decimal(float64(x), 3)
	case uint64:
		return change.Uint(x)
	}
	panic(fmt.Sprintf("probe: no typed value for %T", v))
}

// Snapshot returns every peer's current figures, sorted by key.
func (a *Agent) Snapshot(now time.Time) []Sample {
	a.mu.Lock()
	ps := make([]*peer, 0, len(a.peers))
	for _, p := range a.peers {
		ps = append(ps, p)
	}
	a.mu.Unlock()
	slices.SortFunc(ps, func(x, y *peer) int {
		if c := x.key.Local.Compare(y.key.Local); c != 0 {
			return c
		}
		return x.key.Peer.Compare(y.key.Peer)
	})
	out := make([]Sample, 0, len(ps))
	for _, p := range ps {
		st := a.state(p, now.UnixNano())
		out = append(out, Sample{Time: now, Router: a.cfg.Router, NetworkInstance: a.cfg.NetworkInstance,
			PeerKey: p.key, RTT: time.Duration(st.Last), Peer: st})
	}
	return out
}

// Run captures live (or reads cfg.Pcap when set) until ctx ends or the
// file is read, reporting through cfg's outputs.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Pcap != "" {
		_, err := FromPcap(ctx, cfg)
		return err
	}
	cfg.defaults()
	log := cfg.Logger.With(slog.String("router", cfg.Router), slog.String("netns", cfg.Netns))
	a := New(cfg, false)
	if len(cfg.LocalAddrs) == 0 {
		addrs, err := capture.LocalAddrs(cfg.Netns)
		if err != nil {
			return fmt.Errorf("probe: local addresses: %w", err)
		}
		a.SetLocalAddrs(addrs)
	}
	src, err := capture.OpenLive(capture.LiveConfig{Interfaces: cfg.Interfaces, Port: cfg.Port, Netns: cfg.Netns})
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer src.Close()
	log.Info("probe capturing", slog.Any("interfaces", cfg.Interfaces), slog.Int("port", int(cfg.Port)))

	var wg sync.WaitGroup
	rctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); wg.Wait() }()
	if len(cfg.LocalAddrs) == 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			refreshLocal(rctx, a, cfg.Netns, log)
		}()
	}

	return a.live(ctx, src, func() int64 { return time.Now().UnixNano() }, log)
}

// liveSource is a live capture: frames, or ErrTimeout after an empty
// poll, and the kernel's counters.
type liveSource interface {
	Next() (capture.Frame, error)
	Stats() (packets, drops uint32, err error)
}

// live reads src until ctx ends. The loss timers run on the clock of
// what has been read: the time of the latest frame handled while frames
// come, and the wall clock (now) only once the socket had nothing for a
// poll. A probe that falls behind (a starved CPU) would otherwise count
// keepalives lost whose ACKs are waiting in its socket buffer.
func (a *Agent) live(ctx context.Context, src liveSource, now func() int64, log *slog.Logger) error {
	var lastExpire, lastLog int64
	for ctx.Err() == nil {
		f, err := src.Next()
		wall := now()
		clock := int64(0)
		switch {
		case err == nil:
			a.Handle(&f)
			clock = f.Time
		case errors.Is(err, capture.ErrTimeout):
			clock = wall
		default:
			return fmt.Errorf("probe: capture: %w", err)
		}
		if clock-lastExpire > int64(time.Second) {
			a.Expire(clock)
			lastExpire = clock
		}
		if wall-lastLog > int64(time.Minute) {
			if lastLog != 0 {
				pk, drops, _ := src.Stats()
				logSummary(log, a, slog.Uint64("kernel_packets", uint64(pk)), slog.Uint64("kernel_drops", uint64(drops)))
			}
			lastLog = wall
		}
	}
	logSummary(log, a)
	return nil
}

func refreshLocal(ctx context.Context, a *Agent, netns string, log *slog.Logger) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			addrs, err := capture.LocalAddrs(netns)
			if err != nil {
				log.Warn("probe: re-reading local addresses", slog.Any("err", err))
				continue
			}
			a.SetLocalAddrs(addrs)
		}
	}
}

func logSummary(log *slog.Logger, a *Agent, extra ...any) {
	c := a.Counter
	log.Info("probe summary", append([]any{
		slog.Uint64("frames", c.Frames), slog.Uint64("decode_errors", c.DecodeErrors),
		slog.Uint64("not_tcp", c.NotTCP), slog.Int("flows", a.tracker.Flows()),
		slog.Uint64("samples", c.Samples), slog.Uint64("losses", c.Losses),
		slog.Uint64("hop_changes", c.HopChanges),
	}, extra...)...)
}

// FromPcap reads cfg.Pcap through the probe and returns every peer's final
// figures. Without cfg.LocalAddrs both speakers of each session are
// measured (see the package documentation).
func FromPcap(ctx context.Context, cfg Config) ([]Sample, error) {
	cfg.defaults()
	r, err := capture.OpenFile(cfg.Pcap)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	defer r.Close()
	a := New(cfg, true)
	last, err := Feed(ctx, a, r)
	if err != nil {
		return nil, fmt.Errorf("probe: %s: %w", cfg.Pcap, err)
	}
	logSummary(cfg.Logger.With(slog.String("pcap", cfg.Pcap)), a)
	return a.Snapshot(time.Unix(0, last)), nil
}

// Feed runs every frame of src through a, with timers driven by capture
// time, and returns the time of the last frame.
func Feed(ctx context.Context, a *Agent, src capture.Source) (int64, error) {
	var last, lastExpire int64
	for i := 0; ; i++ {
		if i&1023 == 0 && ctx.Err() != nil {
			return last, ctx.Err()
		}
		f, err := src.Next()
		if err == io.EOF {
			return last, nil
		}
		if err != nil {
			return last, err
		}
		if f.Time > last {
			last = f.Time
		}
		a.Handle(&f)
		if last-lastExpire > int64(time.Second) {
			a.Expire(last)
			lastExpire = last
		}
	}
}
