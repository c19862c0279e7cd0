// Package gnmisim serves a fleet of simulated gNMI targets on loopback,
// each with BGP neighbors whose OpenConfig state changes at a set rate:
// the load for gnmiclient's benchmark and a stand-in fleet for the lab.
package gnmisim

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	gproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/change"
)

// Config sizes the fleet.
type Config struct {
	Targets   int     // simulated routers
	Neighbors int     // BGP neighbors per router
	Rate      float64 // leaf updates per second per router after sync; 0 = none
	// Tick is how often a router sends its share of Rate (default 10 ms).
	// Routers sample and send every 100 ms or so; that is what a
	// whole-binary benchmark should feed meshd.
	Tick time.Duration
	// Burst, when > 0, makes each router send this many leaf updates as fast
	// as the stream takes them after sync, then stop: a bounded load for
	// throughput benchmarks.
	Burst int
	// BurstGate, when not nil, holds every router's burst until it is
	// closed, so a benchmark can time the burst apart from the sync.
	BurstGate <-chan struct{}
	// Listen is the host to listen on (default 127.0.0.1); each router gets
	// its own port, from BasePort upwards or the kernel's choice when 0.
	Listen   string
	BasePort int
	// Prefix names the routers: Prefix-0001, ...
	Prefix string
	// Sent, when not nil, is told of every notification a router has
	// sent (its timestamp and leaf updates), the sync's included: a
	// harness that counts what arrived downstream by time needs what was
	// sent by time. It is called from many streams at once.
	Sent func(ts int64, leaves int)
}

// Sim is a running fleet.
type Sim struct {
	cfg      Config
	targets  []*target
	sent     atomic.Uint64
	overlaps atomic.Uint64
	wg       sync.WaitGroup
}

type target struct {
	// active counts the target's open Subscribe streams: a router with
	// two is collected twice (Sim.Overlaps).
	active atomic.Int32
	sim    *Sim
	name   string
	addr   string
	srv    *grpc.Server
	lis    net.Listener
	seed   uint64
}

// neighbor is one simulated session's state.
type neighbor struct {
	addr        string
	peerAS      uint32
	state       string
	transitions uint64
	lastEst     uint64
	updRx       uint64
	updTx       uint64
	notifRx     uint64
	pfxRx       uint64
	pfxTx       uint64
	prefix      *gpb.Path // made once, shared by its steps
}

// Start opens every router's listener and serves until ctx ends.
func Start(ctx context.Context, cfg Config) (*Sim, error) {
	if cfg.Targets <= 0 || cfg.Neighbors <= 0 {
		return nil, fmt.Errorf("gnmisim: targets and neighbors must be > 0")
	}
	if cfg.Neighbors > 60000 {
		return nil, fmt.Errorf("gnmisim: at most 60000 neighbors per target")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1"
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "sim"
	}
	s := &Sim{cfg: cfg}
	for i := 0; i < cfg.Targets; i++ {
		port := 0
		if cfg.BasePort > 0 {
			port = cfg.BasePort + i
		}
		lis, err := net.Listen("tcp", net.JoinHostPort(cfg.Listen, fmt.Sprint(port)))
		if err != nil {
			s.stop()
			return nil, fmt.Errorf("gnmisim: target %d: %w", i, err)
		}
		t := &target{sim: s, name: fmt.Sprintf("%s-%04d", cfg.Prefix, i+1), addr: lis.Addr().String(), lis: lis, seed: uint64(i + 1)}
		t.srv = grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{encoding.GetCodecV2(gproto.Name)}))
		gpb.RegisterGNMIServer(t.srv, &server{t: t})
		s.targets = append(s.targets, t)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t.srv.Serve(lis)
		}()
	}
	go func() {
		<-ctx.Done()
		s.stop()
	}()
	return s, nil
}

func (s *Sim) stop() {
	for _, t := range s.targets {
		t.srv.Stop()
	}
}

// Wait returns when every server has stopped.
func (s *Sim) Wait() { s.wg.Wait() }

// Sent is the number of leaf updates sent so far, over all routers.
func (s *Sim) Sent() uint64 { return s.sent.Load() }

// Overlaps is how many Subscribe streams began while the same target had
// another open: what a router sees when two collectors take it at once.
func (s *Sim) Overlaps() uint64 { return s.overlaps.Load() }

