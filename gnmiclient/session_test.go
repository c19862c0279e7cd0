package gnmiclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshd/meshd/change"
)

// arrivals records when each of a fake target's streams began.
type arrivals struct {
	mu sync.Mutex
	at []time.Time
}

func (a *arrivals) add() {
	a.mu.Lock()
	a.at = append(a.at, time.Now())
	a.mu.Unlock()
}

func (a *arrivals) gaps() []time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []time.Duration
	for i := 1; i < len(a.at); i++ {
		out = append(out, a.at[i].Sub(a.at[i-1]))
	}
	return out
}

// Reconnects back off exponentially up to max-retry-timer, each wait
// jittered between half and all of the delay; a session that got as far
// as sync_response starts the backoff over.
func TestReconnectBackoff(t *testing.T) {
	const (
		retry    = 200 * time.Millisecond
		maxRetry = 800 * time.Millisecond
		streams  = 6 // five waits: 200, 400, 800, 800, 800 ms (1600 uncapped)
		// slack covers a dial and a failed stream on a busy machine:
		// 250 ms was once 51 ms short under -race beside other builds.
		// At 600 ms a missing cap still fails: the fifth wait uncapped
		// is at least 1600 ms, over 800+600.
		slack = 600 * time.Millisecond
	)
	tgt := func(addr string) *Target {
		t := fast(&Target{Address: addr})
		t.RetryTimer, t.MaxRetryTimer = retry, maxRetry
		return t
	}
	refusers := make([]*arrivals, 4)
	targets := map[string]*Target{}
	for i := range refusers {
		a := &arrivals{}
		refusers[i] = a
		f := startFake(t, func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
			a.add()
			if conn >= streams {
				<-ctx.Done()
				return nil
			}
			return errors.New("refused before sync")
		})
		targets[string(rune('a'+i))] = tgt(f.addr)
	}
	syncer := &arrivals{}
	fs := startFake(t, func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
		syncer.add()
		send(syncResp)
		if conn >= streams {
			<-ctx.Done()
			return nil
		}
		// Let the client see sync_response before the stream ends.
		time.Sleep(20 * time.Millisecond)
		return errors.New("dropped after sync")
	})
	targets["syncer"] = tgt(fs.addr)
	c, _ := runClient(t, Config{Targets: targets}, newCore(t))
	waitFor(t, 15*time.Second, "every target's last stream", func() bool {
		for _, a := range append(refusers, syncer) {
			if len(a.gaps()) < streams-1 {
				return false
			}
		}
		return true
	})

	var jittered int
	for i, a := range refusers {
		d := retry
		for k, g := range a.gaps()[:streams-1] {
			if g < d/2 || g > d+slack {
				t.Errorf("refuser %d: wait %d was %v, want between %v and %v", i, k+1, g, d/2, d+slack)
			}
			if float64(g) < 0.9*float64(d) {
				jittered++
			}
			d = min(2*d, maxRetry)
		}
	}
	// Without jitter every wait is the whole delay; with it, one in five
	// falls below 90% of it: all twenty above is a one in 10^14 chance.
	if jittered == 0 {
		t.Errorf("no reconnect came sooner than 90%% of its delay: no jitter")
	}
	for k, g := range syncer.gaps()[:streams-1] {
		if g < retry/2 || g > retry+slack+20*time.Millisecond {
			t.Errorf("syncer: wait %d was %v, want between %v and %v (backoff starts over after a sync)", k+1, g, retry/2, retry+slack)
		}
	}
	for _, name := range []string{"a", "syncer"} {
		if st := statusOf(c, name); st.Failures < streams-1 || st.LastError == "" || st.LastErrorTime.IsZero() {
			t.Errorf("%s status = %+v, want %d failures with the last error", name, st, streams-1)
		}
	}
}

