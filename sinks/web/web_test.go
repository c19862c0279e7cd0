package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/merge"
)

// mux is the ops server as far as the page needs it.
type mux struct{ *http.ServeMux }

func (m mux) AddCheck(string, func() error) {}

func sessionState(ni, nbr, v string, src change.Source, at time.Time) change.Change {
	return change.Change{Router: "r1", Path: change.NeighborPath(ni, nbr, "state", "session-state"),
		Value: change.String(v), Time: at, Source: src}
}

func probe(nbr, leaf string, v float64, at time.Time) change.Change {
	return change.Change{Router: "r1", Path: change.MeshdNeighborPath("default", nbr, "probe", "state", leaf),
		Value: change.Decimal(v, 3), Time: at, Source: change.SourceProbe}
}

// start runs the page's sink on a real merge core behind a real HTTP
// server.
func start(t *testing.T, cfg Config) (*merge.Core, *Sink, string) {
	t.Helper()
	core, err := merge.New()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, core, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	m := mux{http.NewServeMux()}
	s.Register(m)
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	feed := core.Subscribe("status-page", 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, feed) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		feed.Close()
	})
	// The page's copy starts from the core's snapshot, which holds the
	// latest values and no history: a test's changes must come after it
	// follows the core, or on a busy machine the probe samples applied
	// first were only a snapshot's last value (TestPageInChromium held 1
	// point of 30 in the 5/5 series).
	select {
	case <-s.hub.running:
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("the page's sink ended before it ran: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the page's sink did not start following the core in a minute")
	}
	return core, s, srv.URL
}

// sseReader reads a stream's messages as (event, data).
type sseReader struct {
	t  *testing.T
	br *bufio.Reader
}

func openStream(t *testing.T, base, session string) *sseReader {
	t.Helper()
	u := base + "/api/status/stream"
	if session != "" {
		u += "?session=" + url.QueryEscape(session)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %s %s", res.Status, res.Header.Get("Content-Type"))
	}
	return &sseReader{t: t, br: bufio.NewReader(res.Body)}
}

func (r *sseReader) next() (string, []byte) {
	r.t.Helper()
	var ev string
	var data []byte
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatalf("stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && ev != "":
			return ev, data
		case strings.HasPrefix(line, "event: "):
			ev = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = []byte(line[len("data: "):])
		}
	}
}

// until reads messages until one of kind event satisfies ok.
func (r *sseReader) until(event string, ok func([]byte) bool) {
	r.t.Helper()
	for range 100 {
		ev, data := r.next()
		if ev == event && ok(data) {
			return
		}
	}
	r.t.Fatalf("no %s message as wanted in 100", event)
}

