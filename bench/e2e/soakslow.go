package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshd/meshd/bench/internal/gnmisub"
)

// The slow-subscriber row: a client of meshd's gNMI target takes the
// whole tree with its initial sync and then reads its connection one byte
// a second, while two healthy subscribers take every change. meshd must
// keep its memory bounded (the subscription's queue, gnmi-server
// queue-size, then a resync; gRPC's flow-control windows) and the healthy
// subscribers current; InfluxDB's count is checked as in every row.
//
// What holds the row:
//   - meshd's RSS over the fault grows by at most slowRSSGrowth over what
//     it was when the fault began;
//   - the healthy subscribers' p99 latency (notification timestamp to
//     receipt) during the fault is within twice their p99 in a window of
//     the same load just before it, plus slowLatencySlack: the bound
//     comes from the noise measured on the same run, not from a figure;
//   - no healthy stream ends with an error.

// slowRSSGrowth bounds meshd's RSS growth while a subscriber reads at
// 1 B/s: a subscription holds at most queue-size (65,536) leaves before
// it is resynchronised, a few MiB, and gRPC's windows a few more; 128 MiB
// is well past that and far short of a leak at this load (20k points/s
// held for 5 minutes).
const slowRSSGrowth = 128 << 20

// slowLatencySlack is added to twice the baseline p99: a 2-core machine's
// scheduler adds tens of ms to a tail at random.
const slowLatencySlack = 250 * time.Millisecond

// slowFast is how much a slow subscriber reads at full speed before it
// slows down: the HTTP/2 handshake and the start of its initial sync.
const slowFast = 64 << 10

// slowConn reads at full speed up to slowFast bytes, then one byte a
// second. Its writes (the client's window updates and pings) are not
// slowed: a real slow reader still answers.
type slowConn struct {
	net.Conn
	read atomic.Int64
	quit <-chan struct{}
}

func (c *slowConn) Read(p []byte) (int, error) {
	if c.read.Load() >= slowFast && len(p) > 0 {
		select {
		case <-c.quit:
			return 0, io.EOF
		case <-time.After(time.Second):
		}
		p = p[:1]
	}
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// slowSubscriber keeps one slow subscription open on addr until stop,
// making a new one whenever meshd ends it.
type slowSubscriber struct {
	sessions atomic.Int64
	ends     sync.Map // an ending's gRPC status text → count (*atomic.Int64)
	stop     context.CancelFunc
	done     chan struct{}
}

func startSlowSubscriber(addr string) *slowSubscriber {
	ctx, cancel := context.WithCancel(context.Background())
	s := &slowSubscriber{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for ctx.Err() == nil {
			s.sessions.Add(1)
			err := s.session(ctx, addr)
			if ctx.Err() != nil {
				return
			}
			msg := "ended"
			if err != nil {
				msg = err.Error()
				if len(msg) > 120 {
					msg = msg[:120]
				}
			}
			n, _ := s.ends.LoadOrStore(msg, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return s
}

func (s *slowSubscriber) session(ctx context.Context, addr string) error {
	// The dialer's own context ends once the connection is made: the
	// slow reads stop with the subscriber's.
	quit := ctx.Done()
	dial := func(dctx context.Context, a string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(dctx, "tcp", a)
		if err != nil {
			return nil, err
		}
		return &slowConn{Conn: c, quit: quit}, nil
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithContextDialer(dial))
	if err != nil {
		return err
	}
	defer cc.Close()
	st, err := gpb.NewGNMIClient(cc).Subscribe(ctx)
	if err != nil {
		return err
	}
	if err := st.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: &gpb.SubscriptionList{
		Prefix: &gpb.Path{Target: "*"}, Mode: gpb.SubscriptionList_STREAM, Encoding: gpb.Encoding_PROTO,
		Subscription: []*gpb.Subscription{{Path: &gpb.Path{}, Mode: gpb.SubscriptionMode_ON_CHANGE}}}}}); err != nil {
		return err
	}
	for {
		if _, err := st.Recv(); err != nil {
			return err
		}
	}
}

// close stops the subscriber and describes what became of its sessions.
func (s *slowSubscriber) close() string {
	s.stop()
	<-s.done
	out := fmt.Sprintf("%d slow sessions", s.sessions.Load())
	s.ends.Range(func(k, v any) bool {
		out += fmt.Sprintf("; %d ended: %s", v.(*atomic.Int64).Load(), k)
		return true
	})
	return out
}

// slowSubscriberFault measures the healthy subscribers for a baseline
// window, then for dur with the slow subscriber connected, sampling
// meshd's RSS each second, and counts the fault's window in InfluxDB.
func slowSubscriberFault(row *SoakRow, m *meshdProc, proxy *influxProxy, sim *simChild, q influxQuerier, dur time.Duration) error {
	addr := fmt.Sprintf("127.0.0.1:%d", soakGNMI)
	healthy, err := gnmisub.Connect(context.Background(), addr, 2, gnmisub.Config{})
	if err != nil {
		return fmt.Errorf("healthy subscribers: %w", err)
	}
	defer healthy.Close()
	healthy.Begin()
	if err := sleepWatching(m, min(dur, 20*time.Second)); err != nil {
		return err
	}
	base := healthy.End()

	start := time.Now()
	rss0, _, err := procMem(m.pid())
	if err != nil {
		return err
	}
	slow := startSlowSubscriber(addr)
	healthy.Begin()
	peak := rss0
	for t0 := time.Now(); time.Since(t0) < dur; {
		if err := sleepWatching(m, time.Second); err != nil {
			slow.close()
			return err
		}
		if rss, _, err := procMem(m.pid()); err == nil {
			peak = max(peak, rss)
		}
	}
	during := healthy.End()
	ended := slow.close()
	end := time.Now()

	mfs, err := scrape(soakMetrics())
	if err != nil {
		return err
	}
	row.Note = fmt.Sprintf("meshd RSS %d MiB at the fault's start, %d MiB at most during it; healthy subscribers' p99 %v before (%d notifications), %v during (max %v, %d notifications); %s; meshd resynchronised slow subscribers %.0f times.",
		rss0>>20, peak>>20, base.P99.Round(time.Millisecond), base.Notifications, during.P99.Round(time.Millisecond), during.Max.Round(time.Millisecond),
		during.Notifications, ended, sum(mfs, "meshd_gnmitarget_resyncs_total"))
	var failed []error
	if peak-rss0 > slowRSSGrowth {
		failed = append(failed, fmt.Errorf("meshd's RSS grew %d MiB with a slow subscriber (bound %d MiB)", (peak-rss0)>>20, slowRSSGrowth>>20))
	}
	if bound := 2*base.P99 + slowLatencySlack; during.P99 > bound {
		failed = append(failed, fmt.Errorf("healthy subscribers fell behind: p99 %v during, bound %v (2 × %v before + %v)", during.P99, bound, base.P99, slowLatencySlack))
	}
	if during.Notifications == 0 || base.Notifications == 0 {
		failed = append(failed, fmt.Errorf("healthy subscribers got %d notifications before and %d during: nothing measured", base.Notifications, during.Notifications))
	}
	if during.Errors+base.Errors > 0 {
		failed = append(failed, fmt.Errorf("%d healthy streams ended with an error", during.Errors+base.Errors))
	}
	if err := errors.Join(failed...); err != nil {
		row.Failed = err.Error()
	}
	return countWindow(row, m, proxy, sim, q, start, end, dur)
}
