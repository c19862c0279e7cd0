//go:build integration

package rtr

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testenv"
)

// follower runs a client and keeps the set its deltas make.
type follower struct {
	t      *testing.T
	deltas chan Delta
	set    map[VRP]bool
}

func follow(t *testing.T, addr string) *follower {
	f := &follower{t: t, deltas: make(chan Delta, 64), set: map[VRP]bool{}}
	c := New(Config{Addr: addr, Timeout: 10 * time.Second}, slog.Default(), func(d Delta) { f.deltas <- d })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

// next waits for the next delta and applies it to the set.
func (f *follower) next(what string) Delta {
	f.t.Helper()
	select {
	case d := <-f.deltas:
		if d.Reset {
			clear(f.set)
		}
		for _, v := range d.Withdrawn {
			delete(f.set, v)
		}
		for _, v := range d.Announced {
			f.set[v] = true
		}
		return d
	case <-time.After(60 * time.Second):
		f.t.Fatalf("no delta from the cache: %s", what)
	}
	return Delta{}
}

// holds checks the set is exactly roas.
func (f *follower) holds(roas []testenv.ROA) {
	f.t.Helper()
	var got, want []string
	for v := range f.set {
		got = append(got, v.String())
	}
	for _, r := range roas {
		want = append(want, VRP{netip.MustParsePrefix(r.Prefix), uint8(r.MaxLength), r.ASN}.String())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		f.t.Errorf("client holds %v, the cache's file %v", got, want)
	}
}

var (
	roa1 = testenv.ROA{Prefix: "192.0.2.0/24", MaxLength: 24, ASN: 64500}
	roa2 = testenv.ROA{Prefix: "2001:db8::/32", MaxLength: 48, ASN: 64504}
	roa3 = testenv.ROA{Prefix: "198.51.100.0/22", MaxLength: 24, ASN: 64501}
)

// TestStayRTR holds the client to a real cache: the initial sync, a
// serial update after the VRP file changes, the cache going away and
// coming back (a new session, so a reset), each against the file.
func TestStayRTR(t *testing.T) {
	cache := testenv.StartStayRTR(t, 2, []testenv.ROA{roa1, roa2})
	f := follow(t, cache.Addr)

	d := f.next("the initial sync")
	if !d.Reset || d.Version != 1 {
		t.Errorf("first delta: reset %v, version %d; want a reset in version 1", d.Reset, d.Version)
	}
	f.holds([]testenv.ROA{roa1, roa2})

	// The file changes: the cache notifies, the client asks for what
	// changed since its serial.
	cache.Write([]testenv.ROA{roa2, roa3})
	d = f.next("the serial update")
	if d.Reset || len(d.Announced) != 1 || len(d.Withdrawn) != 1 {
		t.Errorf("serial update: %+v; want roa3 announced and roa1 withdrawn, no reset", d)
	}
	f.holds([]testenv.ROA{roa2, roa3})

	// The cache goes away; the client keeps its VRPs (they expire after
	// 7200 s), and once the cache is back (a new session) resets to it.
	cache.Stop()
	cache.Write([]testenv.ROA{roa1})
	select {
	case d := <-f.deltas:
		t.Fatalf("a delta while the cache was away: %+v", d)
	case <-time.After(3 * time.Second):
	}
	cache.Start()
	d = f.next("the reset after the cache came back")
	if !d.Reset {
		t.Errorf("after the cache came back: %+v; want a reset", d)
	}
	f.holds([]testenv.ROA{roa1})
}

// TestStayRTRVersion0: a cache that speaks only RFC 6810 (version 0) is
// asked again in version 0 and followed as well.
func TestStayRTRVersion0(t *testing.T) {
	cache := testenv.StartStayRTR(t, 0, []testenv.ROA{roa1, roa3})
	f := follow(t, cache.Addr)
	d := f.next("the initial sync in version 0")
	if !d.Reset || d.Version != 0 {
		t.Errorf("first delta: reset %v, version %d; want a reset in version 0", d.Reset, d.Version)
	}
	f.holds([]testenv.ROA{roa1, roa3})
	cache.Write([]testenv.ROA{roa3})
	d = f.next("a serial update in version 0")
	if d.Reset || len(d.Withdrawn) != 1 || !strings.Contains(d.Withdrawn[0].String(), "192.0.2.0/24") {
		t.Errorf("serial update: %+v", d)
	}
	f.holds([]testenv.ROA{roa3})
}
