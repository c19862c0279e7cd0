package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/monitor"
)

// Payload is the JSON POSTed to the webhook for each alert opening or
// clearing.
type Payload struct {
	ID              string    `json:"id"`
	Kind            string    `json:"kind"`
	State           string    `json:"state"` // open or clear
	Reason          string    `json:"reason,omitempty"`
	Router          string    `json:"router"`
	NetworkInstance string    `json:"network_instance,omitempty"`
	Neighbor        string    `json:"neighbor,omitempty"`
	RIB             string    `json:"rib,omitempty"`
	WatchedPrefix   string    `json:"watched_prefix,omitempty"`
	Prefix          string    `json:"prefix"`
	OriginAS        uint32    `json:"origin_as,omitempty"`
	Description     string    `json:"description,omitempty"`
	Detail          string    `json:"detail"`
	Time            time.Time `json:"time"`
}

func payload(t monitor.Transition, id string, now time.Time) Payload {
	p := Payload{ID: id, Kind: string(t.Kind), State: "clear", Reason: t.Reason, Router: t.Router, NetworkInstance: t.NetworkInstance,
		Neighbor: t.Neighbor, RIB: t.View, Prefix: t.Prefix.String(), OriginAS: t.Origin, Description: t.Description, Detail: t.Detail, Time: now}
	if t.Open {
		p.State = "open"
	}
	if t.Watched.IsValid() {
		p.WatchedPrefix = t.Watched.String()
	}
	return p
}

// webhook POSTs payloads in order from a bounded queue.
type webhook struct {
	cfg     monitor.Webhook
	log     *slog.Logger
	client  *http.Client
	queue   chan Payload
	results *prometheus.CounterVec
	// retryDelays are the waits before a failed POST is tried again; a
	// variable for tests.
	retryDelays []time.Duration
}

func newWebhook(cfg monitor.Webhook, log *slog.Logger) *webhook {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Queue == 0 {
		cfg.Queue = 1024
	}
	return &webhook{cfg: cfg, log: log, client: &http.Client{Timeout: cfg.Timeout}, queue: make(chan Payload, cfg.Queue),
		retryDelays: []time.Duration{time.Second, 2 * time.Second},
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_alerts_webhook_total",
			Help: "Alerts for the webhook by result: sent (a 2xx answer), failed (no 2xx after the retries), dropped (the queue was full)."}, []string{"result"})}
}

// send queues p, or drops it (counted, logged) when the queue is full:
// the routes' processing never waits on the webhook.
func (w *webhook) send(p Payload) {
	select {
	case w.queue <- p:
	default:
		w.results.WithLabelValues("dropped").Inc()
		w.log.Warn("alert not POSTed: the webhook's queue is full", slog.String("id", p.ID), slog.String("state", p.State), slog.Int("queue", w.cfg.Queue))
	}
}

func (w *webhook) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-w.queue:
			w.post(ctx, p)
		}
	}
}

func (w *webhook) post(ctx context.Context, p Payload) {
	body, err := json.Marshal(p)
	if err != nil {
		w.results.WithLabelValues("failed").Inc()
		return
	}
	for attempt := 0; ; attempt++ {
		err = w.try(ctx, body)
		if err == nil {
			w.results.WithLabelValues("sent").Inc()
			return
		}
		if attempt >= len(w.retryDelays) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(w.retryDelays[attempt]):
		}
	}
	w.results.WithLabelValues("failed").Inc()
	w.log.Warn("alert not POSTed to the webhook", slog.String("id", p.ID), slog.String("state", p.State), slog.Any("error", err))
}

func (w *webhook) try(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
