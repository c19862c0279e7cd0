// Package gnmisub is the benchmarks' gNMI subscriber set: N STREAM
// ON_CHANGE subscribers on one server, each on its own connection,
// measuring the latency from every notification's timestamp (the time its
// source stamped on it) to its arrival, inside a window the caller opens
// with Begin and closes with End.
package gnmisub

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshd/meshd/gnmiclient/respcodec"
)

// Config says what the subscribers ask for.
type Config struct {
	// Target is the prefix target: "*" (the default) for every router, or
	// one router's name.
	Target string
	// Path is the subscribed path under the prefix; nil is the whole tree.
	Path *gpb.Path
	// Sync makes the subscribers take the initial sync too; by default
	// they subscribe with updates_only.
	Sync bool
	// ClientWindow, when > 0, sets the HTTP/2 receive windows in bytes; 0
	// keeps grpc-go's default (a bandwidth-delay estimate with a PING per
	// burst received).
	ClientWindow int32
	// SyncTimeout bounds the wait for every subscriber's sync_response
	// (default 5 minutes).
	SyncTimeout time.Duration
}

// Result is what the subscribers saw inside the window.
type Result struct {
	Received      int64         // leaf updates and deletes
	Notifications int64         // notifications, one latency sample each
	P50, P99      time.Duration //
	P999, Max     time.Duration //
	// Per source timestamp (a batch of changes stamped at once): when its
	// first subscriber had it and when its last one did; the gap is the
	// fan-out's.
	FirstP50, FirstP99 time.Duration
	LastP50, LastP99   time.Duration
	Batches            int
	// Stale counts notifications whose timestamp was older than the
	// window's start: data that sat somewhere before the window opened.
	Stale int64
	// Errors is the number of subscribers whose stream ended with an
	// error while the set was open (not by Close).
	Errors int64
}

func (r Result) String() string {
	return fmt.Sprintf("p50 %v p99 %v p99.9 %v max %v (%d notifications, %d leaves, %d stale, %d stream errors)",
		r.P50, r.P99, r.P999, r.Max, r.Notifications, r.Received, r.Stale, r.Errors)
}

// Set is a running set of subscribers. Connect makes one, Close ends it.
type Set struct {
	lat       hist
	batches   batchSpread
	received  atomic.Int64
	stale     atomic.Int64
	errs      atomic.Int64
	measuring atomic.Bool
	since     atomic.Int64 // window start, Unix ns
	closing   atomic.Bool
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	conns     []*grpc.ClientConn
	synced    time.Duration
}

// Connect opens n subscribers to addr (insecure gRPC) and returns once
// every one has had its sync_response.
func Connect(ctx context.Context, addr string, n int, cfg Config) (*Set, error) {
	if cfg.Target == "" {
		cfg.Target = "*"
	}
	if cfg.Path == nil {
		cfg.Path = &gpb.Path{}
	}
	if cfg.SyncTimeout == 0 {
		cfg.SyncTimeout = 5 * time.Minute
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Set{cancel: cancel}
	ready := make(chan struct{}, n)
	failed := make(chan error, n)
	w0 := time.Now()
	req := &gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: &gpb.SubscriptionList{
		Prefix: &gpb.Path{Target: cfg.Target}, Mode: gpb.SubscriptionList_STREAM, Encoding: gpb.Encoding_PROTO,
		UpdatesOnly:  !cfg.Sync,
		Subscription: []*gpb.Subscription{{Path: cfg.Path, Mode: gpb.SubscriptionMode_ON_CHANGE}}}}}
	for i := 0; i < n; i++ {
		dopts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if cfg.ClientWindow > 0 {
			dopts = append(dopts, grpc.WithInitialWindowSize(cfg.ClientWindow), grpc.WithInitialConnWindowSize(cfg.ClientWindow))
		}
		cc, err := grpc.NewClient(addr, dopts...)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.conns = append(s.conns, cc)
		// Subscribers decode as meshd's own gNMI client does: the
		// generic protobuf decoder would make a hundred subscribers on a
		// 2-core machine cost more than the server they measure.
		codec := respcodec.NewCodec()
		codec.D.Reuse = true
		st, err := gpb.NewGNMIClient(cc).Subscribe(ctx, grpc.ForceCodecV2(codec))
		if err != nil {
			s.Close()
			return nil, err
		}
		if err := st.Send(req); err != nil {
			s.Close()
			return nil, err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.recv(st, ready, failed)
		}()
	}
	timeout := time.After(cfg.SyncTimeout)
	for i := 0; i < n; i++ {
		select {
		case <-ready:
		case err := <-failed:
			s.Close()
			return nil, fmt.Errorf("subscriber: %w", err)
		case <-timeout:
			s.Close()
			return nil, fmt.Errorf("subscribers did not sync within %v", cfg.SyncTimeout)
		}
	}
	s.synced = time.Since(w0)
	return s, nil
}

