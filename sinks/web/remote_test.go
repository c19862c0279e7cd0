package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/sessions"
	"github.com/meshd/meshd/merge"
)

// replica runs a page's sink on its own merge core behind its own HTTP
// server; peers, when set, are the other replicas it follows.
func replica(t *testing.T, peers func() []string) (*merge.Core, *httptest.Server) {
	t.Helper()
	core, err := merge.New()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Interval: 50 * time.Millisecond}, core, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if peers != nil {
		s.rem = &remotes{peers: peers, client: http.DefaultClient, scheme: "http", st: s.st, log: s.log, running: map[string]context.CancelFunc{}}
	}
	m := mux{http.NewServeMux()}
	s.Register(m)
	srv := httptest.NewServer(m)
	feed := core.Subscribe("status-page", 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, feed) }()
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		cancel()
		<-done
		feed.Close()
	})
	// Events are no part of the core's snapshot the copy starts from: a
	// test's changes come once it follows the core.
	select {
	case <-s.hub.running:
	case err := <-done:
		done <- err
		t.Fatalf("the page's sink ended before it ran: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the page's sink did not start following the core in a minute")
	}
	return core, srv
}

// TestReplicas: in cluster mode a replica's page answers for the fleet:
// another replica's sessions and events come live, tagged with it, its
// session pages are read from it, and when it goes its rows go and it is
// named unreachable.
func TestReplicas(t *testing.T) {
	coreB, srvB := replica(t, nil)
	peerB := strings.TrimPrefix(srvB.URL, "http://")
	coreA, srvA := replica(t, func() []string { return []string{peerB} })
	now := time.Now()
	est := func(router, nbr string) change.Change {
		c := sessionState("default", nbr, "ESTABLISHED", change.SourceGNMI, now)
		c.Router = router
		return c
	}
	coreA.Apply([]change.Change{est("a1", "192.0.2.1")})
	coreB.Apply([]change.Change{est("b1", "192.0.2.2")})

	st := openStream(t, srvA.URL, "")
	fleet := map[string]RowView{}
	apply := func(b []byte) {
		for id, r := range rowsOf(t, b) {
			if r.ID == "" {
				delete(fleet, id)
			} else {
				fleet[id] = r
			}
		}
	}
	for range 100 {
		ev, b := st.next()
		if ev == "fleet" || ev == "rows" {
			apply(b)
		}
		if fleet["b1|default|192.0.2.2"].Replica == peerB && fleet["a1|default|192.0.2.1"].ID != "" {
			break
		}
	}
	if r := fleet["b1|default|192.0.2.2"]; r.Replica != peerB || r.State != "ESTABLISHED" {
		t.Fatalf("replica A's page: b1's session %+v, want it from %s", r, peerB)
	}
	if fleet["a1|default|192.0.2.1"].Replica != "" {
		t.Errorf("A's own session is tagged with a replica")
	}

	// A change on B reaches A's page live.
	down := est("b1", "192.0.2.2")
	down.Value = change.String("IDLE")
	coreB.Apply([]change.Change{down})
	st.until("rows", func(b []byte) bool { return rowsOf(t, b)["b1|default|192.0.2.2"].State == "IDLE" })
	st.until("events", func(b []byte) bool {
		var evs []Event
		_ = json.Unmarshal(b, &evs)
		return len(evs) > 0 && evs[0].Replica == peerB && evs[0].Router == "b1"
	})

	// B's session page, through A.
	res, err := http.Get(srvA.URL + "/api/status/session?id=" + url.QueryEscape("b1|default|192.0.2.2"))
	if err != nil {
		t.Fatal(err)
	}
	var d Detail
	_ = json.NewDecoder(res.Body).Decode(&d)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || d.Row.State != "IDLE" {
		t.Errorf("b1's session read through A: %s, row %+v", res.Status, d.Row)
	}

	// B goes: its rows leave A's page, and A names it.
	srvB.CloseClientConnections()
	srvB.Close()
	st.until("rows", func(b []byte) bool {
		r, ok := rowsOf(t, b)["b1|default|192.0.2.2"]
		return ok && r.ID == ""
	})
	st.until("cluster", func(b []byte) bool { return strings.Contains(string(b), peerB) })
}

// TestMovingSession: while a session moves between replicas, several
// hold it; the fleet shows the row joined from more sources, as
// /api/sessions does, whoever holds it.
func TestMovingSession(t *testing.T) {
	s := newState(time.Hour, 10)
	const id = "r2|default|10.100.1.1"
	row := func(sources string) RowView {
		return RowView{ID: id, Row: sessions.Row{Router: "r2", NetworkInstance: "default", Neighbor: "10.100.1.1", State: "ESTABLISHED", Sources: sources}}
	}
	// This replica holds its BMP part only; meshd-2 too; meshd-1 all of it.
	src := change.Update{Router: "r2", Path: change.NeighborPath("default", "10.100.1.1", "state", "session-state"), Value: change.String("ESTABLISHED"), Source: change.SourceBMP}
	srcs := change.Update{Router: "r2", Path: change.MeshdNeighborPath("default", "10.100.1.1", "verdict", "state", "sources"), Value: change.StringList([]string{"bmp"}), Source: change.SourceMeshd}
	s.Write([]change.Update{src, srcs}, nil)
	s.setReplica("meshd-2:9100", []RowView{row("bmp")}, nil, true)
	s.setReplica("meshd-1:9100", []RowView{row("bmp,gnmi,probe")}, nil, true)
	rows, _, _, _ := s.fleet(0, false)
	if len(rows) != 1 || rows[0].Sources != "bmp,gnmi,probe" || rows[0].Replica != "meshd-1:9100" {
		t.Fatalf("fleet: %+v, want meshd-1's joined row once", rows)
	}
	d := s.take(0, true)
	if len(d.rows) != 1 || d.rows[0].Replica != "meshd-1:9100" || len(d.localRows) != 1 || d.localRows[0].Sources != "bmp" {
		t.Errorf("delta: fleet %+v, local %+v", d.rows, d.localRows)
	}
	// meshd-1 goes: meshd-2's and this replica's tie; this one's wins.
	s.dropReplica("meshd-1:9100")
	d = s.take(0, true)
	if len(d.rows) != 1 || d.rows[0].Replica != "" {
		t.Errorf("after meshd-1 went: %+v, want this replica's row", d.rows)
	}
}