// A session that goes quiet after sync_response is reconnected only when
// its subscriptions promise traffic (SAMPLE or heartbeats); on-change data
// may rightly be quiet, whatever order the subscriptions come in.
func TestStallAfterSync(t *testing.T) {
	const iv = 100 * time.Millisecond
	subs := map[string]*Subscription{
		"sample":    {Paths: []string{"/network-instances"}, StreamMode: "sample", SampleInterval: iv, Encoding: "proto"},
		"heartbeat": {Paths: []string{"/network-instances"}, StreamMode: "on-change", HeartbeatInterval: iv, Encoding: "proto"},
		"on-change": {Paths: []string{"/network-instances"}, StreamMode: "on-change", Encoding: "proto"},
		// Samples a path the target has nothing at: no traffic comes of it.
		"sample-empty": {Paths: []string{"/meshd"}, StreamMode: "sample", SampleInterval: iv, Encoding: "proto"},
	}
	cases := []struct {
		name  string
		subs  []string
		send  bool // sample every iv after sync (first stream: three samples, then silence)
		stall bool // want the first session declared stalled
	}{
		{"sample-stops", []string{"sample"}, true, true},
		{"heartbeat-missing", []string{"heartbeat"}, false, true},
		{"on-change-quiet", []string{"on-change"}, false, false},
		{"sample-then-on-change-quiet", []string{"sample-empty", "on-change"}, false, false},
		{"on-change-then-sample-quiet", []string{"on-change", "sample-empty"}, false, false},
	}
	type fakeRef struct{ f *fakeTarget }
	fakes := map[string]fakeRef{}
	targets := map[string]*Target{}
	for _, tc := range cases {
		f := startFake(t, func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
			send(syncResp)
			for i := uint64(1); tc.send && (conn > 1 || i <= 3); i++ {
				if err := send(nbrUpdate("default", "10.0.0.1", "established-transitions", change.Uint(i))); err != nil {
					return err
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(iv):
				}
			}
			<-ctx.Done()
			return nil
		})
		fakes[tc.name] = fakeRef{f}
		tg := fast(&Target{Address: f.addr, Subscriptions: tc.subs})
		tg.Timeout = 500 * time.Millisecond // idle limit: 3 × 100ms + 500ms
		targets[tc.name] = tg
	}
	c, _ := runClient(t, Config{Targets: targets, Subscriptions: subs}, newCore(t))
	for _, tc := range cases {
		if tc.stall {
			waitFor(t, 10*time.Second, tc.name+" reconnected", func() bool {
				return fakes[tc.name].f.streams.Load() >= 2 && statusOf(c, tc.name).State == StateSynced
			})
		}
	}
	// Long enough for two idle limits to pass.
	time.Sleep(2 * time.Second)
	for _, tc := range cases {
		st := statusOf(c, tc.name)
		switch {
		case tc.stall && !strings.Contains(st.LastError, "nothing received"):
			t.Errorf("%s: last error %q, want a stall", tc.name, st.LastError)
		case !tc.stall && (st.Failures != 0 || st.Connects != 1 || st.State != StateSynced):
			t.Errorf("%s: a quiet on-change session was disturbed: %+v", tc.name, st)
		}
	}
}

// gaugeByState reads meshd_gnmi_target_state for target from reg.
func gaugeByState(t *testing.T, reg *prometheus.Registry, target string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "meshd_gnmi_target_state" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["target"] == target {
				out[labels["state"]] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// seriesOf counts the series labelled with target.
func seriesOf(t *testing.T, reg *prometheus.Registry, target string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "target" && l.GetValue() == target {
					n++
				}
			}
		}
	}
	return n
}

// A target that cannot be reached shows as failed, with why, on /metrics
// and in Status; one that syncs shows as synced; a removed target's
// series go.
func TestStateOnMetrics(t *testing.T) {
	dead := listen(t)
	deadAddr := dead.Addr().String()
	dead.Close() // nothing listens there now: connection refused
	live := startFake(t, func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
		send(nbrUpdate("default", "10.0.0.1", "peer-as", change.Uint(65001)))
		send(syncResp)
		<-ctx.Done()
		return nil
	})
	down := fast(&Target{Address: deadAddr})
	down.RetryTimer, down.MaxRetryTimer = time.Minute, time.Minute // stays failed
	c, reg := runClient(t, Config{Targets: map[string]*Target{"up": fast(&Target{Address: live.addr})}}, newCore(t))
	waitFor(t, 5*time.Second, "client running", func() bool { return statusOf(c, "up").Name != "" })
	// "down" comes as a targets file reload would bring it.
	if err := c.SetTargets(map[string]*Target{"down": down}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "down failed, up synced", func() bool {
		return statusOf(c, "down").State == StateFailed && statusOf(c, "up").State == StateSynced
	})
	for name, want := range map[string]State{"down": StateFailed, "up": StateSynced} {
		got := gaugeByState(t, reg, name)
		for _, s := range allStates {
			w := 0.0
			if s == want {
				w = 1
			}
			if v, ok := got[string(s)]; !ok || v != w {
				t.Errorf("%s: meshd_gnmi_target_state{state=%q} = %v (present %v), want %v", name, s, v, ok, w)
			}
		}
	}
	st := statusOf(c, "down")
	if !strings.Contains(st.LastError, "refused") || st.Failures != 1 || st.Connects != 0 {
		t.Errorf("down status = %+v, want one failure saying connection refused", st)
	}
	if got := testutil.ToFloat64(c.m.failures.WithLabelValues("down")); got != 1 {
		t.Errorf("meshd_gnmi_session_failures_total{down} = %v", got)
	}
	if got := testutil.ToFloat64(c.m.targets); got != 2 {
		t.Errorf("meshd_gnmi_targets = %v", got)
	}
	if err := c.SetTargets(map[string]*Target{}); err != nil {
		t.Fatal(err)
	}
	if statusOf(c, "down").Name != "" || statusOf(c, "up").Name == "" {
		t.Errorf("after down's removal: %+v", c.Status())
	}
	if n := seriesOf(t, reg, "down"); n != 0 {
		t.Errorf("%d of down's series outlived it", n)
	}
	if got := testutil.ToFloat64(c.m.targets); got != 1 {
		t.Errorf("meshd_gnmi_targets = %v after removal", got)
	}
	if live.streams.Load() != 1 {
		t.Errorf("up reconnected %d times by another target's removal", live.streams.Load()-1)
	}
}

