//go:build integration

package rpki

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/rpki/rtr"
)

// TestManager: two real caches (stayrtr) make one table, their union; a
// VRP one cache withdraws stays while the other holds it, and only the
// VRPs that enter or leave the table are reported as changed.
func TestManager(t *testing.T) {
	r1 := testenv.ROA{Prefix: "192.0.2.0/24", MaxLength: 24, ASN: 64500}
	r2 := testenv.ROA{Prefix: "198.51.100.0/24", MaxLength: 24, ASN: 64501}
	r3 := testenv.ROA{Prefix: "2001:db8::/32", MaxLength: 48, ASN: 64502}
	c1 := testenv.StartStayRTR(t, 1, []testenv.ROA{r1, r2})
	c2 := testenv.StartStayRTR(t, 2, []testenv.ROA{r2, r3})

	reg := prometheus.NewRegistry()
	m, err := NewManager(Config{Caches: []string{c1.Addr, c2.Addr}, Timeout: 10 * time.Second}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var changed []rtr.VRP
	m.Follow(func(vs []rtr.VRP, _ bool) { mu.Lock(); changed = append(changed, vs...); mu.Unlock() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	testenv.WaitFor(t, 30*time.Second, "both caches in the table", func() bool { return m.Table.Len() == 3 })
	mu.Lock()
	if len(changed) != 3 {
		t.Errorf("changed %v, want the 3 distinct VRPs once each", changed)
	}
	changed = nil
	mu.Unlock()
	for _, c := range []*testenv.StayRTR{c1, c2} {
		if v := testutil.ToFloat64(m.vrps.WithLabelValues(c.Addr)); v != 2 {
			t.Errorf("meshd_rpki_cache_vrps{cache=%s} = %v, want 2", c.Addr, v)
		}
	}

	// c2 withdraws r2, which c1 still holds, and r3, which nobody does.
	c2.Write([]testenv.ROA{})
	testenv.WaitFor(t, 30*time.Second, "c2's withdrawals", func() bool { return m.Table.Len() == 2 })
	mu.Lock()
	if len(changed) != 1 || changed[0].Prefix != netip.MustParsePrefix("2001:db8::/32") {
		t.Errorf("changed %v, want r3 alone", changed)
	}
	mu.Unlock()
	if s := m.Table.Validate(netip.MustParsePrefix("198.51.100.0/24"), 64501); s != Valid {
		t.Errorf("r2's route: %v, want valid (c1 holds it)", s)
	}
	if s := m.Table.Validate(netip.MustParsePrefix("2001:db8::/32"), 64502); s != NotFound {
		t.Errorf("r3's route: %v, want not-found", s)
	}
}