func rowsOf(t *testing.T, data []byte) map[string]RowView {
	var m struct {
		Rows    []RowView `json:"rows"`
		Removed []string  `json:"removed"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]RowView{}
	for _, r := range m.Rows {
		out[r.ID] = r
	}
	for _, id := range m.Removed {
		out[id] = RowView{}
	}
	return out
}

func TestStream(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	core, s, base := start(t, Config{Interval: 50 * time.Millisecond})
	// Held before the page runs: it comes with the resync.
	core.Apply([]change.Change{sessionState("default", "192.0.2.1", "ESTABLISHED", change.SourceGNMI, t0)})
	const id = "r1|default|192.0.2.1"

	st := openStream(t, base, id)
	st.until("fleet", func(b []byte) bool {
		r, ok := rowsOf(t, b)[id]
		return ok && r.State == "ESTABLISHED"
	})

	// A state change from gNMI is a row change and an event; a probe
	// sample is a row change and a point of the watched session.
	core.Apply([]change.Change{sessionState("default", "192.0.2.1", "ACTIVE", change.SourceGNMI, t0.Add(time.Second))})
	st.until("rows", func(b []byte) bool { return rowsOf(t, b)[id].State == "ACTIVE" })
	st.until("events", func(b []byte) bool {
		var evs []Event
		if err := json.Unmarshal(b, &evs); err != nil {
			t.Fatal(err)
		}
		return len(evs) == 1 && evs[0].Kind == string(EventState) && evs[0].Fields["new_state"] == "ACTIVE" && evs[0].Fields["old_state"] == "ESTABLISHED"
	})
	core.Apply([]change.Change{probe("192.0.2.1", "rtt-last", 1500.5, t0.Add(2*time.Second)), probe("192.0.2.1", "rtt-min", 900, t0.Add(2*time.Second))})
	st.until("points", func(b []byte) bool {
		var m struct {
			ID     string `json:"id"`
			Series Series `json:"series"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m.ID == id && len(m.Series.Time) == 1 && m.Series.Time[0] == float64(t0.Unix()+2) &&
			*m.Series.RTT[0] == 1.5005 && *m.Series.Min[0] == 0.9
	})

	// The session's page: its row, history and every leaf held.
	res, err := http.Get(base + "/api/status/session?id=" + url.QueryEscape(id))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var d Detail
	if err := json.NewDecoder(res.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Row.State != "ACTIVE" || d.Row.RTTus != 1500.5 || len(d.History.Time) != 1 || len(d.Events) != 1 {
		t.Errorf("detail: row %+v, history %v, events %v", d.Row, d.History.Time, d.Events)
	}
	paths := map[string]any{}
	for _, l := range d.Leaves {
		paths[l.Path] = l.Value
	}
	if paths["state/session-state"] != "ACTIVE" || paths["meshd/probe/state/rtt-last"] != 1500.5 {
		t.Errorf("leaves: %v", paths)
	}
	if got := testutil.ToFloat64(s.clients); got != 1 {
		t.Errorf("clients gauge %v, want 1", got)
	}
}

func TestAPIErrors(t *testing.T) {
	_, _, base := start(t, Config{})
	for _, c := range []struct {
		path string
		code int
	}{
		{"/api/status/session?id=nope", http.StatusBadRequest},
		{"/api/status/session?id=" + url.QueryEscape("r9|default|192.0.2.9"), http.StatusNotFound},
		{"/api/status/stream?session=x", http.StatusBadRequest},
		{"/api/status/fleet", http.StatusOK},
		{"/", http.StatusOK},
		{"/assets/app.js", http.StatusOK},
		{"/nothing-here", http.StatusNotFound},
	} {
		res, err := http.Get(base + c.path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != c.code {
			t.Errorf("GET %s: %d, want %d", c.path, res.StatusCode, c.code)
		}
	}
}

func TestMaxClients(t *testing.T) {
	_, _, base := start(t, Config{MaxClients: 1})
	openStream(t, base, "").until("fleet", func([]byte) bool { return true })
	res, err := http.Get(base + "/api/status/stream")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second stream: %d, want 503", res.StatusCode)
	}
}

// A page that stops reading is cut off once its queue is full, and the
// others still get every message.
func TestSlowClientCutOff(t *testing.T) {
	h := &hub{clients: map[*client]struct{}{}}
	slow := &client{ch: make(chan sse, 2), done: make(chan struct{})}
	fast := &client{ch: make(chan sse, 8), done: make(chan struct{})}
	cut := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "y"})
	h.add(slow, nil, gauge)
	h.add(fast, nil, gauge)
	for i := range 3 {
		h.broadcast([]sse{encode("rows", i)}, nil, nil, cut, gauge)
		<-fast.ch
	}
	select {
	case <-slow.done:
	default:
		t.Fatal("slow client not cut off")
	}
	if testutil.ToFloat64(cut) != 1 || h.count() != 1 {
		t.Errorf("cut %v, clients %d; want 1, 1", testutil.ToFloat64(cut), h.count())
	}
}

func TestAssets(t *testing.T) {
	for _, f := range []string{"assets/index.html", "assets/app.js", "assets/style.css", chartLibrary, "assets/vendor/uPlot.min.css"} {
		if _, err := fs.Stat(assets, f); err != nil {
			t.Errorf("%s not built in (%v): make web-assets fetches the chart library", f, err)
		}
	}
}
