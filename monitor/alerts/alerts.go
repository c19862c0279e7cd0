// Package alerts runs the route monitor (package monitor) for every
// router's BMP RIBs at once and publishes what it finds. Each alert that
// opens or clears is:
//
//   - an alert event (InfluxDB's meshd_alert, the status page's timeline);
//   - an entry under its router's /meshd/alerts while it is open (the
//     gNMI target, the merged tree);
//   - a log line and the meshd_alerts_* metrics;
//   - when monitor.webhook.url is set, a JSON POST to it.
//
// Sources call Watches on every route they take in or let go, and Observe
// on the few it accepts; both are safe for concurrent use.
package alerts

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/monitor"
	"github.com/meshd/meshd/stage"
)

// Service is the monitor with its outputs.
type Service struct {
	core stage.Applier
	log  *slog.Logger
	idx  index // immutable after New: read without the lock

	mu sync.Mutex
	m  *monitor.Monitor

	hook *webhook
	met  metrics
	logs logBudget
}

// logBudget lets at most logBurst alert lines a logEvery into the log:
// a ROA mistake can make thousands of routes invalid at once, each an
// alert (every one is still an event, a metric and a POST). The lines
// left out are counted in the next one let through.
type logBudget struct {
	mu      sync.Mutex
	since   time.Time
	n, held int
}

const (
	logBurst = 20
	logEvery = 10 * time.Second
)

// take reports whether a line may be logged now, and how many were held
// back before it.
func (b *logBudget) take(now time.Time) (ok bool, held int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.since) >= logEvery {
		b.since, b.n = now, 0
	}
	if b.n >= logBurst {
		b.held++
		return false, 0
	}
	b.n++
	held, b.held = b.held, 0
	return true, held
}

type metrics struct {
	transitions *prometheus.CounterVec
	open        *prometheus.GaugeVec
	observed    prometheus.Counter
}

// New builds the service for cfg, publishing to core; it registers its
// metrics with reg (nil: none).
func New(cfg monitor.Config, core stage.Applier, log *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	m, err := monitor.New(cfg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Service{core: core, log: log.With(slog.String("part", "monitor")), m: m, idx: newIndex(cfg),
		met: metrics{
			transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_alerts_total",
				Help: "Route alerts opened and cleared (monitor: section), by kind and transition (open, clear)."}, []string{"kind", "transition"}),
			open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "meshd_alerts_open",
				Help: "Route alerts open now, by kind."}, []string{"kind"}),
			observed: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_alerts_routes_observed_total",
				Help: "Route announcements and withdrawals judged by the monitor (those under a watched prefix or from an own ASN)."}),
		}}
	cs := []prometheus.Collector{s.met.transitions, s.met.open, s.met.observed}
	if cfg.Webhook.URL != "" {
		s.hook = newWebhook(cfg.Webhook, s.log)
		cs = append(cs, s.hook.results)
	}
	if reg != nil {
		for _, c := range cs {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("monitor: metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Run POSTs alerts to the webhook until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if s.hook == nil {
		<-ctx.Done()
		return nil
	}
	s.hook.run(ctx)
	return nil
}

// Watches reports whether a route for p from origin is the monitor's
// concern: under a watched prefix, or originated by an own ASN.
func (s *Service) Watches(p netip.Prefix, origin uint32) bool {
	return s.idx.watches(p, origin)
}

// Observe judges a route a router's source took in or let go (its
// action), as seen from neighbor in network instance ni, and publishes
// the alerts it opened or cleared.
func (s *Service) Observe(router, ni, neighbor string, r *change.Route) {
	p, err := netip.ParsePrefix(r.Prefix)
	if err != nil {
		return
	}
	s.met.observed.Inc()
	rt := monitor.Route{
		Place:    monitor.Place{Router: router, NetworkInstance: ni, Neighbor: neighbor, View: r.RIB},
		Prefix:   p,
		Withdraw: r.Action == change.Withdraw,
		Origin:   r.OriginAS,
		ASPath:   r.ASPath,
		Invalid:  strings.HasPrefix(r.RPKI, "invalid"),
		Time:     time.Now(),
	}
	s.mu.Lock()
	ts := s.m.Observe(rt)
	s.mu.Unlock()
	if len(ts) > 0 {
		s.publish(ts, time.Now())
	}
}

// Open lists the open alerts.
func (s *Service) Open() []monitor.Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Open()
}

// ID names an alert in the tree: its kind, the watched prefix, the
// route's prefix and where it was seen (a visibility alert is one per
// watched prefix, under the router where it opened).
func ID(a monitor.Alert) string {
	w := ""
	if a.Watched.IsValid() {
		w = a.Watched.String()
	}
	if a.Kind == monitor.Visibility {
		return strings.Join([]string{string(a.Kind), w}, " ")
	}
	return strings.Join([]string{string(a.Kind), w, a.Prefix.String(), a.NetworkInstance, a.Neighbor, a.View}, " ")
}

