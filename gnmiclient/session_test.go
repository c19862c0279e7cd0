package gnmiclient

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

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
		// slack covers a dial and a failed stream on a busy machine.
		slack = 250 * time.Millisecond
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
