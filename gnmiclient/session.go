package gnmiclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/gnmiclient/respcodec"
	"github.com/meshd/meshd/gnmiclient/translate"
)

// session is one target's Subscribe session and its reconnect loop.
type session struct {
	c    *Client
	t    *Target
	req  *gpb.SubscribeRequest
	idle time.Duration // 0: no idle limit after sync

	cancel context.CancelFunc
	done   chan struct{}

	// Counters cached so the hot path does not hash label values.
	cNotif, cLeaves, cInvalid, cFail prometheus.Counter
	unknown                          map[string]prometheus.Counter

	mu  sync.Mutex
	st  TargetStatus
	res translate.Result

	// lastRecv is when the last message came, as time since epoch on
	// the monotonic clock: a wall-clock reading made a step of the
	// machine's clock look like an hour of silence (every session ended
	// as stalled) or hid a real stall for as long as the step.
	epoch     time.Time
	lastRecv  atomic.Int64
	lastLog   time.Time
	logInval  int
	firstInva error
}

var errStalled = errors.New("stalled")

// errFenced ends a session whose replica's cluster lease may have ended:
// another replica may own the target now, and nothing more is applied.
var errFenced = errors.New("fenced: this replica's cluster lease may have ended; the target is another replica's now")

func (c *Client) newSession(t *Target) (*session, error) {
	subs := make([]*Subscription, 0, len(t.Subscriptions))
	var longest time.Duration
	mayBeQuiet := false
	for _, n := range t.Subscriptions {
		s := c.cfg.Subscriptions[n]
		subs = append(subs, s)
		for _, d := range []time.Duration{s.HeartbeatInterval, s.SampleInterval} {
			longest = max(longest, d)
		}
		sm, _ := parseStreamMode(s.StreamMode)
		if sm != gpb.SubscriptionMode_SAMPLE && s.HeartbeatInterval == 0 {
			// On-change data may rightly be quiet for hours, and so may
			// the whole stream: a SAMPLE subscription beside it proves
			// nothing, as its paths may hold no data.
			mayBeQuiet = true
		}
	}
	req, err := BuildRequest(subs, "stream", t.Encoding)
	if err != nil {
		return nil, err
	}
	s := &session{
		c: c, t: t, req: req, done: make(chan struct{}),
		cNotif:   c.m.notifications.WithLabelValues(t.Name),
		cLeaves:  c.m.leaves.WithLabelValues(t.Name),
		cInvalid: c.m.invalid.WithLabelValues(t.Name),
		cFail:    c.m.failures.WithLabelValues(t.Name),
		unknown:  map[string]prometheus.Counter{},
		st:       TargetStatus{Name: t.Name, Address: t.Address},
	}
	if longest > 0 && !mayBeQuiet {
		// Three missed samples or heartbeats mean the stream is dead even if
		// the TCP connection is not.
		s.idle = 3*longest + t.Timeout
	}
	return s, nil
}

func (s *session) stop() {
	s.cancel()
	<-s.done
}

func (s *session) status() TargetStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

func (s *session) setState(st State, err error) {
	s.mu.Lock()
	if s.st.State != st {
		s.st.State, s.st.Since = st, time.Now()
	}
	if err != nil {
		s.st.LastError, s.st.LastErrorTime = err.Error(), time.Now()
	}
	s.mu.Unlock()
	for _, x := range allStates {
		v := 0.0
		if x == st {
			v = 1
		}
		s.c.m.state.WithLabelValues(s.t.Name, string(x)).Set(v)
	}
	// The router's gNMI state is part of the merged record; it is meshd's
	// own observation, so it does not keep the gNMI source live.
	s.c.merger.Apply([]change.Change{{
		Router: s.t.Name, Path: change.MeshdRouterPath("gnmi-state"), Value: change.String(string(st)),
		Time: time.Now(), Source: change.SourceMeshd,
	}})
}

// run reconnects with exponential backoff and jitter until ctx ends.
func (s *session) run(ctx context.Context) {
	defer close(s.done)
	delay := s.t.RetryTimer
	log := s.c.log.With(slog.String("router", s.t.Name), slog.String("address", s.t.Address))
	for {
		synced, err := s.once(ctx, log)
		// Whatever ended the session, its values no longer have a live
		// source behind them.
		s.c.merger.ReleaseSource(s.t.Name, change.SourceGNMI)
		s.c.merger.ReleaseSource(s.t.Name, change.SourceProbe)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("stream ended by the target")
		}
		s.cFail.Inc()
		s.mu.Lock()
		s.st.Failures++
		s.mu.Unlock()
		s.setState(StateFailed, err)
		if synced {
			delay = s.t.RetryTimer
		}
		// Full jitter between half and all of the delay keeps a fleet that
		// lost meshd at once from reconnecting in lockstep.
		wait := delay/2 + time.Duration(rand.Int64N(int64(delay/2)+1))
		log.Warn("gnmi: session failed; reconnecting", slog.Any("err", err), slog.Duration("in", wait))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		delay = min(2*delay, s.t.MaxRetryTimer)
	}
}