// LeavesPerNeighbor is the number of leaves a neighbor's full state has.
const LeavesPerNeighbor = 16

// Targets returns router name -> address.
func (s *Sim) Targets() map[string]string {
	out := make(map[string]string, len(s.targets))
	for _, t := range s.targets {
		out[t.name] = t.addr
	}
	return out
}

// WriteTargetsFile writes a gnmic-format targets file for the fleet.
func (s *Sim) WriteTargetsFile(path string) error {
	names := make([]string, 0, len(s.targets))
	for _, t := range s.targets {
		names = append(names, t.name)
	}
	sort.Strings(names)
	addrs := s.Targets()
	var b strings.Builder
	b.WriteString("# gnmic-format targets file written by meshd sim\n")
	for _, n := range names {
		fmt.Fprintf(&b, "%s:\n  address: %s\n  insecure: true\n  subscriptions: [bgp-neighbors]\n", n, addrs[n])
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func (t *target) neighbors() []*neighbor {
	r := rand.New(rand.NewPCG(t.seed, 7))
	out := make([]*neighbor, t.sim.cfg.Neighbors)
	for i := range out {
		out[i] = &neighbor{
			addr:        fmt.Sprintf("10.%d.%d.%d", t.seed%200, i/250, i%250+1),
			peerAS:      64512 + uint32(i),
			state:       "ESTABLISHED",
			transitions: 1 + r.Uint64N(5),
			lastEst:     uint64(time.Now().Add(-time.Duration(r.Int64N(int64(30 * 24 * time.Hour)))).UnixNano()),
			updRx:       r.Uint64N(100000),
			updTx:       r.Uint64N(100000),
			pfxRx:       r.Uint64N(1000),
			pfxTx:       r.Uint64N(100),
		}
	}
	return out
}

// full is a neighbor's whole state as one notification.
func (n *neighbor) full(enc gpb.Encoding, ts int64) *gpb.Notification {
	prefix := change.NeighborPath("default", n.addr)
	if enc == gpb.Encoding_JSON_IETF || enc == gpb.Encoding_JSON {
		state := map[string]any{
			"neighbor-address": n.addr, "peer-as": n.peerAS, "local-as": 65000,
			"session-state": n.state, "established-transitions": fmt.Sprint(n.transitions),
			"last-established": fmt.Sprint(n.lastEst),
			"messages": map[string]any{
				"received": map[string]any{"UPDATE": fmt.Sprint(n.updRx), "NOTIFICATION": fmt.Sprint(n.notifRx)},
				"sent":     map[string]any{"UPDATE": fmt.Sprint(n.updTx), "NOTIFICATION": "0"},
			},
		}
		af := map[string]any{"afi-safi": []any{map[string]any{
			"afi-safi-name": "openconfig-bgp-types:IPV4_UNICAST",
			"state":         map[string]any{"prefixes": map[string]any{"received": n.pfxRx, "sent": n.pfxTx, "installed": n.pfxRx}},
		}}}
		timers := map[string]any{"hold-time": 90, "keepalive-interval": 30, "negotiated-hold-time": 90}
		js := func(v any) *gpb.TypedValue {
			b, _ := json.Marshal(v)
			if enc == gpb.Encoding_JSON {
				return &gpb.TypedValue{Value: &gpb.TypedValue_JsonVal{JsonVal: b}}
			}
			return &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: b}}
		}
		return &gpb.Notification{Timestamp: ts, Prefix: prefix, Update: []*gpb.Update{
			{Path: elems("state"), Val: js(state)},
			{Path: elems("afi-safis"), Val: js(af)},
			{Path: elems("timers", "state"), Val: js(timers)},
		}}
	}
	u := []*gpb.Update{
		{Path: elems("state", "neighbor-address"), Val: change.String(n.addr)},
		{Path: elems("state", "peer-as"), Val: change.Uint(uint64(n.peerAS))},
		{Path: elems("state", "local-as"), Val: change.Uint(65000)},
		{Path: elems("state", "session-state"), Val: change.String(n.state)},
		{Path: elems("state", "established-transitions"), Val: change.Uint(n.transitions)},
		{Path: elems("state", "last-established"), Val: change.Uint(n.lastEst)},
		{Path: elems("state", "messages", "received", "UPDATE"), Val: change.Uint(n.updRx)},
		{Path: elems("state", "messages", "received", "NOTIFICATION"), Val: change.Uint(n.notifRx)},
		{Path: elems("state", "messages", "sent", "UPDATE"), Val: change.Uint(n.updTx)},
		{Path: elems("state", "messages", "sent", "NOTIFICATION"), Val: change.Uint(0)},
		{Path: afiPath("received"), Val: change.Uint(n.pfxRx)},
		{Path: afiPath("sent"), Val: change.Uint(n.pfxTx)},
		{Path: afiPath("installed"), Val: change.Uint(n.pfxRx)},
		{Path: elems("timers", "state", "hold-time"), Val: change.Uint(90)},
		{Path: elems("timers", "state", "keepalive-interval"), Val: change.Uint(30)},
		{Path: elems("timers", "state", "negotiated-hold-time"), Val: change.Uint(90)},
	}
	return &gpb.Notification{Timestamp: ts, Prefix: prefix, Update: u}
}

