package rtr

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	gortr "github.com/osrg/gobgp/v4/pkg/packet/rtr"
)

// fakeCache answers one Reset Query with one VRP and an End of Data of
// version 1 giving the intervals, then closes and refuses every later
// connection: a cache gone for good. (A unit test of the expiry logic;
// the protocol is tested against stayrtr.) sent gets the time just
// before the End of Data was written: the client cannot have synchronised
// earlier.
func fakeCache(t *testing.T, expire uint32) (addr string, sent <-chan time.Time) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	at := make(chan time.Time, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		l.Close()
		defer c.Close()
		q := make([]byte, gortr.RTR_RESET_QUERY_LEN)
		if _, err := io.ReadFull(c, q); err != nil || q[1] != gortr.RTR_RESET_QUERY {
			return
		}
		var out []byte
		add := func(b []byte, _ error) { b[0] = 1; out = append(out, b...) }
		add(gortr.NewRTRCacheResponse(7).Serialize())
		add(gortr.NewRTRIPPrefix(netip.MustParseAddr("192.0.2.0"), 24, 24, 64500, gortr.ANNOUNCEMENT).Serialize())
		eod := make([]byte, 24)
		eod[0], eod[1] = 1, gortr.RTR_END_OF_DATA
		binary.BigEndian.PutUint16(eod[2:], 7)
		binary.BigEndian.PutUint32(eod[4:], 24)
		binary.BigEndian.PutUint32(eod[8:], 1)       // serial
		binary.BigEndian.PutUint32(eod[12:], 3600)   // refresh
		binary.BigEndian.PutUint32(eod[16:], 1)      // retry
		binary.BigEndian.PutUint32(eod[20:], expire) // expire
		out = append(out, eod...)
		at <- time.Now()
		_, _ = c.Write(out)
	}()
	return l.Addr().String(), at
}

// TestExpiry: with the cache gone, the VRPs held are dropped once the
// expire interval the cache gave passes with no refresh, not before.
func TestExpiry(t *testing.T) {
	addr, sent := fakeCache(t, 2)
	deltas := make(chan Delta, 8)
	c := New(Config{Addr: addr, Timeout: 5 * time.Second}, slog.Default(), func(d Delta) { deltas <- d })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	var synced time.Time
	select {
	case d := <-deltas:
		// The bound is taken before the client could have synchronised,
		// so however late this goroutine runs the check below is exact.
		synced = <-sent
		if !d.Reset || len(d.Announced) != 1 || d.Serial != 1 {
			t.Fatalf("first delta %+v", d)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no sync from the fake cache")
	}
	select {
	case d := <-deltas:
		if !d.Reset || len(d.Announced) != 0 {
			t.Fatalf("after the cache went: %+v, want a reset to nothing", d)
		}
		if since := time.Since(synced); since < 2*time.Second {
			t.Errorf("dropped %v after the sync, before the 2 s expire interval", since)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the VRPs never expired")
	}
}

// TestRetryBackoff: a cache that does not answer is asked again after
// 1 s, 2 s, 4 s... up to the retry interval, and the wait starts over
// after a sync.
func TestRetryBackoff(t *testing.T) {
	c := New(Config{Addr: "127.0.0.1:1", Retry: 10 * time.Second}, slog.Default(), func(Delta) {})
	var got []time.Duration
	for range 6 {
		c.fails++
		got = append(got, c.untilRetry())
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	c.synced, c.lastSync, c.fails = true, time.Now(), 0
	if c.fails = 1; c.untilRetry() != time.Second {
		t.Errorf("after a sync: %v, want 1s", c.untilRetry())
	}
}
