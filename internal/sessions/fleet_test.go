package sessions

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/merge"
)

// peer serves a fixture as a member's local table, and fails a request
// that is not ?scope=local: a member asked for the fleet would ask its
// peers in turn.
func peer(t *testing.T, fixture string, routers *[]string) string {
	t.Helper()
	b, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("scope") != "local" {
			http.Error(w, "asked for the fleet", http.StatusBadRequest)
			return
		}
		*routers = append(*routers, r.URL.Query().Get("router"))
		var rows []Row
		if err := json.Unmarshal(b, &rows); err != nil {
			t.Error(err)
		}
		if want := r.URL.Query().Get("router"); want != "" {
			rows = slices.DeleteFunc(rows, func(x Row) bool { return x.Router != want })
		}
		_ = json.NewEncoder(w).Encode(rows)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// deadAddr is a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestFleetHandler(t *testing.T) {
	core, err := merge.New()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	res := core.Apply([]change.Change{
		{Router: "r1", Path: change.NeighborPath("default", "10.100.1.2", "state", "session-state"), Value: change.String("ESTABLISHED"), Time: at, Source: change.SourceBMP},
		{Router: "r1", Path: change.MeshdNeighborPath("default", "10.100.1.2", "probe", "state", "rtt-last"), Value: change.Decimal(20150.5, 3), Time: at, Source: change.SourceProbe},
	})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	// One list per peer: the handler asks both at once.
	var askedA, askedB []string
	a := peer(t, "testdata/fleet/peer-a.json", &askedA)
	b := peer(t, "testdata/fleet/peer-b.json", &askedB)
	dead := deadAddr(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	for _, tc := range []struct {
		name        string
		peers       []string
		query       string
		want        []string // router/neighbor sources
		unreachable string
	}{
		{"alone", nil, "", []string{"r1 bmp,probe"}, ""},
		{"local scope", []string{a, b}, "?scope=local", []string{"r1 bmp,probe"}, ""},
		// r1 is on this replica and, with fewer sources, on peer a
		// (a re-home in flight): the fuller row wins.
		{"fleet", []string{a, b}, "", []string{"r1 bmp,probe", "r2 bmp,gnmi,probe", "r3 gnmi"}, ""},
		{"one router", []string{a, b}, "?router=r2", []string{"r2 bmp,gnmi,probe"}, ""},
		{"a member down", []string{a, dead}, "", []string{"r1 bmp,probe", "r2 bmp,gnmi,probe"}, dead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := FleetHandler(core, func() []string { return tc.peers }, nil, "", log)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/sessions"+tc.query, nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var rows []Row
			if err := json.Unmarshal(rec.Body.Bytes(), &rows); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rows {
				got = append(got, r.Router+" "+r.Sources)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("rows = %q, want %q", got, tc.want)
			}
			if u := rec.Header().Get(UnreachableHeader); u != tc.unreachable {
				t.Errorf("%s = %q, want %q", UnreachableHeader, u, tc.unreachable)
			}
		})
	}
	if !slices.Contains(askedA, "r2") || !slices.Contains(askedB, "r2") {
		t.Errorf("the router filter did not reach the peers: asked %q and %q", askedA, askedB)
	}
}
