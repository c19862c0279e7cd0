package gnmitarget

import (
	"context"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshd/meshd/change"
)

// TestSubscriptionCaps: the per-client cap and the cap over all clients
// each refuse with ResourceExhausted naming the limit, and are counted.
// Before max-subscriptions there was no cap over all clients: the third
// subscription of the "total" case was served.
func TestSubscriptionCaps(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		allowed int
		limit   string
	}{
		{"per client", []Option{WithMaxSubscriptionsPerClient(2)}, 2, limitSubsClient},
		{"total", []Option{WithMaxSubscriptionsPerClient(0), WithMaxSubscriptions(2)}, 2, limitSubsTotal},
		{"total under per client", []Option{WithMaxSubscriptionsPerClient(5), WithMaxSubscriptions(3)}, 3, limitSubsTotal},
		{"per client under total", []Option{WithMaxSubscriptionsPerClient(1), WithMaxSubscriptions(3)}, 1, limitSubsClient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, addr := startServer(t, tc.opts...)
			c := dial(t, addr)
			for range tc.allowed {
				subscribe(t, c, streamList("*", gpb.SubscriptionMode_ON_CHANGE, "/")).untilSync(t, 5*time.Second)
			}
			r := subscribe(t, c, streamList("*", gpb.SubscriptionMode_ON_CHANGE, "/"))
			if _, ok := <-r.ch; ok {
				t.Fatalf("subscription %d served", tc.allowed+1)
			}
			err := <-r.err
			if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), tc.limit) {
				t.Errorf("subscription %d: %v, want ResourceExhausted naming %s", tc.allowed+1, err, tc.limit)
			}
			if n := testutil.ToFloat64(s.m.limits.WithLabelValues(tc.limit)); n != 1 {
				t.Errorf("limit_refusals{%s} = %v, want 1", tc.limit, n)
			}
		})
	}
}

// TestMessageSizeCaps: a request over max-recv-msg-size and a response
// over max-send-msg-size end their RPC with ResourceExhausted; the
// Subscribe and Get errors name the limit; each is counted. Before
// max-send-msg-size the big leaf was sent whatever its size.
func TestMessageSizeCaps(t *testing.T) {
	const limit = 4096
	big := strings.Repeat("x", 2*limit)
	descr := change.NeighborPath("default", "192.0.2.1", "state", "description")
	bigPath := "/network-instances/network-instance[name=" + big + "]"
	tests := []struct {
		name  string
		call  func(t *testing.T, c gpb.GNMIClient) error
		limit string
		named bool // the error names the limit (gRPC's receive check names only the sizes)
	}{
		{"subscribe request", func(t *testing.T, c gpb.GNMIClient) error {
			r := subscribe(t, c, streamList("*", gpb.SubscriptionMode_ON_CHANGE, bigPath))
			for range r.ch {
			}
			return <-r.err
		}, limitRecv, false},

		{"subscribe notification", func(t *testing.T, c gpb.GNMIClient) error {
			sl := streamList("r1", gpb.SubscriptionMode_ON_CHANGE, "/")
			sl.Mode = gpb.SubscriptionList_ONCE
			r := subscribe(t, c, sl)
			for range r.ch {
			}
			return <-r.err
		}, limitSend, true},
		{"get response", func(t *testing.T, c gpb.GNMIClient) error {
			_, err := c.Get(context.Background(), &gpb.GetRequest{Prefix: &gpb.Path{Target: "r1"}, Encoding: gpb.Encoding_PROTO})
			return err
		}, limitSend, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, addr := startServer(t, WithMaxRecvMsgSize(limit), WithMaxSendMsgSize(limit))
			s.Update("r1", []change.Update{leafUp(descr, change.String(big), t0)})
			err := tc.call(t, dial(t, addr))
			if status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("err = %v, want ResourceExhausted", err)
			}
			if tc.named && !strings.Contains(err.Error(), tc.limit) {
				t.Errorf("err = %v, want it to name %s", err, tc.limit)
			}
			// A refusal is counted as its RPC ends, which may come just
			// after the client has its status.
			deadline := time.Now().Add(5 * time.Second)
			for testutil.ToFloat64(s.m.limits.WithLabelValues(tc.limit)) != 1 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if n := testutil.ToFloat64(s.m.limits.WithLabelValues(tc.limit)); n != 1 {
				t.Errorf("limit_refusals{%s} = %v, want 1", tc.limit, n)
			}
		})
	}

	// A Get over the receive limit gets gRPC's own refusal, not counted
	// (gRPC refuses it before meshd's code runs).
	s, addr := startServer(t, WithMaxRecvMsgSize(limit))
	_, err := dial(t, addr).Get(context.Background(), &gpb.GetRequest{Path: []*gpb.Path{{Elem: []*gpb.PathElem{{Name: big}}}}, Encoding: gpb.Encoding_PROTO})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "received message larger than max") {
		t.Errorf("Get over the receive limit: %v, want gRPC's ResourceExhausted", err)
	}

	// Under the limits, the same calls are served.
	s, addr = startServer(t, WithMaxRecvMsgSize(limit), WithMaxSendMsgSize(limit))
	s.Update("r1", []change.Update{leafUp(descr, change.String("small"), t0)})
	if _, err := dial(t, addr).Get(context.Background(), &gpb.GetRequest{Prefix: &gpb.Path{Target: "r1"}, Encoding: gpb.Encoding_PROTO}); err != nil {
		t.Errorf("Get under the limits: %v", err)
	}
}
