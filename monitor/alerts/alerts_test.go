package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/merge"
	"github.com/meshd/meshd/monitor"
)

// receiver is a loopback webhook receiver; fail makes it answer 500.
type receiver struct {
	mu   sync.Mutex
	got  []Payload
	fail int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.fail > 0 {
		rc.fail--
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	var p Payload
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil || r.Header.Get("Content-Type") != "application/json" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.got = append(rc.got, p)
}

func (rc *receiver) payloads() []Payload {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Payload(nil), rc.got...)
}

// TestPublish drives a Service on a real merge core with a loopback
// webhook: an origin hijack of a watched prefix opens an alert under the
// router's /meshd/alerts, with an event and a POST; the route going
// back to the expected origin clears all three. The receiver fails the
// first POST: it is tried again.
func TestPublish(t *testing.T) {
	core, err := merge.New(merge.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	sub := core.Subscribe("t", 1024)
	defer sub.Close()
	rc := &receiver{fail: 1}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	cfg := monitor.Config{
		Prefixes: []monitor.Watch{{Prefix: netip.MustParsePrefix("203.0.113.0/24"), ASN: []uint32{64500}, Description: "lab anycast"}},
		Webhook:  monitor.Webhook{URL: srv.URL},
	}
	s, err := New(cfg, core, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s.hook.retryDelays = []time.Duration{10 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Run(ctx) }()

	watches := []struct {
		p      string
		origin uint32
		want   bool
	}{
		{"203.0.113.0/24", 64999, true},
		{"203.0.113.128/25", 64999, true},
		{"203.0.112.0/23", 64500, false},
		{"198.51.100.0/24", 64500, false},
	}
	for _, w := range watches {
		if got := s.Watches(netip.MustParsePrefix(w.p), w.origin); got != w.want {
			t.Errorf("Watches(%s, AS%d) = %v, want %v", w.p, w.origin, got, w.want)
		}
	}

	route := func(a change.RouteAction, origin uint32) *change.Route {
		return &change.Route{Action: a, AfiSafi: "IPV4_UNICAST", RIB: "ADJ_RIB_IN_POST", Prefix: "203.0.113.0/24", OriginAS: origin, ASPath: fmt.Sprintf("64510 %d", origin)}
	}
	s.Observe("r1", "default", "192.0.2.2", route(change.Announce, 64999))
	id := ID(monitor.Alert{Kind: monitor.Origin, Watched: netip.MustParsePrefix("203.0.113.0/24"), Prefix: netip.MustParsePrefix("203.0.113.0/24"),
		Place: monitor.Place{Router: "r1", NetworkInstance: "default", Neighbor: "192.0.2.2", View: "ADJ_RIB_IN_POST"}})
	leaf := func(name string) *gpbValue {
		v, _, _, ok := core.Leaf("r1", alertPath(id, "state", name))
		if !ok {
			return nil
		}
		return &gpbValue{v.GetStringVal(), v.GetUintVal()}
	}
	if k := leaf("kind"); k == nil || k.s != "origin" {
		t.Fatalf("kind leaf %v, want origin", k)
	}
	if o := leaf("origin-as"); o == nil || o.u != 64999 {
		t.Errorf("origin-as leaf %v", o)
	}
	if d := leaf("description"); d == nil || d.s != "lab anycast" {
		t.Errorf("description leaf %v", d)
	}
	s.Observe("r1", "default", "192.0.2.2", route(change.Announce, 64500))
	if k := leaf("kind"); k != nil {
		t.Errorf("alert still in the tree after it cleared: %v", k)
	}
	if n := len(s.Open()); n != 0 {
		t.Errorf("%d alerts open", n)
	}

	deadline := time.Now().Add(10 * time.Second)
	for len(rc.payloads()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ps := rc.payloads()
	if len(ps) != 2 || ps[0].State != "open" || ps[1].State != "clear" || ps[0].ID != id || ps[0].Router != "r1" || ps[0].Reason != "" || ps[1].Reason == "" {
		t.Fatalf("webhook got %+v", ps)
	}
	var evs []change.Event
	for len(evs) < 2 {
		select {
		case b := <-sub.C():
			for _, e := range b.Events {
				if e.Kind == change.EventAlert {
					evs = append(evs, e)
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("alert events: %d", len(evs))
		}
	}
	if evs[0].Fields["state"] != "open" || evs[1].Fields["state"] != "clear" || evs[0].Router != "r1" || evs[0].Fields["kind"] != "origin" {
		t.Errorf("events %v / %v", evs[0].Fields, evs[1].Fields)
	}
}

type gpbValue struct {
	s string
	u uint64
}

func TestLogBudget(t *testing.T) {
	var b logBudget
	t0 := time.Unix(1_700_000_000, 0)
	logged := 0
	for i := range 50 {
		if ok, _ := b.take(t0.Add(time.Duration(i) * time.Millisecond)); ok {
			logged++
		}
	}
	if logged != logBurst {
		t.Errorf("%d of 50 lines in a burst logged, want %d", logged, logBurst)
	}
	ok, held := b.take(t0.Add(logEvery))
	if !ok || held != 50-logBurst {
		t.Errorf("after the window: ok %v, held back %d, want %d", ok, held, 50-logBurst)
	}
}