func (s *Set) recv(st gpb.GNMI_SubscribeClient, ready chan<- struct{}, failed chan<- error) {
	r := new(gpb.SubscribeResponse)
	synced := false
	for {
		r.Reset()
		if err := st.RecvMsg(r); err != nil {
			if !s.closing.Load() {
				s.errs.Add(1)
				if !synced {
					failed <- err
				}
			}
			return
		}
		if r.GetSyncResponse() {
			if !synced {
				synced = true
				ready <- struct{}{}
			}
			continue
		}
		n := r.GetUpdate()
		if n == nil || !s.measuring.Load() {
			continue
		}
		now := time.Now().UnixNano()
		d := time.Duration(now - n.GetTimestamp())
		if n.GetTimestamp() < s.since.Load() {
			s.stale.Add(1)
		}
		s.lat.add(d)
		s.batches.add(n.GetTimestamp(), d)
		s.received.Add(int64(len(n.GetUpdate()) + len(n.GetDelete())))
	}
}

// SyncTime is how long Connect took until the last sync_response.
func (s *Set) SyncTime() time.Duration { return s.synced }

// Begin opens the measuring window, forgetting what an earlier one saw.
func (s *Set) Begin() {
	s.lat.reset()
	s.batches.reset()
	s.received.Store(0)
	s.stale.Store(0)
	s.since.Store(time.Now().UnixNano())
	s.measuring.Store(true)
}

// End closes the window and returns what it saw.
func (s *Set) End() Result {
	s.measuring.Store(false)
	first, last := s.batches.hists()
	lat := s.lat.sorted()
	return Result{
		Received: s.received.Load(), Notifications: int64(len(lat.us)),
		P50: lat.pct(0.5), P99: lat.pct(0.99), P999: lat.pct(0.999), Max: lat.pct(1),
		FirstP50: first.pct(0.5), FirstP99: first.pct(0.99), LastP50: last.pct(0.5), LastP99: last.pct(0.99),
		Batches: len(first.us), Stale: s.stale.Load(), Errors: s.errs.Load(),
	}
}

// Close ends every subscriber and waits for them.
func (s *Set) Close() {
	if !s.closing.CompareAndSwap(false, true) {
		return
	}
	s.cancel()
	for _, cc := range s.conns {
		_ = cc.Close()
	}
	s.wg.Wait()
}

// hist holds latency samples in microseconds.
type hist struct {
	mu sync.Mutex
	us []int64
}

func (h *hist) add(d time.Duration) {
	h.mu.Lock()
	h.us = append(h.us, d.Microseconds())
	h.mu.Unlock()
}

func (h *hist) reset() {
	h.mu.Lock()
	h.us = nil
	h.mu.Unlock()
}

// sorted returns a sorted copy, safe to read while samples still come.
func (h *hist) sorted() *hist {
	h.mu.Lock()
	out := &hist{us: append([]int64(nil), h.us...)}
	h.mu.Unlock()
	sort.Slice(out.us, func(i, j int) bool { return out.us[i] < out.us[j] })
	return out
}

// pct is the p-quantile of a sorted hist.
func (h *hist) pct(p float64) time.Duration {
	if len(h.us) == 0 {
		return 0
	}
	return time.Duration(h.us[int(p*float64(len(h.us)-1))]) * time.Microsecond
}

// batchSpread keeps, per source timestamp, the least and the greatest
// latency any subscriber saw.
type batchSpread struct {
	mu sync.Mutex
	m  map[int64][2]time.Duration
}

func (b *batchSpread) add(ts int64, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[int64][2]time.Duration{}
	}
	mm, ok := b.m[ts]
	if !ok {
		mm = [2]time.Duration{d, d}
	}
	b.m[ts] = [2]time.Duration{min(mm[0], d), max(mm[1], d)}
}

func (b *batchSpread) reset() {
	b.mu.Lock()
	b.m = nil
	b.mu.Unlock()
}

func (b *batchSpread) hists() (first, last *hist) {
	b.mu.Lock()
	first, last = &hist{}, &hist{}
	for _, mm := range b.m {
		first.us = append(first.us, mm[0].Microseconds())
		last.us = append(last.us, mm[1].Microseconds())
	}
	b.mu.Unlock()
	return first.sorted(), last.sorted()
}
