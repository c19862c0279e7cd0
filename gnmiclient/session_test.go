package gnmiclient

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
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