func alertPath(id string, leaf ...string) *gpb.Path {
	p := &gpb.Path{Elem: []*gpb.PathElem{{Name: "meshd"}, {Name: "alerts"}, {Name: "alert", Key: map[string]string{"id": id}}}}
	for _, l := range leaf {
		p.Elem = append(p.Elem, &gpb.PathElem{Name: l})
	}
	return p
}

// publish hands transitions to the core, the log, the metrics and the
// webhook. Changes go router by router: each alert lives under the
// router where it opened.
func (s *Service) publish(ts []monitor.Transition, now time.Time) {
	for _, t := range ts {
		a := t.Alert
		id := ID(a)
		state := "clear"
		if t.Open {
			state = "open"
		}
		ev := change.Event{Time: now, Router: a.Router, NetworkInstance: a.NetworkInstance, Neighbor: a.Neighbor,
			Kind: change.EventAlert, Source: change.SourceMeshd, Fields: map[string]any{
				"kind": string(a.Kind), "state": state, "id": id, "prefix": a.Prefix.String(), "rib": a.View,
				"origin_as": int64(a.Origin), "detail": a.Detail, "reason": t.Reason,
			}}
		if a.Watched.IsValid() {
			ev.Fields["watched_prefix"] = a.Watched.String()
		}
		if a.Description != "" {
			ev.Fields["description"] = a.Description
		}
		var chs []change.Change
		set := func(leaf string, v *gpb.TypedValue) {
			chs = append(chs, change.Change{Router: a.Router, Path: alertPath(id, "state", leaf), Value: v, Time: now, Source: change.SourceMeshd})
		}
		if t.Open {
			set("id", change.String(id))
			set("kind", change.String(string(a.Kind)))
			if a.Watched.IsValid() {
				set("watched-prefix", change.String(a.Watched.String()))
			}
			set("prefix", change.String(a.Prefix.String()))
			set("network-instance", change.String(a.NetworkInstance))
			set("neighbor", change.String(a.Neighbor))
			if a.View != "" {
				set("rib", change.String(a.View))
			}
			set("origin-as", change.Uint(uint64(a.Origin)))
			if a.Description != "" {
				set("description", change.String(a.Description))
			}
			set("detail", change.String(a.Detail))
			set("opened", change.Uint(uint64(now.UnixNano())))
		} else {
			chs = append(chs, change.Change{Router: a.Router, Path: alertPath(id), Time: now, Source: change.SourceMeshd})
		}
		if res := s.core.Apply(chs, ev); res.Invalid > 0 {
			s.log.Warn("merge core refused an alert's leaves", slog.String("id", id), slog.Any("error", res.Err))
		}
		s.met.transitions.WithLabelValues(string(a.Kind), state).Inc()
		attrs := []any{slog.String("kind", string(a.Kind)), slog.String("router", a.Router),
			slog.String("neighbor", a.Neighbor), slog.String("rib", a.View), slog.String("prefix", a.Prefix.String())}
		ok, held := s.logs.take(now)
		if held > 0 {
			attrs = append(attrs, slog.Int("alert_lines_held_back", held))
		}
		if t.Open {
			s.met.open.WithLabelValues(string(a.Kind)).Inc()
			if ok {
				s.log.Warn("alert opened", append(attrs, slog.String("detail", a.Detail))...)
			}
		} else {
			s.met.open.WithLabelValues(string(a.Kind)).Dec()
			if ok {
				s.log.Info("alert cleared", append(attrs, slog.String("reason", t.Reason))...)
			}
		}
		if s.hook != nil {
			s.hook.send(payload(t, id, now))
		}
	}
}

// index answers Watches without the monitor's lock.
type index struct {
	lens4 []int
	lens6 []int
	set   map[netip.Prefix]bool
	own   map[uint32]bool
}

func newIndex(cfg monitor.Config) index {
	ix := index{set: map[netip.Prefix]bool{}, own: map[uint32]bool{}}
	for _, w := range cfg.Prefixes {
		p := w.Prefix.Masked()
		ix.set[p] = true
		if p.Addr().Is4() {
			if !slices.Contains(ix.lens4, p.Bits()) {
				ix.lens4 = append(ix.lens4, p.Bits())
			}
		} else if !slices.Contains(ix.lens6, p.Bits()) {
			ix.lens6 = append(ix.lens6, p.Bits())
		}
	}
	slices.Sort(ix.lens4)
	slices.Sort(ix.lens6)
	for _, a := range cfg.OwnASNs {
		ix.own[a] = true
	}
	return ix
}

func (ix *index) watches(p netip.Prefix, origin uint32) bool {
	if origin != 0 && ix.own[origin] {
		return true
	}
	lens := ix.lens6
	if p.Addr().Is4() {
		lens = ix.lens4
	}
	for _, l := range lens {
		if l > p.Bits() {
			break
		}
		q, _ := p.Addr().Prefix(l)
		if ix.set[q] {
			return true
		}
	}
	return false
}