// step changes a neighbor the way a busy session does: UPDATE counters
// and prefix counts move; now and then the session flaps. The
// notification is built in sc (a new one if nil), which the next step
// given sc overwrites: gRPC's Send has marshalled a message by the time it
// returns, and a simulated router should allocate little, so that the
// collector's figures are the collector's and not its fleet's garbage.
func (n *neighbor) step(r *rand.Rand, ts int64, sc *stepScratch) *gpb.Notification {
	if sc == nil {
		sc = &stepScratch{}
	}
	n.updRx += 1 + r.Uint64N(3)
	if r.IntN(2) == 0 {
		n.pfxRx++
	} else if n.pfxRx > 0 {
		n.pfxRx--
	}
	u := sc.ptrs[:0]
	add := func(p *gpb.Path, v uint64) {
		i := len(u)
		sc.uints[i].UintVal = v
		sc.vals[i].Value = &sc.uints[i]
		sc.ups[i].Path, sc.ups[i].Val = p, &sc.vals[i]
		u = append(u, &sc.ups[i])
	}
	add(stepPaths.updRx, n.updRx)
	add(stepPaths.pfxRx, n.pfxRx)
	add(stepPaths.pfxInst, n.pfxRx)
	if r.IntN(500) == 0 {
		if n.state == "ESTABLISHED" {
			n.state, n.notifRx = "ACTIVE", n.notifRx+1
			add(stepPaths.notifRx, n.notifRx)
		} else {
			n.state, n.transitions, n.lastEst = "ESTABLISHED", n.transitions+1, uint64(ts)
			add(stepPaths.trans, n.transitions)
			add(stepPaths.lastEst, n.lastEst)
		}
		i := len(u)
		sc.str.StringVal = n.state
		sc.vals[i].Value = &sc.str
		sc.ups[i].Path, sc.ups[i].Val = stepPaths.state, &sc.vals[i]
		u = append(u, &sc.ups[i])
	}
	if n.prefix == nil {
		n.prefix = change.NeighborPath("default", n.addr)
	}
	sc.n.Timestamp, sc.n.Prefix, sc.n.Update = ts, n.prefix, u
	return &sc.n
}

// stepScratch holds the messages of one step: a flap has at most six
// updates, one of them a string.
type stepScratch struct {
	n     gpb.Notification
	ups   [6]gpb.Update
	ptrs  [6]*gpb.Update
	vals  [6]gpb.TypedValue
	uints [6]gpb.TypedValue_UintVal
	str   gpb.TypedValue_StringVal
}

// stepPaths are the paths step sends, shared (read-only) by every step.
var stepPaths = struct {
	updRx, pfxRx, pfxInst, notifRx, trans, lastEst, state *gpb.Path
}{
	updRx:   elems("state", "messages", "received", "UPDATE"),
	pfxRx:   afiPath("received"),
	pfxInst: afiPath("installed"),
	notifRx: elems("state", "messages", "received", "NOTIFICATION"),
	trans:   elems("state", "established-transitions"),
	lastEst: elems("state", "last-established"),
	state:   elems("state", "session-state"),
}

func elems(names ...string) *gpb.Path {
	p := &gpb.Path{Elem: make([]*gpb.PathElem, len(names))}
	for i, n := range names {
		p.Elem[i] = &gpb.PathElem{Name: n}
	}
	return p
}

