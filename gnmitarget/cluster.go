package gnmitarget

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Cluster is what the server needs to answer for a whole fleet that
// several replicas share (meshd's cluster mode): which routers another
// replica answers for, and a way to ask the others.
type Cluster interface {
	// Elsewhere reports whether another replica answers for target.
	Elsewhere(target string) bool
	// ForwardGet asks the other replicas, the one that owns target or
	// every one for "*" or "", marking the request as forwarded, and
	// returns their notifications.
	ForwardGet(ctx context.Context, target string, req *gpb.GetRequest) ([]*gpb.Notification, error)
	// ForwardSubscribe opens the same subscription on the other
	// replicas, as ForwardGet picks them, marked as forwarded.
	ForwardSubscribe(ctx context.Context, target string, req *gpb.SubscribeRequest) ([]gpb.GNMI_SubscribeClient, error)
	// Peers are the replicas ForwardGet and ForwardSubscribe would ask
	// for target now, by address.
	Peers(target string) []string
}

// peersCheckEvery is how often a merged subscription checks that the
// replicas it spans are still the ones that answer for its routers.
const peersCheckEvery = time.Second

// ForwardedKey is the metadata key of a request one replica forwards to
// another: the receiver answers for its own routers only and never
// forwards it again.
const ForwardedKey = "meshd-forwarded"

// WithCluster makes Get answer for the whole fleet of a cluster.
func WithCluster(c Cluster) Option { return func(o *options) { o.cluster = c } }

// forwarded reports whether ctx is a request another replica forwarded.
func forwarded(ctx context.Context) bool {
	md, ok := metadata.FromIncomingContext(ctx)
	return ok && len(md.Get(ForwardedKey)) > 0
}

// own keeps the targets this replica answers for: a router another
// replica owns may linger in this one's tree from before it moved.
func (s *Server) own(ts []*target) []*target {
	if s.o.cluster == nil {
		return ts
	}
	out := ts[:0:0]
	for _, t := range ts {
		if !s.o.cluster.Elsewhere(t.name) {
			out = append(out, t)
		}
	}
	return out
}

// mergedStream is a client's subscription answered by several replicas:
// this one's (through Send, when local) and the others' streams. Sends
// are one at a time; the client gets one sync_response, once every
// stream has sent its own. A remote stream that ends in error ends the
// whole: its context is cancelled and failed names the error.
type mergedStream struct {
	gpb.GNMI_SubscribeServer
	ctx     context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex
	waiting int // sync_responses not yet seen (this one's, when local, and each remote's)
	ended   chan struct{}
	err     error
	remote  []gpb.GNMI_SubscribeClient
	done    int // remote streams ended
}

func newMergedStream(client gpb.GNMI_SubscribeServer, remote []gpb.GNMI_SubscribeClient, local bool, peers func() []string) *mergedStream {
	ctx, cancel := context.WithCancel(client.Context())
	m := &mergedStream{GNMI_SubscribeServer: client, ctx: ctx, cancel: cancel, waiting: len(remote), ended: make(chan struct{}), remote: remote}
	if local {
		m.waiting++
	}
	// A replica that joins, leaves, or takes over the router asked for
	// would answer for routers this subscription has no part for: end
	// it, so that the client subscribes again and spans the new set.
	go func() {
		was := peers()
		t := time.NewTicker(peersCheckEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if now := peers(); !slices.Equal(now, was) {
				m.mu.Lock()
				if m.err == nil {
					m.err = status.Errorf(codes.Unavailable, "the cluster's replicas changed (%v, now %v): subscribe again", was, now)
				}
				m.mu.Unlock()
				cancel()
				return
			}
		}
	}()
	for _, r := range remote {
		go func() {
			var err error
			for {
				var resp *gpb.SubscribeResponse
				if resp, err = r.Recv(); err != nil {
					if errors.Is(err, io.EOF) {
						err = nil
					}
					break
				}
				if err = m.Send(resp); err != nil {
					break
				}
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			if err != nil && m.err == nil && ctx.Err() == nil {
				m.err = status.Errorf(codes.Unavailable, "another replica's part of this subscription ended: %v", err)
				cancel()
			}
			if m.done++; m.done == len(m.remote) {
				close(m.ended)
			}
		}()
	}
	return m
}

// Context is the client's, ended too when a remote stream fails.
func (m *mergedStream) Context() context.Context { return m.ctx }

// Send passes a response on; a sync_response only once it is the last
// stream's.
func (m *mergedStream) Send(resp *gpb.SubscribeResponse) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if resp.GetSyncResponse() {
		if m.waiting--; m.waiting != 0 {
			return nil
		}
	}
	return m.GNMI_SubscribeServer.Send(resp)
}

// failed is the error a remote stream ended with, if one did.
func (m *mergedStream) failed() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// wait serves a subscription the other replicas alone answer: until all
// their streams end (ONCE), one fails, or the client goes.
func (m *mergedStream) wait() error {
	select {
	case <-m.ended:
	case <-m.ctx.Done():
	}
	if err := m.failed(); err != nil {
		return err
	}
	return m.GNMI_SubscribeServer.Context().Err()
}

func (m *mergedStream) close() {
	m.cancel()
	for _, r := range m.remote {
		_ = r.CloseSend()
	}
}
