//go:build integration

package e2e

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/gnmic/pkg/api"
	"github.com/openconfig/gnmic/pkg/api/target"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/merge"
	"github.com/meshd/meshd/sinks/gnmiserver"
)

// TestGnmicHitsTargetLimits: gnmic's own client code against meshd's
// gNMI target (the gnmi-server sink, as `meshd run` builds it from its
// config) with gnmi-server.max-subscriptions 1, max-recv-msg-size and
// max-send-msg-size 8 KiB: a second subscription, a Get whose answer is
// over the send size and requests over the receive size each get
// ResourceExhausted (naming the limit where meshd writes the error) and
// are counted (a Get over the receive size is gRPC's alone); what is under the limits is served. On the code before,
// there was no cap over all clients and no send cap: the second
// subscription and the big Get were served.
func TestGnmicHitsTargetLimits(t *testing.T) {
	const limit = 8 << 10
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	core, err := merge.New(merge.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg := gnmiserver.Config{Listen: "127.0.0.1:0", MaxSubscriptions: 1, MaxRecvMsgSize: limit, MaxSendMsgSize: limit}
	sink := startSink(t, ctx, core, cfg, reg)

	// r1 holds a small description, r2 one twice the send limit.
	now := time.Now()
	descr := func(r, s string) change.Change {
		return change.Change{Router: r, Path: change.NeighborPath("default", "192.0.2.1", "state", "description"), Value: change.String(s), Time: now, Source: change.SourceGNMI}
	}
	if res := core.Apply([]change.Change{descr("r1", "small"), descr("r2", strings.Repeat("x", 2*limit))}); res.Invalid > 0 {
		t.Fatalf("core refused the changes: %v", res.Err)
	}

	newTarget := func(name string) *target.Target { return gnmicTarget(t, ctx, name, sink.Addr().String()) }
	get := func(tg *target.Target, router, path string) error {
		req, err := api.NewGetRequest(api.Target(router), api.Path(path), api.EncodingPROTO())
		if err != nil {
			t.Fatal(err)
		}
		_, err = tg.Get(ctx, req)
		return err
	}
	const nbrPath = "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=192.0.2.1]/state/description"
	wantExhausted := func(what string, err error, names string) {
		t.Helper()
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), names) {
			t.Errorf("%s: %v, want ResourceExhausted with %q", what, err, names)
		} else {
			t.Logf("%s: %v", what, err)
		}
	}

	// One subscription (the cap) streams.
	first := newTarget("first")
	req, err := api.NewSubscribeRequest(api.Target("r1"), api.SubscriptionListModeSTREAM(), api.EncodingPROTO(),
		api.Subscription(api.Path(nbrPath), api.SubscriptionModeON_CHANGE()))
	if err != nil {
		t.Fatal(err)
	}
	firstCtx, cancelFirst := context.WithCancel(ctx)
	defer cancelFirst()
	rsps, errs := first.SubscribeStreamChan(firstCtx, req, "limits")
	synced := false
	for !synced {
		select {
		case r := <-rsps:
			synced = r.GetSyncResponse()
		case err := <-errs:
			t.Fatalf("first subscription: %v", err)
		case <-ctx.Done():
			t.Fatal("first subscription: no sync_response")
		}
	}

	// A second client's subscription is over max-subscriptions.
	second := newTarget("second")
	once, err := api.NewSubscribeRequest(api.Target("r1"), api.SubscriptionListModeONCE(), api.EncodingPROTO(), api.Subscription(api.Path(nbrPath)))
	if err != nil {
		t.Fatal(err)
	}
	wantExhausted("second subscription", subscribeOnce(ctx, second, once), "max-subscriptions limit")

	// Get: r1's answer fits, r2's is over max-send-msg-size.
	if err := get(second, "r1", nbrPath); err != nil {
		t.Errorf("Get r1 under the limits: %v", err)
	}
	wantExhausted("Get r2", get(second, "r2", nbrPath), "max-send-msg-size")

	// A request over max-recv-msg-size: gRPC's own error, with the sizes;
	// a Subscribe's is counted (a Get's is refused before meshd's code).
	bigKey := "/network-instances/network-instance[name=" + strings.Repeat("y", 2*limit) + "]"
	wantExhausted("Get with a 16 KiB key", get(second, "r1", bigKey), "received message larger than max")
	cancelFirst()
	testenv.WaitFor(t, 5*time.Second, "the first subscription's slot freed", func() bool {
		return counter(t, reg, "meshd_gnmitarget_subscriptions", "mode", "STREAM") == 0
	})
	bigOnce, err := api.NewSubscribeRequest(api.Target("r1"), api.SubscriptionListModeONCE(), api.EncodingPROTO(), api.Subscription(api.Path(bigKey)))
	if err != nil {
		t.Fatal(err)
	}
	wantExhausted("Subscribe with a 16 KiB key", subscribeOnce(ctx, second, bigOnce), "received message larger than max")

	for _, l := range []string{"max-subscriptions", "max-send-msg-size", "max-recv-msg-size"} {
		testenv.WaitFor(t, 5*time.Second, "refusal counted under "+l, func() bool { return counter(t, reg, "meshd_gnmitarget_limit_refusals_total", "limit", l) == 1 })
	}
}

// subscribeOnce runs a ONCE subscription on gnmic's gRPC client of tg
// and returns how it ended (nil at its sync_response). gnmic's own
// SubscribeOnce reports a stream the server ends before reading the
// request as a success: its Send then gets io.EOF, which it takes for the
// end, and the status Recv would give is lost.
func subscribeOnce(ctx context.Context, tg *target.Target, req *gpb.SubscribeRequest) error {
	st, err := tg.Client.Subscribe(ctx)
	if err != nil {
		return err
	}
	if err := st.Send(req); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	for {
		r, err := st.Recv()
		if err != nil {
			return err
		}
		if r.GetSyncResponse() {
			return nil
		}
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}