func afiPath(leaf string) *gpb.Path {
	return &gpb.Path{Elem: []*gpb.PathElem{
		{Name: "afi-safis"}, {Name: "afi-safi", Key: map[string]string{"afi-safi-name": "IPV4_UNICAST"}},
		{Name: "state"}, {Name: "prefixes"}, {Name: leaf},
	}}
}

type server struct {
	gpb.UnimplementedGNMIServer
	t *target
}

func (s *server) Capabilities(context.Context, *gpb.CapabilityRequest) (*gpb.CapabilityResponse, error) {
	return &gpb.CapabilityResponse{
		SupportedModels:    []*gpb.ModelData{{Name: "openconfig-network-instance", Organization: "OpenConfig working group"}},
		SupportedEncodings: []gpb.Encoding{gpb.Encoding_JSON_IETF, gpb.Encoding_JSON, gpb.Encoding_PROTO},
		GNMIVersion:        "0.10.0",
	}, nil
}

func (s *server) Get(_ context.Context, req *gpb.GetRequest) (*gpb.GetResponse, error) {
	now := time.Now().UnixNano()
	resp := &gpb.GetResponse{}
	for _, n := range s.t.neighbors() {
		resp.Notification = append(resp.Notification, n.full(req.GetEncoding(), now))
	}
	return resp, nil
}

func (s *server) Subscribe(stream gpb.GNMI_SubscribeServer) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	list := req.GetSubscribe()
	if list == nil {
		return status.Error(codes.InvalidArgument, "first message must be a SubscriptionList")
	}
	enc := list.GetEncoding()
	switch enc {
	case gpb.Encoding_JSON_IETF, gpb.Encoding_JSON, gpb.Encoding_PROTO:
	default:
		return status.Errorf(codes.Unimplemented, "encoding %v not supported", enc)
	}
	if s.t.active.Add(1) > 1 {
		s.t.sim.overlaps.Add(1)
	}
	defer s.t.active.Add(-1)
	nbrs := s.t.neighbors()
	sendAll := func() error {
		now := time.Now().UnixNano()
		for _, n := range nbrs {
			if err := stream.Send(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: n.full(enc, now)}}); err != nil {
				return err
			}
			s.t.sim.sent.Add(LeavesPerNeighbor)
			if f := s.t.sim.cfg.Sent; f != nil {
				f(now, LeavesPerNeighbor)
			}
		}
		return stream.Send(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_SyncResponse{SyncResponse: true}})
	}
	if !list.GetUpdatesOnly() {
		if err := sendAll(); err != nil {
			return err
		}
	} else if err := stream.Send(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_SyncResponse{SyncResponse: true}}); err != nil {
		return err
	}
	switch list.GetMode() {
	case gpb.SubscriptionList_ONCE:
		return nil
	case gpb.SubscriptionList_POLL:
		for {
			r, err := stream.Recv()
			if err != nil {
				return nil
			}
			if r.GetPoll() == nil {
				return status.Error(codes.InvalidArgument, "POLL subscription: want Poll messages")
			}
			if err := sendAll(); err != nil {
				return err
			}
		}
	}
	return s.stream(stream, nbrs, enc == gpb.Encoding_PROTO)
}

// stream sends changes at the configured rate (or a bounded burst).
func (s *server) stream(stream gpb.GNMI_SubscribeServer, nbrs []*neighbor, preEncode bool) error {
	cfg := s.t.sim.cfg
	r := rand.New(rand.NewPCG(s.t.seed, uint64(time.Now().UnixNano())))
	ctx := stream.Context()
	if cfg.Burst > 0 {
		if cfg.BurstGate != nil {
			select {
			case <-cfg.BurstGate:
			case <-ctx.Done():
				return nil
			}
		}
		var enc stepEncoder
		var sc stepScratch
		for sent := 0; sent < cfg.Burst; {
			n := nbrs[r.IntN(len(nbrs))].step(r, time.Now().UnixNano(), &sc)
			var err error
			if preEncode {
				// The wire bytes, built without protobuf's reflection:
				// a simulated router should cost its host little, so
				// the collector's figures are the collector's.
				err = stream.SendMsg(&raw{enc.encode(n)})
			} else {
				err = stream.Send(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: n}})
			}
			if err != nil {
				return err
			}
			sent += len(n.Update)
			s.t.sim.sent.Add(uint64(len(n.Update)))
		}
		<-ctx.Done()
		return nil
	}
	if cfg.Rate <= 0 {
		<-ctx.Done()
		return nil
	}
	// Send as many notifications per tick as the rate asks for (each
	// notification is ~3 leaf updates).
	tick := cfg.Tick
	if tick <= 0 {
		tick = 10 * time.Millisecond
	}
	perTick := cfg.Rate * tick.Seconds() / 3
	// Routers' clocks are not in step: each starts its ticks at its own
	// phase, so the fleet's sends spread over the tick.
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(time.Duration(r.Int64N(int64(tick)))):
	}
	tk := time.NewTicker(tick)
	defer tk.Stop()
	var debt float64
	var sc stepScratch
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
		}
		debt += perTick
		now := time.Now().UnixNano()
		for ; debt >= 1; debt-- {
			n := nbrs[r.IntN(len(nbrs))].step(r, now, &sc)
			if err := stream.Send(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: n}}); err != nil {
				return err
			}
			s.t.sim.sent.Add(uint64(len(n.Update)))
			if f := cfg.Sent; f != nil {
				f(now, len(n.Update))
			}
		}
	}
}

