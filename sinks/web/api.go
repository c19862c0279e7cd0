package web

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/meshd/meshd/change"
)

// Fleet is /api/status/fleet: every session and the last events, and
// in cluster mode the replicas whose part is missing because they do not
// answer (?scope=local: this replica's part alone).
type Fleet struct {
	Rows        []RowView `json:"rows"`
	Events      []Event   `json:"events"`
	Unreachable []string  `json:"unreachable,omitempty"`
	// Alerts are the open route alerts, newest first (at most 500);
	// OpenAlerts counts them all.
	Alerts     []Alert `json:"alerts"`
	OpenAlerts int     `json:"open_alerts"`
}

// Detail is /api/status/session: one session's row, its probe history,
// its last messages and events, and every leaf meshd holds below it.
type Detail struct {
	Row          RowView  `json:"row"`
	History      Series   `json:"history"`
	OpenSent     *message `json:"open_sent,omitempty"`
	OpenReceived *message `json:"open_received,omitempty"`
	Notification *message `json:"notification,omitempty"`
	Events       []Event  `json:"events"`
	Leaves       []Leaf   `json:"leaves"`
}

// Leaf is one value meshd holds for a session: its path below the
// neighbor (OpenConfig's, or under meshd/ for meshd's model), the
// source it came from and when.
type Leaf struct {
	Path   string    `json:"path"`
	Value  any       `json:"value"`
	Source string    `json:"source"`
	Time   time.Time `json:"time"`
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Sink) fleet(w http.ResponseWriter, r *http.Request) {
	n := 200
	if v, err := strconv.Atoi(r.URL.Query().Get("events")); err == nil && v >= 0 {
		n = v
	}
	rows, events, alerts, unreachable := s.st.fleet(n, r.URL.Query().Get("scope") == "local")
	if rows == nil {
		rows = []RowView{}
	}
	writeJSON(w, Fleet{Rows: rows, Events: events, Unreachable: unreachable, Alerts: alerts.Alerts, OpenAlerts: alerts.Open})
}

func (s *Sink) session(w http.ResponseWriter, r *http.Request) {
	k, ok := parseID(r.URL.Query().Get("id"))
	if !ok {
		http.Error(w, "id: want router|network-instance|neighbor", http.StatusBadRequest)
		return
	}
	d, ok := s.st.detail(k, 500)
	if !ok {
		if s.rem != nil && r.URL.Query().Get("scope") != "local" {
			s.st.mu.Lock()
			row, remote := s.st.remoteRow(k.ID())
			s.st.mu.Unlock()
			if remote {
				s.proxySession(w, r, row.Replica, k.ID())
				return
			}
		}
		http.Error(w, "no such session: "+k.ID(), http.StatusNotFound)
		return
	}
	d.Leaves = leavesOf(s.snap.Snapshot(k.router), k)
	if d.Events == nil {
		d.Events = []Event{}
	}
	writeJSON(w, d)
}

// leavesOf picks a session's leaves out of its router's snapshot, in the
// snapshot's order; meshd's model's paths are put under "meshd/".
func leavesOf(ups []change.Update, k key) []Leaf {
	out := []Leaf{}
	for _, u := range ups {
		ni, nbr, rest, ok := change.NeighborOf(u.Path)
		if !ok || ni != k.ni || nbr != k.neighbor || len(rest) == 0 || u.Value == nil {
			continue
		}
		var b []byte
		if u.Path.GetElem()[0].GetName() == "meshd" {
			b = append(b, "/meshd"...)
		}
		for _, e := range rest {
			b = change.AppendElemKey(b, e) // "/name[key=value]"
		}
		v, err := change.JSONValue(u.Value)
		if err != nil {
			v = err.Error()
		}
		out = append(out, Leaf{Path: string(b[1:]), Value: v, Source: u.Source.String(), Time: u.Time})
	}
	return out
}

// stream is /api/status/stream: Server-Sent Events, starting with the
// whole fleet; ?session=ID adds that session's new probe points.
func (s *Sink) stream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	c := &client{ch: make(chan sse, clientQueue), done: make(chan struct{}), local: r.URL.Query().Get("scope") == "local"}
	if id := r.URL.Query().Get("session"); id != "" {
		if c.watch, c.watching = parseID(id); !c.watching {
			http.Error(w, "session: want router|network-instance|neighbor", http.StatusBadRequest)
			return
		}
	}
	if s.hub.count() >= s.cfg.MaxClients {
		w.Header().Set("Retry-After", "10")
		http.Error(w, "status page: too many live pages (status-page.max-clients)", http.StatusServiceUnavailable)
		return
	}
	select {
	case <-s.hub.running:
	case <-r.Context().Done():
		return
	}
	select {
	case s.hub.joins <- c:
	case <-s.hub.stopped:
		http.Error(w, "meshd is stopping", http.StatusServiceUnavailable)
		return
	case <-r.Context().Done():
		return
	}
	defer s.hub.remove(c, s.clients)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	// A comment now and then keeps proxies and the browser from taking
	// a quiet fleet for a dead stream.
	beat := time.NewTicker(15 * time.Second)
	defer beat.Stop()
	for {
		select {
		case m := <-c.ch:
			if _, err := w.Write(m); err != nil {
				return
			}
			// Send what is queued with it in one flush.
			for len(c.ch) > 0 {
				if _, err := w.Write(<-c.ch); err != nil {
					return
				}
			}
			fl.Flush()
		case <-beat.C:
			if _, err := w.Write([]byte(": beat\n\n")); err != nil {
				return
			}
			fl.Flush()
		case <-c.done:
			return
		case <-r.Context().Done():
			return
		}
	}
}