// countingHandler counts log records by level and message.
type countingHandler struct {
	mu   sync.Mutex
	recs map[string]int // "LEVEL msg"
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs[r.Level.String()+" "+r.Message]++
	h.mu.Unlock()
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func (h *countingHandler) warnings() (n int, all map[string]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	all = map[string]int{}
	for k, v := range h.recs {
		all[k] = v
		if strings.HasPrefix(k, "WARN") || strings.HasPrefix(k, "ERROR") {
			n += v
		}
	}
	return n, all
}

// Unknown paths and bad values are counted per target and path, and
// summarised in the log, not logged once per update.
func TestUnknownNotLoggedPerUpdate(t *testing.T) {
	const notes = 200
	f := startFake(t, func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
		send(syncResp)
		for i := 0; i < notes; i++ {
			send(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: &gpb.Notification{
				Timestamp: time.Now().UnixNano(),
				Update: []*gpb.Update{
					{Path: &gpb.Path{Elem: []*gpb.PathElem{{Name: "vendor"}, {Name: "thing", Key: map[string]string{"id": fmt.Sprint(i)}}}}, Val: change.Uint(1)},
					{Path: change.NeighborPath("default", "10.0.0.1", "state", "peer-as"), Val: change.String("not-a-number")},
				},
			}}})
		}
		<-ctx.Done()
		return nil
	})
	h := &countingHandler{recs: map[string]int{}}
	reg := prometheus.NewRegistry()
	cfg := Config{Targets: map[string]*Target{"r1": fast(&Target{Address: f.addr})}}
	c, err := New(cfg, newCore(t), WithRegisterer(reg), WithLogger(slog.New(h)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("client did not stop")
		}
	}()
	waitFor(t, 10*time.Second, "every notification handled", func() bool { return statusOf(c, "r1").Notifications == notes })
	if got := testutil.ToFloat64(c.m.unknown.WithLabelValues("r1", "/vendor/thing")); got != notes {
		t.Errorf("meshd_gnmi_unknown_paths_total{r1,/vendor/thing} = %v, want %d", got, notes)
	}
	if got := testutil.ToFloat64(c.m.invalid.WithLabelValues("r1")); got != notes {
		t.Errorf("meshd_gnmi_invalid_values_total{r1} = %v, want %d", got, notes)
	}
	if st := statusOf(c, "r1"); st.Unknown != notes || st.Invalid != notes {
		t.Errorf("status = %+v", st)
	}
	if n, all := h.warnings(); n > 1 {
		t.Errorf("%d warnings for %d bad notifications, want at most one summary: %v", n, notes, all)
	}
}

// A target whose initial state takes longer than the sync timeout to
// arrive, but arrives without a pause that long, is not stalled: it syncs
// on its first session.
func TestSlowInitialStateNotStalled(t *testing.T) {
	const notifications = 30 // one every 100 ms: 3 s, twice the timeout
	f := startFake(t, func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
		for i := 0; i < notifications; i++ {
			if err := send(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: &gpb.Notification{
				Timestamp: time.Now().UnixNano(),
				Update:    []*gpb.Update{{Path: change.NeighborPath("default", fmt.Sprintf("10.0.0.%d", i+1), "state", "peer-as"), Val: change.Uint(65001)}},
			}}}); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
		}
		send(syncResp)
		<-ctx.Done()
		return nil
	})
	tgt := fast(&Target{Address: f.addr})
	tgt.SyncTimeout = 1500 * time.Millisecond
	c, _ := runClient(t, Config{Targets: map[string]*Target{"slow": tgt}}, newCore(t))
	waitFor(t, 20*time.Second, "the slow target synced", func() bool { return statusOf(c, "slow").State == StateSynced })
	if st := statusOf(c, "slow"); st.Connects != 1 || st.Failures != 0 {
		t.Errorf("slow target: %+v, want synced on its first session", st)
	}
}
