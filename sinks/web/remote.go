package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/meshd/meshd/internal/sessions"
)

// Replicas: in cluster mode each replica collects part of the fleet, and
// its page answers for the whole of it, as /api/sessions does. The sink
// follows every other replica's own part over that replica's live stream
// (?scope=local), and sends those rows and events on to its pages tagged
// with the replica; a replica it cannot reach has its rows removed and is
// named on the page. A session of another replica's is read from that
// replica (its page data), and its plots follow by that read, every few
// seconds, rather than live.

// peerRetry is the wait before a replica's stream is opened again.
const peerRetry = 2 * time.Second

// remotes follows the other replicas.
type remotes struct {
	peers  func() []string
	client *http.Client
	scheme string
	st     *state
	log    *slog.Logger

	mu      sync.Mutex
	running map[string]context.CancelFunc
}

// run starts and stops a follower per replica as the cluster changes,
// until ctx ends.
func (r *remotes) run(ctx context.Context) {
	tick := time.NewTicker(peerRetry)
	defer tick.Stop()
	for {
		want := map[string]bool{}
		for _, p := range r.peers() {
			want[p] = true
		}
		r.mu.Lock()
		for p, stop := range r.running {
			if !want[p] {
				stop()
				delete(r.running, p)
				r.st.dropReplica(p)
			}
		}
		for p := range want {
			if r.running[p] == nil {
				c, stop := context.WithCancel(ctx)
				r.running[p] = stop
				go r.follow(c, p)
			}
		}
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// follow reads one replica's stream, again after each failure, until
// ctx ends.
func (r *remotes) follow(ctx context.Context, peer string) {
	for ctx.Err() == nil {
		err := r.stream(ctx, peer)
		r.st.dropReplica(peer)
		if ctx.Err() != nil {
			return
		}
		r.st.setUnreachable(peer, err)
		r.log.Debug("status page: replica's stream ended", slog.String("replica", peer), slog.Any("err", err))
		select {
		case <-ctx.Done():
		case <-time.After(peerRetry):
		}
	}
}

func (r *remotes) stream(ctx context.Context, peer string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.scheme+"://"+peer+"/api/status/stream?scope=local", nil)
	if err != nil {
		return err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	var event string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err == io.EOF {
				return fmt.Errorf("stream ended")
			}
			return err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			event = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			if err := r.take(peer, event, []byte(line[len("data: "):])); err != nil {
				return fmt.Errorf("%s message: %w", event, err)
			}
		}
	}
}

// take applies one message of a replica's stream.
func (r *remotes) take(peer, event string, data []byte) error {
	switch event {
	case "fleet", "rows":
		var m struct {
			Rows    []RowView `json:"rows"`
			Removed []string  `json:"removed"`
			Events  []Event   `json:"events"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			return err
		}
		r.st.setReplica(peer, m.Rows, m.Removed, event == "fleet")
		r.st.addRemoteEvents(peer, m.Events, event == "fleet")
	case "events":
		var evs []Event
		if err := json.Unmarshal(data, &evs); err != nil {
			return err
		}
		r.st.addRemoteEvents(peer, evs, false)
	case "alerts":
		var m alertsMsg
		if err := json.Unmarshal(data, &m); err != nil {
			return err
		}
		r.st.setRemoteAlerts(peer, m.Alerts)
	}
	return nil
}

// setReplica takes a replica's rows: all of them (full), or those that
// changed and those removed.
func (s *state) setReplica(peer string, rows []RowView, removed []string, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.unreachable, peer)
	held := s.remote[peer]
	if held == nil || full {
		for id := range held {
			s.remoteDirty[id] = struct{}{}
		}
		held = map[string]RowView{}
		s.remote[peer] = held
	}
	for _, row := range rows {
		row.Replica = peer
		held[row.ID] = row
		s.remoteDirty[row.ID] = struct{}{}
	}
	for _, id := range removed {
		delete(held, id)
		s.remoteDirty[id] = struct{}{}
	}
	s.poke()
}

// dropReplica removes a replica's rows (it left the cluster, or its
// stream ended: they are stale).
func (s *state) dropReplica(peer string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.remote[peer] {
		s.remoteDirty[id] = struct{}{}
	}
	delete(s.remote, peer)
	delete(s.unreachable, peer)
	if _, ok := s.remoteAlerts[peer]; ok {
		delete(s.remoteAlerts, peer)
		s.alertsDirty = true
	}
	s.poke()
}

func (s *state) setUnreachable(peer string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unreachable[peer] = err.Error()
	s.poke()
}

// addRemoteEvents adds a replica's events to the timeline, each once: a
// stream opened again starts with events already taken (first: its
// fleet message), unless the replica started again (its numbers did).
func (s *state) addRemoteEvents(peer string, evs []Event, first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := s.remoteSeq[peer]
	if first && (len(evs) == 0 || evs[len(evs)-1].Seq < seen) {
		seen = 0
	}
	for _, e := range evs {
		if e.Seq <= seen {
			continue
		}
		seen = e.Seq
		e.Replica = peer
		s.events.add(e)
	}
	s.remoteSeq[peer] = seen
	s.poke()
}

// remoteRow finds another replica's row by ID: of several (a session
// moving between replicas), the one joined from more sources, as
// /api/sessions picks, then the replica named first.
func (s *state) remoteRow(id string) (RowView, bool) {
	var best RowView
	found := false
	for _, rows := range s.remote {
		r, ok := rows[id]
		if !ok {
			continue
		}
		if !found || better(r, best) {
			best, found = r, true
		}
	}
	return best, found
}

func better(a, b RowView) bool {
	if ca, cb := sessions.SourceCount(a.Sources), sessions.SourceCount(b.Sources); ca != cb {
		return ca > cb
	}
	return a.Replica < b.Replica
}

// fleetRow is the row the fleet's pages show for a session: this
// replica's own, unless another replica's is joined from more sources.
func (s *state) fleetRow(k key) (RowView, bool) {
	remote, rok := s.remoteRow(k.ID())
	if e := s.routers[k.router][k]; e != nil && e.row.Session() {
		own := view(k, e)
		if rok && sessions.SourceCount(remote.Sources) > sessions.SourceCount(own.Sources) {
			return remote, true
		}
		return own, true
	}
	return remote, rok
}

// unreachableList is the replicas whose streams failed, sorted.
func (s *state) unreachableList() []string {
	out := make([]string, 0, len(s.unreachable))
	for p := range s.unreachable {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// proxySession answers a session page's read for a session of another
// replica's, from that replica.
func (s *Sink) proxySession(w http.ResponseWriter, r *http.Request, peer, id string) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, s.rem.scheme+"://"+peer+"/api/status/session?scope=local&id="+url.QueryEscape(id), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	resp, err := s.rem.client.Do(req.WithContext(ctx))
	if err != nil {
		http.Error(w, "the replica "+peer+" that collects this session did not answer: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