// once runs one session: dial, subscribe, receive until error. synced
// says whether it got as far as sync_response.
func (s *session) once(ctx context.Context, log *slog.Logger) (synced bool, err error) {
	s.setState(StateConnecting, nil)
	conn, rctx, err := Dial(ctx, s.t)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	sctx, cancel := context.WithCancelCause(rctx)
	defer cancel(nil)
	cl := gpb.NewGNMIClient(conn)
	// The stream's own decoder: a fleet's notifications repeat their
	// paths, which it decodes once (see respcodec). generic is how many
	// responses it has left to protobuf, counted as they happen.
	codec := respcodec.NewCodec()
	var generic uint64
	stream, err := cl.Subscribe(sctx, grpc.ForceCodecV2(codec))
	if err != nil {
		return false, fmt.Errorf("subscribe: %w", err)
	}
	if err := sendStatus(stream, s.req); err != nil {
		return false, fmt.Errorf("subscribe request: %w", err)
	}
	s.mu.Lock()
	s.st.Connects++
	s.mu.Unlock()
	s.setState(StateSyncing, nil)
	var isSynced atomic.Bool
	s.epoch = time.Now()
	s.lastRecv.Store(0)
	go s.watchdog(sctx, cancel, &isSynced)
	// One response, and (codec.D.Reuse) one notification, serve every
	// message: handle is done with each before the next is received.
	codec.D.Reuse = true
	resp := new(gpb.SubscribeResponse)
	for {
		resp.Reset()
		err := stream.RecvMsg(resp)
		if err != nil {
			if cause := context.Cause(sctx); errors.Is(cause, errStalled) {
				err = cause
			}
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return isSynced.Load(), err
		}
		s.lastRecv.Store(int64(time.Since(s.epoch)))
		if own := s.c.ownership; own != nil && !own.Live() {
			// A replica resumed after a pause, or cut from etcd, past its
			// lease: what it received meanwhile is not its to apply.
			return isSynced.Load(), errFenced
		}
		if f := codec.D.Fallbacks; f != generic {
			s.c.m.generic.Add(float64(f - generic))
			generic = f
		}
		switch r := resp.GetResponse().(type) {
		case *gpb.SubscribeResponse_Update:
			s.handle(r.Update, log)
		case *gpb.SubscribeResponse_SyncResponse:
			if r.SyncResponse && !isSynced.Load() {
				isSynced.Store(true)
				s.setState(StateSynced, nil)
				log.Info("gnmi: synced")
			}
		case *gpb.SubscribeResponse_Error: //nolint:staticcheck // old targets still send it
			return isSynced.Load(), fmt.Errorf("target error: %s", r.Error.GetMessage()) //nolint:staticcheck // as above
		}
	}
}

// watchdog ends a session that stalls: before sync_response, nothing
// received for the sync timeout; once synced, nothing for three sample or
// heartbeat intervals. A target still sending its initial state is not
// stalled however long that takes: with a fleet syncing at once, a
// deadline from the subscription's start ended the sessions meshd was
// slowest to read, and each started its whole initial state again
// (bench/e2e gnmi-1000x100: 70 of 1,000 targets never synced).
func (s *session) watchdog(ctx context.Context, cancel context.CancelCauseFunc, synced *atomic.Bool) {
	tick := time.NewTicker(min(s.t.SyncTimeout/4, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			silent := time.Since(s.epoch) - time.Duration(s.lastRecv.Load())
			if !synced.Load() {
				if silent > s.t.SyncTimeout {
					cancel(fmt.Errorf("%w: no sync_response, and nothing received for %v", errStalled, s.t.SyncTimeout))
					return
				}
				continue
			}
			if s.idle > 0 && silent > s.idle {
				cancel(fmt.Errorf("%w: nothing received for %v", errStalled, s.idle))
				return
			}
		}
	}
}

// handle translates one notification and applies it as one batch.
func (s *session) handle(n *gpb.Notification, log *slog.Logger) {
	m := s.c.m
	t0 := time.Now()
	s.res.Reset()
	s.c.tr.Notification(s.t.Name, n, change.SourceGNMI, t0, &s.res)
	t1 := time.Now()
	var invalid int
	var firstErr error
	if len(s.res.Changes) > 0 {
		r := s.c.merger.Apply(s.res.Changes)
		invalid, firstErr = r.Invalid, r.Err
		m.applySeconds.Add(time.Since(t1).Seconds())
	}
	m.decodeSeconds.Add(t1.Sub(t0).Seconds())
	s.cNotif.Inc()
	s.cLeaves.Add(float64(len(s.res.Changes)))
	for _, u := range s.res.Unknown {
		c := s.unknown[u]
		if c == nil {
			c = m.unknown.WithLabelValues(s.t.Name, u)
			s.unknown[u] = c
		}
		c.Inc()
	}
	invalid += s.res.Invalid
	if firstErr == nil {
		firstErr = s.res.Err
	}
	if invalid > 0 {
		s.cInvalid.Add(float64(invalid))
	}
	s.mu.Lock()
	s.st.Notifications++
	s.st.Leaves += uint64(len(s.res.Changes))
	s.st.Unknown += uint64(len(s.res.Unknown))
	s.st.Invalid += uint64(invalid)
	s.st.LastUpdate = t0
	s.mu.Unlock()
	s.summarise(invalid, firstErr, len(s.res.Unknown), log)
}

// summarise logs bad values at most once a minute per target.
func (s *session) summarise(invalid int, err error, unknown int, log *slog.Logger) {
	if invalid == 0 && unknown == 0 && s.logInval == 0 {
		return
	}
	s.logInval += invalid + unknown
	if s.firstInva == nil {
		s.firstInva = err
	}
	if time.Since(s.lastLog) < time.Minute {
		return
	}
	s.lastLog = time.Now()
	log.Warn("gnmi: updates dropped (counted in meshd_gnmi_invalid_values_total and meshd_gnmi_unknown_paths_total)",
		slog.Int("dropped", s.logInval), slog.Any("first_err", s.firstInva))
	s.logInval, s.firstInva = 0, nil
}