// raw is a SubscribeResponse already in wire form, in a buffer of
// gRPC's pool.
type raw struct{ b *[]byte }

// rawCodec sends raw messages as they are and everything else through
// gRPC's proto codec.
type rawCodec struct{ encoding.CodecV2 }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*raw); ok {
		// gRPC puts the buffer back once it has written it.
		return mem.BufferSlice{mem.NewBuffer(m.b, wirePool{})}, nil
	}
	return c.CodecV2.Marshal(v)
}

// stepEncoder writes a step's notification in protobuf's wire form,
// with each path's bytes marshalled once.
type stepEncoder struct {
	paths map[*gpb.Path][]byte // by the shared paths of stepPaths and neighbors
	buf   []byte
	val   []byte
}

func (e *stepEncoder) path(p *gpb.Path) []byte {
	if e.paths == nil {
		e.paths = map[*gpb.Path][]byte{}
	}
	b, ok := e.paths[p]
	if !ok {
		b, _ = proto.Marshal(p)
		e.paths[p] = b
	}
	return b
}

// encode returns the SubscribeResponse in a buffer of wirePool; the
// caller hands it to gRPC (as a raw message) or drops it.
func (e *stepEncoder) encode(n *gpb.Notification) *[]byte {
	b := e.buf[:0]
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(n.Timestamp))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, e.path(n.Prefix))
	for _, u := range n.Update {
		pb := e.path(u.Path)
		val := e.val[:0]
		switch v := u.Val.GetValue().(type) {
		case *gpb.TypedValue_UintVal:
			val = protowire.AppendVarint(protowire.AppendTag(val, 3, protowire.VarintType), v.UintVal)
		case *gpb.TypedValue_StringVal:
			val = protowire.AppendString(protowire.AppendTag(val, 1, protowire.BytesType), v.StringVal)
		default:
			val, _ = proto.MarshalOptions{}.MarshalAppend(val, u.Val)
		}
		e.val = val
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(protowire.SizeTag(1)+protowire.SizeBytes(len(pb))+protowire.SizeTag(3)+protowire.SizeBytes(len(val))))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, pb)
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, val)
	}
	e.buf = b
	out := wirePool{}.Get(protowire.SizeTag(1) + protowire.SizeBytes(len(b)))
	o := protowire.AppendTag((*out)[:0], 1, protowire.BytesType)
	*out = protowire.AppendBytes(o, b)
	return out
}

// wirePool holds the simulator's message buffers, which gRPC puts back
// once it has written them: a simulated router should not make garbage
// a message. gRPC's default pool would do, but it zeroes a 4 KiB buffer
// for each, and gRPC pools only buffers over 1 KiB, so a step (a few
// hundred bytes) takes a buffer of wireCap.
type wirePool struct{}

const wireCap = 2048

var wireBufs = sync.Pool{New: func() any { b := make([]byte, 0, wireCap); return &b }}

func (wirePool) Get(n int) *[]byte {
	if n > wireCap {
		b := make([]byte, n)
		return &b
	}
	b := wireBufs.Get().(*[]byte)
	*b = (*b)[:n]
	return b
}

func (wirePool) Put(b *[]byte) {
	if cap(*b) == wireCap {
		wireBufs.Put(b)
	}
}
