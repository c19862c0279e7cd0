package mirror

import (
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/merge"
)

// leaves is a copy that keeps each leaf's value as text, and counts the
// events it was given.
type leaves struct {
	mu     sync.Mutex
	m      map[string]string // router + " " + path key -> value
	events int
}

func (l *leaves) Replace(router string, ups []change.Update) {
	l.mu.Lock()
	defer l.mu.Unlock()
	maps.DeleteFunc(l.m, func(k, _ string) bool { return len(k) > len(router) && k[:len(router)+1] == router+" " })
	for _, u := range ups {
		l.m[router+" "+change.PathKey(u.Path)] = u.Value.String()
	}
}

func (l *leaves) Write(ups []change.Update, evs []change.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, u := range ups {
		k := u.Router + " " + change.PathKey(u.Path)
		if u.Value == nil {
			delete(l.m, k)
			continue
		}
		l.m[k] = u.Value.String()
	}
	l.events += len(evs)
}

func (l *leaves) Routers() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]bool{}
	for k := range l.m {
		for i := range k {
			if k[i] == ' ' {
				seen[k[:i]] = true
				break
			}
		}
	}
	return keys(seen)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func state(router, nbr, v string) change.Change {
	return change.Change{Router: router, Path: change.NeighborPath("default", nbr, "state", "session-state"),
		Value: change.String(v), Time: time.Unix(1700000000, 0), Source: change.SourceGNMI}
}

// TestFollowAfterLoss: batches lost before the copy follows the core are
// made good from the snapshot, and every batch after the switch reaches
// the copy; the copy then equals the core's state.
func TestFollowAfterLoss(t *testing.T) {
	core, err := merge.New()
	if err != nil {
		t.Fatal(err)
	}
	feed := core.Subscribe("test", 4)
	defer feed.Close()
	for i := range 100 {
		core.Apply([]change.Change{state(fmt.Sprintf("r%d", i%7), fmt.Sprintf("192.0.2.%d", i), "ACTIVE")},
			change.Event{Router: "r0", Kind: change.EventPeerUp})
	}
	if feed.Dropped() == 0 {
		t.Fatal("nothing was lost: the test needs a queue that overflowed")
	}
	c := &leaves{m: map[string]string{}}
	if !Follow(feed, core, c, Metrics{}, slog.Default()) {
		t.Fatal("Follow: the feed closed")
	}
	for i := range 50 {
		core.Apply([]change.Change{state(fmt.Sprintf("r%d", i%7), fmt.Sprintf("192.0.2.%d", i), "ESTABLISHED")},
			change.Event{Router: "r0", Kind: change.EventPeerDown})
	}
	want := &leaves{m: map[string]string{}}
	for _, r := range core.Routers() {
		want.Replace(r, core.Snapshot(r))
	}
	if !maps.Equal(c.m, want.m) {
		t.Errorf("copy holds %d leaves, the core %d, or their values differ", len(c.m), len(want.m))
	}
	// The events after the switch all came; of those before it, the ones
	// still queued (up to the queue's depth).
	if c.events < 50 || c.events > 54 {
		t.Errorf("copy got %d events, want 50 after the switch and up to 4 queued before it", c.events)
	}
}
