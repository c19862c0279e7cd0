//go:build integration

package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testenv"
)

// ledger records every member's ownership over time, as a collector
// would start and stop sessions, and finds any moment two members held
// one target.
type ledger struct {
	mu      sync.Mutex
	holders map[string]map[string]time.Time // target → member → since
	peak    map[string]int                  // member → most targets held at once
	now     map[string]int
	overlap []string
}

func newLedger() *ledger {
	return &ledger{holders: map[string]map[string]time.Time{}, peak: map[string]int{}, now: map[string]int{}}
}

type ledgerOwner struct {
	l      *ledger
	member string
}

func (o ledgerOwner) Own(t string, token int64) {
	l := o.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holders[t] == nil {
		l.holders[t] = map[string]time.Time{}
	}
	for other := range l.holders[t] {
		l.overlap = append(l.overlap, fmt.Sprintf("%s taken by %s while %s held it", t, o.member, other))
	}
	l.holders[t][o.member] = time.Now()
	l.now[o.member]++
	l.peak[o.member] = max(l.peak[o.member], l.now[o.member])
}

func (o ledgerOwner) Disown(t string) {
	l := o.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.holders[t][o.member]; ok {
		delete(l.holders[t], o.member)
		l.now[o.member]--
	}
}

// owners is how many targets have exactly one holder, and how many any
// other number.
func (l *ledger) owners(targets []string) (one, other int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range targets {
		if len(l.holders[t]) == 1 {
			one++
		} else {
			other++
		}
	}
	return
}

func (l *ledger) holder(t string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for m := range l.holders[t] {
		return m
	}
	return ""
}

type running struct {
	m    *Member
	stop context.CancelFunc
	done chan struct{}
}

func start(t *testing.T, endpoint, name string, l *ledger, targets []string) *running {
	t.Helper()
	m, err := New(Config{Endpoints: []string{endpoint}, Name: name, LeaseTTL: 2 * time.Second, Settle: 500 * time.Millisecond},
		slog.New(slog.NewTextHandler(testLog(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	m.Bind(ledgerOwner{l, name})
	m.SetTargets(targets)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{m: m, stop: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); _ = m.Run(ctx) }()
	t.Cleanup(func() { r.stop(); <-r.done; m.Close() })
	return r
}

// TestMembersShareTheFleet runs three members on a real etcd and 300
// targets: each target gets exactly one owner, within the bounded load;
// a member cut from etcd gives its targets up before its lease ends and
// the others take them after; a fourth member joining takes about a
// quarter; and at no moment do two members hold one target.
func TestMembersShareTheFleet(t *testing.T) {
	e := testenv.StartEtcd(t)
	targets := names("router-", 300)
	l := newLedger()
	var ms []*running
	for i := range 3 {
		ms = append(ms, start(t, e.Endpoint, fmt.Sprintf("meshd-%d", i), l, targets))
	}
	testenv.WaitFor(t, 15*time.Second, "every target owned once", func() bool {
		one, _ := l.owners(targets)
		return one == len(targets)
	})
	limit := Capacity(len(targets), 3, DefaultLoadFactor)
	for m, n := range l.peak {
		if n > limit {
			t.Errorf("%s held %d targets at once, over the bound %d", m, n, limit)
		}
	}

	// Cut meshd-2 from etcd: its client goes, its renewals fail.
	before := map[string]string{}
	for _, tg := range targets {
		before[tg] = l.holder(tg)
	}
	cut := time.Now()
	ms[2].m.cli.Close()
	testenv.WaitFor(t, 15*time.Second, "meshd-2's targets owned again", func() bool {
		one, _ := l.owners(targets)
		if one != len(targets) {
			return false
		}
		for _, tg := range targets {
			if l.holder(tg) == "meshd-2" {
				return false
			}
		}
		return true
	})
	t.Logf("meshd-2's targets owned again %v after it was cut (lease TTL 2 s)", time.Since(cut).Round(10*time.Millisecond))
	movedOthers := 0
	for _, tg := range targets {
		if before[tg] != "meshd-2" && l.holder(tg) != before[tg] {
			movedOthers++
		}
	}
	t.Logf("%d targets of the two live members moved", movedOthers)

	// A new member joins.
	start(t, e.Endpoint, "meshd-3", l, targets)
	testenv.WaitFor(t, 15*time.Second, "meshd-3 holds targets and all are owned", func() bool {
		one, _ := l.owners(targets)
		l.mu.Lock()
		n := l.now["meshd-3"]
		l.mu.Unlock()
		return one == len(targets) && n >= Capacity(len(targets), 3, 1)*2/3
	})
	l.mu.Lock()
	t.Logf("meshd-3 holds %d of %d", l.now["meshd-3"], len(targets))
	for _, o := range l.overlap {
		t.Error(o)
	}
	l.mu.Unlock()
}

// TestColdStart starts three members at once on an empty cluster: none
// holds more than its bound at any moment (no first-comer takes the
// whole fleet), and every target is owned within 15 s.
func TestColdStart(t *testing.T) {
	e := testenv.StartEtcd(t)
	targets := names("router-", 1000)
	l := newLedger()
	t0 := time.Now()
	for i := range 3 {
		start(t, e.Endpoint, fmt.Sprintf("meshd-%d", i), l, targets)
	}
	testenv.WaitFor(t, 15*time.Second, "every target owned once", func() bool {
		one, _ := l.owners(targets)
		return one == len(targets)
	})
	t.Logf("1,000 targets owned %v after a cold start of 3 members", time.Since(t0).Round(10*time.Millisecond))
	limit := Capacity(len(targets), 3, DefaultLoadFactor)
	l.mu.Lock()
	defer l.mu.Unlock()
	for m, n := range l.peak {
		if n > limit {
			t.Errorf("%s held %d targets at once, over the bound %d", m, n, limit)
		}
	}
	for _, o := range l.overlap {
		t.Error(o)
	}
}

func testLog() io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	return io.Discard
}

// slowOwner ends a session the way a real one does, taking its time
// (a session's goroutines to finish, its connection to close).
type slowOwner struct{ ledgerOwner }

func (o slowOwner) Disown(t string) {
	time.Sleep(20 * time.Millisecond)
	o.ledgerOwner.Disown(t)
}

// TestStopHandsOverWithoutOverlap stops one of two members: the other
// takes its targets only once each session has ended. (The first version
// revoked the lease first, which deletes the ownership records, and the
// other member claimed targets the stopping one still held.)
func TestStopHandsOverWithoutOverlap(t *testing.T) {
	e := testenv.StartEtcd(t)
	targets := names("router-", 100)
	l := newLedger()
	a, err := New(Config{Endpoints: []string{e.Endpoint}, Name: "meshd-a", LeaseTTL: 2 * time.Second, Settle: 500 * time.Millisecond},
		slog.New(slog.NewTextHandler(testLog(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.Bind(slowOwner{ledgerOwner{l, "meshd-a"}})
	a.SetTargets(targets)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	start(t, e.Endpoint, "meshd-b", l, targets)
	testenv.WaitFor(t, 15*time.Second, "every target owned once", func() bool {
		one, _ := l.owners(targets)
		return one == len(targets)
	})
	cancel()
	<-done
	testenv.WaitFor(t, 15*time.Second, "meshd-b owns every target", func() bool {
		one, _ := l.owners(targets)
		l.mu.Lock()
		n := l.now["meshd-b"]
		l.mu.Unlock()
		return one == len(targets) && n == len(targets)
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range l.overlap {
		t.Error(o)
	}
}
