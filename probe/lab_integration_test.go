//go:build integration

package probe

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
)

type neighbor struct {
	addr, local string
	as          int
	password    string
	// passive waits for the neighbor to connect. Two gobgpd dialing each
	// other every second can go on colliding: a CI run's IPv4 session never
	// came up in 36 s while its IPv6 twin took 6.5 s. One side passive
	// leaves one connection to make, and the probe watches it the same.
	passive bool
}

// startGoBGP runs gobgpd in ns with the given neighbors, hold 9 s and
// keepalive 3 s.
func startGoBGP(t *testing.T, ns *testenv.Netns, as int, routerID string, nbrs []neighbor) *testenv.Daemon {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[global.config]\n  as = %d\n  router-id = %q\n  port = 179\n", as, routerID)
	for _, n := range nbrs {
		fmt.Fprintf(&b, "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = %q\n    peer-as = %d\n", n.addr, n.as)
		if n.password != "" {
			fmt.Fprintf(&b, "    auth-password = %q\n", n.password)
		}
		fmt.Fprintf(&b, "  [neighbors.transport.config]\n    local-address = %q\n", n.local)
		if n.passive {
			b.WriteString("    passive-mode = true\n")
		}
		b.WriteString("  [neighbors.timers.config]\n    hold-time = 9\n    keepalive-interval = 3\n    connect-retry = 1\n")
		if strings.Contains(n.addr, ":") {
			b.WriteString("  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv6-unicast\"\n")
		} else {
			b.WriteString("  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv4-unicast\"\n")
		}
	}
	return testenv.StartGobgpd(t, ns, b.String())
}

// startFRR runs FRR's bgpd (testenv.StartFRR: no zebra) in ns with the
// given neighbors.
func startFRR(t *testing.T, ns *testenv.Netns, as int, routerID string, nbrs []neighbor) *testenv.Daemon {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "hostname %s\nlog stdout warnings\n!\nrouter bgp %d\n bgp router-id %s\n no bgp ebgp-requires-policy\n no bgp network import-check\n", ns.Name, as, routerID)
	for _, n := range nbrs {
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n neighbor %s timers 3 9\n neighbor %s timers connect 1\n neighbor %s update-source %s\n",
			n.addr, n.as, n.addr, n.addr, n.addr, n.local)
		if n.password != "" {
			fmt.Fprintf(&b, " neighbor %s password %s\n", n.addr, n.password)
		}
	}
	b.WriteString(" address-family ipv6 unicast\n")
	for _, n := range nbrs {
		if strings.Contains(n.addr, ":") {
			fmt.Fprintf(&b, "  neighbor %s activate\n", n.addr)
		}
	}
	b.WriteString(" exit-address-family\n!\n")
	return testenv.StartFRR(t, ns, b.String())
}

// probeRun runs the probe inside ns and collects what it reports.
type probeRun struct {
	mu      sync.Mutex
	samples []Sample
	events  []change.Event
	cancel  context.CancelFunc
	done    chan error
}

func startProbe(t *testing.T, cfg Config) *probeRun {
	t.Helper()
	r := &probeRun{done: make(chan error, 1)}
	cfg.OnSample = func(s Sample) {
		r.mu.Lock()
		r.samples = append(r.samples, s)
		r.mu.Unlock()
	}
	cfg.OnEvent = func(e change.Event) {
		t.Logf("event %s %s %v", e.Kind, e.Neighbor, e.Fields)
		r.mu.Lock()
		r.events = append(r.events, e)
		r.mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("probe: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("probe did not stop")
		}
	})
	return r
}

// waitSamples waits until n more samples toward peer arrive and returns
// them.
func (r *probeRun) waitSamples(t *testing.T, peer netip.Addr, n int, timeout time.Duration) []Sample {
	t.Helper()
	r.mu.Lock()
	start := r.count(peer)
	r.mu.Unlock()
	var out []Sample
	testenv.WaitFor(t, timeout, fmt.Sprintf("%d samples toward %s", n, peer), func() bool {
		out = r.since(peer, start)
		return len(out) >= n
	})
	return out
}

// since returns the samples toward peer from its sample number start on.
func (r *probeRun) since(peer netip.Addr, start int) []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Sample
	seen := 0
	for _, s := range r.samples {
		if s.PeerKey.Peer != peer {
			continue
		}
		if seen >= start {
			out = append(out, s)
		}
		seen++
	}
	return out
}

// counted is count under the lock.
func (r *probeRun) counted(peer netip.Addr) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count(peer)
}

func (r *probeRun) count(peer netip.Addr) int {
	n := 0
	for _, s := range r.samples {
		if s.PeerKey.Peer == peer {
			n++
		}
	}
	return n
}

func (r *probeRun) last(peer netip.Addr) (Sample, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.samples) - 1; i >= 0; i-- {
		if r.samples[i].PeerKey.Peer == peer {
			return r.samples[i], true
		}
	}
	return Sample{}, false
}

func rttsOf(ss []Sample) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = s.RTT
	}
	return out
}
