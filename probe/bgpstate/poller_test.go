package bgpstate

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshd/meshd/change"
)

type fakeReader struct {
	ns  []Neighbor
	err error
}

func (f *fakeReader) Neighbors(context.Context) ([]Neighbor, error) { return f.ns, f.err }

// leafNames renders published changes as "addr/leaf=value" (or
// "addr/leaf deleted"), sorted.
func leafNames(chs []change.Change) []string {
	var out []string
	for _, c := range chs {
		_, addr, rest, _ := change.NeighborOf(c.Path)
		name := "neighbor"
		if len(rest) > 0 {
			name = rest[len(rest)-1].Name
		}
		if c.Value == nil {
			out = append(out, addr+"/"+name+" deleted")
		} else {
			out = append(out, addr+"/"+name+"="+strings.TrimSpace(c.Value.String()))
		}
		if c.Source != change.SourceGNMI || c.Router != "r1" {
			out = append(out, "bad source or router")
		}
	}
	sort.Strings(out)
	return out
}

func TestPoller(t *testing.T) {
	est := Neighbor{NetworkInstance: "default", Address: "10.0.0.2", State: "ESTABLISHED", PeerAS: 65002, LocalAS: 65001,
		EstablishedTransitions: 1, HasTransitions: true, LastEstablished: time.Unix(1000, 0),
		AfiSafis: []AfiSafi{{Name: "IPV4_UNICAST", Received: p32(5), Sent: p32(2)}}}
	other := Neighbor{NetworkInstance: "default", Address: "10.0.0.3", State: "ACTIVE", PeerAS: 65003, LocalAS: 65001}
	fr := &fakeReader{ns: []Neighbor{est, other}}
	var got [][]change.Change
	reg := prometheus.NewRegistry()
	p, err := NewPoller(Config{Daemon: "frr", StaleAfter: 2}, fr, "r1", func(chs []change.Change) { got = append(got, chs) }, WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	poll := func() []string {
		got = nil
		_ = p.Poll(ctx)
		if len(got) == 0 {
			return nil
		}
		if len(got) != 1 {
			t.Fatalf("%d publishes in one poll", len(got))
		}
		return leafNames(got[0])
	}
	first := poll()
	if len(first) != len(est.Leaves())+len(other.Leaves()) {
		t.Fatalf("first poll published %d leaves: %v", len(first), first)
	}
	if again := poll(); again != nil {
		t.Errorf("unchanged poll published %v", again)
	}

	// The session goes down: FRR no longer says when it came up (the
	// served value stays), the counters move, the prefix counts drop.
	down := est
	down.State, down.LastEstablished = "IDLE", time.Time{}
	down.Received.Notification = 1
	down.AfiSafis = []AfiSafi{{Name: "IPV4_UNICAST", Received: p32(0)}}
	fr.ns = []Neighbor{down, other}
	want := []string{
		"10.0.0.2/NOTIFICATION=uint_val:1", "10.0.0.2/received=uint_val:0", "10.0.0.2/sent deleted", "10.0.0.2/session-state=string_val:\"IDLE\"",
	}
	if g := poll(); strings.Join(g, "|") != strings.Join(want, "|") {
		t.Errorf("down:\n got %v\nwant %v", g, want)
	}

	// A neighbor removed from the config: its whole subtree goes.
	fr.ns = []Neighbor{down}
	if g := poll(); strings.Join(g, "|") != "10.0.0.3/neighbor deleted" {
		t.Errorf("removed neighbor: %v", g)
	}

	// The daemon stops answering: nothing changes at first, then after
	// StaleAfter failures everything is withdrawn.
	fr.err = errors.New("connection refused")
	if g := poll(); g != nil {
		t.Errorf("first failure published %v", g)
	}
	if g := poll(); strings.Join(g, "|") != "10.0.0.2/neighbor deleted" {
		t.Errorf("stale: %v", g)
	}
	if n := testutil.ToFloat64(p.m.polls.WithLabelValues("error")); n != 2 {
		t.Errorf("error polls %v, want 2", n)
	}
	// Back: everything is published again.
	fr.err = nil
	if g := poll(); len(g) != len(down.Leaves()) {
		t.Errorf("recovery published %d leaves, want %d: %v", len(g), len(down.Leaves()), g)
	}
	if n := testutil.ToFloat64(p.m.polls.WithLabelValues("ok")); n != 5 {
		t.Errorf("ok polls %v, want 5", n)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Daemon: "bird"}, "bgp.daemon"},
		{Config{Daemon: "frr", Interval: time.Millisecond}, "bgp.interval"},
		{Config{Daemon: "gobgp", StaleAfter: -1}, "bgp.stale-after"},
		{Config{Daemon: "gobgp"}, ""},
	} {
		c := tc.cfg
		c.SetDefaults()
		err := c.Validate()
		if (err == nil) != (tc.want == "") || err != nil && !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want prefix %q", tc.cfg, err, tc.want)
		}
	}
}

type countingReader struct{ n atomic.Int64 }

func (c *countingReader) Neighbors(context.Context) ([]Neighbor, error) {
	c.n.Add(1)
	return nil, nil
}

// A poke polls out of turn, soon and then once more a moment later;
// pokes close together make one poll. (The interval here is an hour, so
// any poll after the first is the poke's.)
func TestPoke(t *testing.T) {
	cr := &countingReader{}
	reg := prometheus.NewRegistry()
	p, err := NewPoller(Config{Daemon: "gobgp", Interval: time.Hour}, cr, "r1", func([]change.Change) {}, WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	waitPolls := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); cr.n.Load() < n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d polls, want %d", cr.n.Load(), n)
			}
		}
	}
	waitPolls(1) // Run's first
	for range 5 {
		p.Poke()
	}
	waitPolls(3) // the poke's, then its follow-up
	time.Sleep(pokeSettle + pokeFollow)
	if n := cr.n.Load(); n != 3 {
		t.Errorf("%d polls after five pokes at once, want 3", n)
	}
	if got := testutil.ToFloat64(p.m.pokes); got != 1 {
		t.Errorf("poked polls = %v, want 1", got)
	}
	cancel()
	<-done
}
