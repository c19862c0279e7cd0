package gnmitarget

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeServerStream is the client's side as the server sees it.
type fakeServerStream struct {
	grpc.ServerStream
	ctx  context.Context
	mu   sync.Mutex
	sent []*gpb.SubscribeResponse
}

func (f *fakeServerStream) Context() context.Context { return f.ctx }
func (f *fakeServerStream) Send(r *gpb.SubscribeResponse) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, r)
	return nil
}
func (f *fakeServerStream) Recv() (*gpb.SubscribeRequest, error) { select {} }

// fakeRemote is another replica's part: what it sends, then it blocks.
type fakeRemote struct {
	grpc.ClientStream
	ctx  context.Context
	resp chan *gpb.SubscribeResponse
}

func (f *fakeRemote) Recv() (*gpb.SubscribeResponse, error) {
	select {
	case r := <-f.resp:
		return r, nil
	case <-f.ctx.Done():
		return nil, f.ctx.Err()
	}
}
func (f *fakeRemote) Send(*gpb.SubscribeRequest) error { return nil }
func (f *fakeRemote) CloseSend() error                 { return nil }

func syncResp() *gpb.SubscribeResponse {
	return &gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_SyncResponse{SyncResponse: true}}
}

// TestMergedStream: one sync_response for all parts; and a merged
// subscription ends with Unavailable when the replicas it spans change
// (one joins: it would answer for routers this subscription has no part
// for).
func TestMergedStream(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &fakeServerStream{ctx: ctx}
	r1 := &fakeRemote{ctx: ctx, resp: make(chan *gpb.SubscribeResponse, 4)}
	r2 := &fakeRemote{ctx: ctx, resp: make(chan *gpb.SubscribeResponse, 4)}
	var peers atomic.Pointer[[]string]
	two := []string{"a:1", "b:1"}
	peers.Store(&two)
	m := newMergedStream(client, []gpb.GNMI_SubscribeClient{r1, r2}, true, func() []string { return *peers.Load() })
	defer m.close()
	r1.resp <- &gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: &gpb.Notification{Prefix: &gpb.Path{Target: "r1"}}}}
	r1.resp <- syncResp()
	if err := m.Send(syncResp()); err != nil { // the local part's
		t.Fatal(err)
	}
	r2.resp <- syncResp()
	deadline := time.Now().Add(5 * time.Second)
	for {
		client.mu.Lock()
		n := len(client.sent)
		syncs := 0
		for _, r := range client.sent {
			if r.GetSyncResponse() {
				syncs++
			}
		}
		client.mu.Unlock()
		if n == 2 && syncs == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client got %d responses (%d sync_responses), want the update and one sync_response", n, syncs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := m.failed(); err != nil {
		t.Fatalf("failed before any change: %v", err)
	}
	three := []string{"a:1", "b:1", "c:1"}
	peers.Store(&three)
	select {
	case <-m.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the merged subscription went on after a replica joined")
	}
	if err := m.failed(); status.Code(err) != codes.Unavailable {
		t.Errorf("ended with %v, want Unavailable", err)
	}
}
