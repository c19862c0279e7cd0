package gnmitarget

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshd/meshd/change"
)

// tracker keeps a subscriber's view of the tree up to date in the
// background.
type tracker struct {
	mu sync.Mutex
	l  *leaves
}

func track(r *reader) *tracker {
	tr := &tracker{l: newLeaves()}
	go func() {
		for resp := range r.ch {
			tr.mu.Lock()
			tr.l.add(resp.GetUpdate())
			tr.mu.Unlock()
		}
	}()
	return tr
}

func (tr *tracker) matches(want map[string]string) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.l.vals) != len(want) {
		return false
	}
	for k, v := range want {
		if tr.l.vals[k] != v {
			return false
		}
	}
	return true
}

func TestSlowSubscriberDoesNotHoldBackOthers(t *testing.T) {
	reg := prometheus.NewRegistry()
	// Each round changes the 5 counters of one router; 12 routers make 60
	// distinct counters, more than the queue holds, so a subscriber that
	// stops reading overflows while one that keeps up (lagging less than
	// 8 rounds) does not.
	const queue, routers, peers = 40, 12, 5
	s, addr := startServer(t, WithQueueSize(queue), WithRegisterer(reg))
	nbrAddr := func(i int) string { return fmt.Sprintf("10.0.%d.%d", i/peers, i%peers) }
	counter := func(i int) *gpb.Path {
		return change.NeighborPath("default", nbrAddr(i), "state", "messages", "received", "UPDATE")
	}
	state := func(i int) *gpb.Path { return change.NeighborPath("default", nbrAddr(i), "state", "session-state") }
	want := map[string]string{}
	push := func(r, round int) {
		var ups []change.Update
		for i := r * peers; i < (r+1)*peers; i++ {
			ups = append(ups, leafUp(counter(i), change.Uint(uint64(round)), t0.Add(time.Duration(round)*time.Millisecond)))
			ups = append(ups, leafUp(state(i), change.String("ESTABLISHED"), t0))
			rn := fmt.Sprintf("r%d", r)
			want[rn+"|"+pathString(counter(i).GetElem())] = fmt.Sprint(round)
			want[rn+"|"+pathString(state(i).GetElem())] = "ESTABLISHED"
		}
		s.Update(fmt.Sprintf("r%d", r), ups)
	}
	for r := 0; r < routers; r++ {
		push(r, 0)
	}
	// The slow subscriber reads nothing after its sync: a small flow
	// control window makes the server's sends block quickly.
	slowConn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer slowConn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow, err := gpb.NewGNMIClient(slowConn).Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := slow.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: streamList("*", gpb.SubscriptionMode_ON_CHANGE, "/")}}); err != nil {
		t.Fatal(err)
	}
	slowView := newLeaves()
	for {
		resp, err := slow.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetSyncResponse() {
			break
		}
		slowView.add(resp.GetUpdate())
	}

	c := dial(t, addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithInitialWindowSize(1<<20), grpc.WithInitialConnWindowSize(16<<20))
	var fast []*tracker
	for i := 0; i < 50; i++ {
		// The fast ones watch the neighbors, not the bulk leaf below.
		r := subscribe(t, c, streamList("*", gpb.SubscriptionMode_ON_CHANGE, "/network-instances"))
		fast = append(fast, track(r))
	}
	waitAll := func(want map[string]string, what string) time.Duration {
		start := time.Now()
		for _, tr := range fast {
			for !tr.matches(want) {
				if time.Since(start) > 30*time.Second {
					tr.mu.Lock()
					n := 0
					for k, v := range want {
						if tr.l.vals[k] != v && n < 3 {
							t.Logf("%s: have %q want %q", k, tr.l.vals[k], v)
							n++
						}
					}
					t.Logf("have %d leaves, want %d", len(tr.l.vals), len(want))
					tr.mu.Unlock()
					t.Fatalf("%s: a fast subscriber did not catch up in 30s", what)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		return time.Since(start)
	}
	t.Logf("initial sync in %v", waitAll(want, "initial"))
	start := time.Now()

	// A 160 KiB leaf fills the slow one's flow-control window at once, so
	// its sender blocks and its queue takes what follows.
	big := change.Update{Path: change.MeshdRouterPath("description"), Value: change.String(strings.Repeat("x", 160<<10)), Time: t0}
	s.Update("bulk", []change.Update{big})
	// 80 rounds of 5 counters at a steady pace while the slow one reads
	// nothing; every fast subscriber must be current soon after each
	// checkpoint.
	for round := 1; round <= 80; round++ {
		push(round%routers, round)
		time.Sleep(20 * time.Millisecond)
		if round%40 == 0 {
			if d := waitAll(want, fmt.Sprintf("round %d", round)); d > 15*time.Second {
				t.Errorf("fast subscribers took %v to catch up at round %d", d, round)
			}
			for _, sub := range *s.subs.Load() {
				if n := sub.q.len(); n > queue {
					t.Fatalf("a queue holds %d > %d entries", n, queue)
				}
			}
		}
	}
	// A neighbor goes away while the slow one is stuck.
	gone := change.NeighborPath("default", "10.0.0.3")
	s.Update("r0", []change.Update{{Path: gone, Time: t0.Add(time.Hour)}})
	delete(want, "r0|"+pathString(counter(3).GetElem()))
	delete(want, "r0|"+pathString(state(3).GetElem()))
	waitAll(want, "delete")
	t.Logf("changes in %v", time.Since(start))

	if testutil.ToFloat64(s.m.dropped.WithLabelValues("overflow")) == 0 {
		t.Error("the slow subscriber's queue never overflowed: the test did not make it slow")
	}

	want["bulk|"+pathString(big.Path.GetElem())] = big.Value.GetStringVal()
	// The slow subscriber reads again and converges on the final state,
	// the deleted neighbor included.
	slowCh := make(chan *gpb.SubscribeResponse, 1024)
	go func() {
		defer close(slowCh)
		for {
			resp, err := slow.Recv()
			if err != nil {
				return
			}
			slowCh <- resp
		}
	}()
	timeout := time.After(20 * time.Second)
	for {
		ok := len(slowView.vals) == len(want)
		if ok {
			for k, v := range want {
				if slowView.vals[k] != v {
					ok = false
					break
				}
			}
		}
		if ok {
			break
		}
		select {
		case resp, open := <-slowCh:
			if !open {
				t.Fatal("slow stream ended")
			}
			slowView.add(resp.GetUpdate())
		case <-timeout:
			t.Fatalf("slow subscriber did not converge: %d leaves, want %d", len(slowView.vals), len(want))
		}
	}
	// The slow subscriber (registered first) was resynced; on a loaded
	// machine a fast one may briefly fall behind too, which is logged.
	subs := *s.subs.Load()
	if subs[0].resyncs.Load() == 0 {
		t.Error("the slow subscriber was not resynced after its overflow")
	}
	var resynced int
	for _, sub := range subs[1:] {
		if sub.resyncs.Load() > 0 {
			resynced++
		}
	}
	t.Logf("fast subscribers resynced: %d of %d", resynced, len(subs)-1)
	t.Logf("dropped: coalesced=%v overflow=%v resyncs=%v",
		testutil.ToFloat64(s.m.dropped.WithLabelValues("coalesced")),
		testutil.ToFloat64(s.m.dropped.WithLabelValues("overflow")),
		testutil.ToFloat64(s.m.resyncs))
}

// A subscriber that falls behind on a few leaves gets their latest values
// and never the intermediate ones, each of which is counted: what it
// receives plus what was counted as coalesced is exactly what was
// published, with no overflow and no resync.
func TestSlowSubscriberCoalesces(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, addr := startServer(t, WithQueueSize(64), WithRegisterer(reg))
	const peers, rounds = 5, 200
	counter := func(i int) *gpb.Path {
		return change.NeighborPath("default", fmt.Sprintf("10.0.0.%d", i), "state", "messages", "received", "UPDATE")
	}
	var ups []change.Update
	for i := 0; i < peers; i++ {
		ups = append(ups, leafUp(counter(i), change.Uint(0), t0))
	}
	s.Update("r1", ups)

	// A small flow-control window, and a leaf bigger than it published
	// before the rounds: the sender blocks on it until the client reads.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := gpb.NewGNMIClient(conn).Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: streamList("*", gpb.SubscriptionMode_ON_CHANGE, "/")}}); err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetSyncResponse() {
			break
		}
	}
	s.Update("bulk", []change.Update{{Path: change.MeshdRouterPath("description"), Value: change.String(strings.Repeat("x", 160<<10)), Time: t0}})
	for round := 1; round <= rounds; round++ {
		ups = ups[:0]
		for i := 0; i < peers; i++ {
			ups = append(ups, leafUp(counter(i), change.Uint(uint64(round)), t0.Add(time.Duration(round)*time.Millisecond)))
		}
		s.Update("r1", ups)
	}

	// Read until every counter shows its last value; values only grow.
	last := map[string]uint64{}
	received := 0
	for done := 0; done < peers; {
		resp, err := st.Recv()
		if err != nil {
			t.Fatalf("after %d counter updates: %v", received, err)
		}
		n := resp.GetUpdate()
		if n.GetPrefix().GetTarget() != "r1" {
			continue
		}
		for _, u := range n.GetUpdate() {
			k := pathString(append(append([]*gpb.PathElem{}, n.GetPrefix().GetElem()...), u.GetPath().GetElem()...))
			v := u.GetVal().GetUintVal()
			if v <= last[k] {
				t.Fatalf("%s went from %d to %d", k, last[k], v)
			}
			last[k] = v
			received++
			if v == rounds {
				done++
			}
		}
	}
	coalesced := testutil.ToFloat64(s.m.dropped.WithLabelValues("coalesced"))
	if received+int(coalesced) != peers*rounds {
		t.Errorf("received %d + coalesced %v != %d published", received, coalesced, peers*rounds)
	}
	if coalesced == 0 {
		t.Error("nothing coalesced: the subscriber was never behind")
	}
	if v := testutil.ToFloat64(s.m.dropped.WithLabelValues("overflow")); v != 0 {
		t.Errorf("overflow drops = %v, want 0 (5 leaves in a queue of 64)", v)
	}
	if v := testutil.ToFloat64(s.m.resyncs); v != 0 {
		t.Errorf("resyncs = %v, want 0", v)
	}
	t.Logf("received %d of %d counter values, %v coalesced", received, peers*rounds, coalesced)
}
