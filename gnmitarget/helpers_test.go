package gnmitarget

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/meshd/meshd/change"
)

// startServer runs a server on a loopback port for the test's lifetime.
func startServer(t *testing.T, opts ...Option) (*Server, string) {
	t.Helper()
	s, err := New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return s, lis.Addr().String()
}

func dial(t *testing.T, addr string, opts ...grpc.DialOption) gpb.GNMIClient {
	t.Helper()
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return gpb.NewGNMIClient(cc)
}

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// nbr returns the leaves of one neighbor.
func nbr(ni, addr, state string, rx uint64) []change.Update {
	return []change.Update{
		{Path: change.NeighborPath(ni, addr, "state", "session-state"), Value: change.String(state), Time: t0},
		{Path: change.NeighborPath(ni, addr, "state", "peer-as"), Value: change.Uint(65001), Time: t0},
		{Path: change.NeighborPath(ni, addr, "state", "messages", "received", "UPDATE"), Value: change.Uint(rx), Time: t0.Add(time.Second)},
		{Path: change.NeighborPath(ni, addr, "config", "peer-as"), Value: change.Uint(65001), Time: t0},
	}
}

func leafUp(p *gpb.Path, v *gpb.TypedValue, at time.Time) change.Update {
	return change.Update{Path: p, Value: v, Time: at}
}

// reader collects a subscription's responses on a channel.
type reader struct {
	stream gpb.GNMI_SubscribeClient
	ch     chan *gpb.SubscribeResponse
	err    chan error
	cancel context.CancelFunc
}

func subscribe(t *testing.T, c gpb.GNMIClient, sl *gpb.SubscriptionList, ctxs ...context.Context) *reader {
	t.Helper()
	ctx := context.Background()
	if len(ctxs) > 0 {
		ctx = ctxs[0]
	}
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	st, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	// io.EOF means the server has already ended the RPC; Recv tells why.
	if err := st.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: sl}}); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("send subscription: %v", err)
	}
	r := &reader{stream: st, ch: make(chan *gpb.SubscribeResponse, 100000), err: make(chan error, 1), cancel: cancel}
	go func() {
		for {
			resp, err := st.Recv()
			if err != nil {
				r.err <- err
				close(r.ch)
				return
			}
			r.ch <- resp
		}
	}()
	return r
}

// next returns the next response or fails after d.
func (r *reader) next(t *testing.T, d time.Duration) *gpb.SubscribeResponse {
	t.Helper()
	select {
	case resp, ok := <-r.ch:
		if !ok {
			t.Fatalf("stream ended: %v", <-r.err)
		}
		return resp
	case <-time.After(d):
		t.Fatalf("no response within %v", d)
	}
	return nil
}

// untilSync collects leaves until a sync_response.
func (r *reader) untilSync(t *testing.T, d time.Duration) *leaves {
	t.Helper()
	l := newLeaves()
	deadline := time.Now().Add(d)
	for {
		resp := r.next(t, time.Until(deadline))
		if resp.GetSyncResponse() {
			return l
		}
		l.add(resp.GetUpdate())
	}
}

// quiet asserts nothing arrives for d.
func (r *reader) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case resp, ok := <-r.ch:
		if ok {
			t.Fatalf("unexpected response: %s", prototext.Format(resp))
		}
	case <-time.After(d):
	}
}

// leaves is a flattened view of notifications: "target|path" → value.
type leaves struct {
	vals    map[string]string
	deletes []string
	n       int // updates seen
}

func newLeaves() *leaves { return &leaves{vals: map[string]string{}} }

func (l *leaves) add(n *gpb.Notification) {
	if n == nil {
		return
	}
	tg := n.GetPrefix().GetTarget()
	for _, d := range n.GetDelete() {
		k := tg + "|" + pathString(append(append([]*gpb.PathElem{}, n.GetPrefix().GetElem()...), d.GetElem()...))
		l.deletes = append(l.deletes, k)
		// A delete removes the path and everything below it.
		sub := strings.TrimSuffix(k, "/") + "/"
		for have := range l.vals {
			if have == k || strings.HasPrefix(have, sub) {
				delete(l.vals, have)
			}
		}
	}
	for _, u := range n.GetUpdate() {
		k := tg + "|" + pathString(append(append([]*gpb.PathElem{}, n.GetPrefix().GetElem()...), u.GetPath().GetElem()...))
		l.vals[k] = valString(u.GetVal())
		l.n++
	}
}

func valString(v *gpb.TypedValue) string {
	switch x := v.GetValue().(type) {
	case *gpb.TypedValue_StringVal:
		return x.StringVal
	case *gpb.TypedValue_UintVal:
		return fmt.Sprint(x.UintVal)
	case *gpb.TypedValue_IntVal:
		return fmt.Sprint(x.IntVal)
	case *gpb.TypedValue_JsonVal:
		return "json:" + string(x.JsonVal)
	case *gpb.TypedValue_JsonIetfVal:
		return "ietf:" + string(x.JsonIetfVal)
	}
	return prototext.Format(v)
}

func (l *leaves) keys() []string {
	out := make([]string, 0, len(l.vals))
	for k := range l.vals {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func nkey(target, ni, addr string, elems ...string) string {
	return target + "|" + pathString(change.NeighborPath(ni, addr, elems...).GetElem())
}

func mustPath(t testing.TB, s string) *gpb.Path {
	t.Helper()
	p, err := change.ParsePath(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func streamList(target string, mode gpb.SubscriptionMode, paths ...string) *gpb.SubscriptionList {
	sl := &gpb.SubscriptionList{Prefix: &gpb.Path{Target: target}, Mode: gpb.SubscriptionList_STREAM, Encoding: gpb.Encoding_PROTO}
	for _, p := range paths {
		pp, err := change.ParsePath(p)
		if err != nil {
			panic(err)
		}
		sl.Subscription = append(sl.Subscription, &gpb.Subscription{Path: pp, Mode: mode})
	}
	return sl
}

func hasPrefix(keys []string, p string) int {
	n := 0
	for _, k := range keys {
		if strings.HasPrefix(k, p) {
			n++
		}
	}
	return n
}

// pathString is the canonical string of a path's elements.
func pathString(elems []*gpb.PathElem) string { return change.PathKey(&gpb.Path{Elem: elems}) }
