package merge

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meshd/meshd/change"
)

// TestPerRouterOrder feeds several routers at once, one of them also
// removed and refilled over and over, and replays what a consumer received
// into a copy of the state: with every router's batches delivered in the
// order they were applied, the copy ends equal to the core's snapshot.
func TestPerRouterOrder(t *testing.T) {
	c := newCore(t)
	sub := c.Subscribe("replay", 1<<16, WithKeys())
	replica := map[string]map[string]string{} // router -> key -> value
	done := make(chan struct{})
	var lost uint64
	go func() {
		defer close(done)
		for b := range sub.C() {
			lost += b.Lost
			for _, u := range b.Updates {
				m := replica[u.Router]
				if m == nil {
					m = map[string]string{}
					replica[u.Router] = m
				}
				if u.Value == nil {
					delete(m, u.Key)
				} else {
					m[u.Key] = u.Value.String()
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			router := fmt.Sprintf("r%d", w%3) // two writers share r0
			for i := 0; i < 300; i++ {
				addr := fmt.Sprintf("10.0.%d.%d", w, i%7)
				at := t0.Add(time.Duration(i) * time.Millisecond)
				c.Apply([]change.Change{
					{Router: router, Path: change.NeighborPath("default", addr, "state", "session-state"), Value: change.String([]string{"ESTABLISHED", "IDLE"}[i%2]), Time: at, Source: change.SourceGNMI},
					{Router: router, Path: change.NeighborPath("default", addr, "state", "messages", "received", "UPDATE"), Value: change.Uint(uint64(i)), Time: at, Source: change.SourceGNMI},
				})
				if w == 0 && i%50 == 49 {
					c.RemoveRouter(router, change.SourceGNMI, at)
				}
			}
		}(w)
	}
	wg.Wait()
	snap := c.Snapshot("")
	sub.Close()
	<-done
	if lost > 0 {
		t.Fatalf("the consumer lost %d updates; the queue was meant to be deep enough", lost)
	}
	want := map[string]map[string]string{}
	for _, u := range snap {
		if want[u.Router] == nil {
			want[u.Router] = map[string]string{}
		}
		want[u.Router][u.Key] = u.Value.String()
	}
	for r, m := range replica {
		if len(m) == 0 {
			delete(replica, r)
		}
	}
	if len(replica) != len(want) {
		t.Fatalf("replica has routers %d, snapshot %d", len(replica), len(want))
	}
	n := 0
	for r, m := range want {
		for k, v := range m {
			n++
			if replica[r][k] != v {
				t.Errorf("%s %s: replica %q, snapshot %q", r, k, replica[r][k], v)
			}
		}
		if len(replica[r]) != len(m) {
			t.Errorf("%s: replica %d leaves, snapshot %d", r, len(replica[r]), len(m))
		}
	}
	if got := c.nleaves.Load(); got != int64(n) {
		t.Errorf("leaf count %d, snapshot %d", got, n)
	}
	if got := len(c.Routers()); got != len(want) {
		t.Errorf("Routers() has %d, snapshot %d", got, len(want))
	}
}
