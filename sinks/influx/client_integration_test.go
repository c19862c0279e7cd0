//go:build integration

package influx

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
)

// seenRequest is one request as headerProxy received it.
type seenRequest struct{ path, auth, agent string }

// headerProxy forwards everything to influxd and keeps each request's
// path and identifying headers.
type headerProxy struct {
	rp   *httputil.ReverseProxy
	mu   sync.Mutex
	seen []seenRequest
}

func startHeaderProxy(t *testing.T, target string) (*headerProxy, string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &headerProxy{rp: httputil.NewSingleHostReverseProxy(u)}
	srv := httptest.NewServer(p) // 127.0.0.1
	t.Cleanup(srv.Close)
	return p, srv.URL
}

func (p *headerProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Read the body whole first: influxd answers CREATE DATABASE before
	// the body's EOF (see writeProxy).
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	p.mu.Lock()
	p.seen = append(p.seen, seenRequest{r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("User-Agent")})
	p.mu.Unlock()
	p.rp.ServeHTTP(w, r)
}

func (p *headerProxy) requests() []seenRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]seenRequest(nil), p.seen...)
}

// TestCreateDatabaseThroughClient: with create-database and credentials,
// CREATE DATABASE goes through influxdb-client-go's HTTP service like the
// writes (same Authorization, the client's User-Agent), and the database
// it made holds the points, as InfluxDB itself answers. A user without
// admin rights gets InfluxDB's own refusal, as an ErrRefused error.
func TestCreateDatabaseThroughClient(t *testing.T) {
	in := testenv.StartInfluxdAuth(t, "admin", "secret")
	proxy, purl := startHeaderProxy(t, in.URL)
	cfg := testConfig(t, purl, "created")
	cfg.Username, cfg.Password = "admin", "secret"
	s, err := New(cfg, WithLogger(logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	sub := chanSub{make(chan change.Batch, 1)}
	stop := runSink(t, s, sub)
	sub.ch <- change.Batch{Events: routeEvents("r1", 0, 5, time.Now())}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var create, write *seenRequest
	reqs := proxy.requests()
	for i := range reqs {
		switch reqs[i].path {
		case "/query":
			create = &reqs[i]
		case "/api/v2/write":
			write = &reqs[i]
		}
	}
	if create == nil || write == nil {
		t.Fatalf("requests %+v: want a /query (CREATE DATABASE) and a /api/v2/write", reqs)
	}
	if create.auth != write.auth || create.agent != write.agent || !strings.HasPrefix(create.agent, "influxdb-client-go") {
		t.Errorf("CREATE DATABASE sent Authorization %q, User-Agent %q; the writes %q, %q: want the client's, the same", create.auth, create.agent, write.auth, write.agent)
	}
	q := url.Values{"db": {"created"}, "q": {`SELECT COUNT("prefix") FROM "bmp_route"`}, "u": {"admin"}, "p": {"secret"}}
	resp, err := http.Get(in.URL + "/query?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r qresult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if len(r.Results) == 0 || len(r.Results[0].Series) == 0 || r.Results[0].Series[0].Values[0][1].(float64) != 5 {
		t.Fatalf("points in the created database: %+v", r)
	}

	// A user who may write but not administer.
	grant := url.Values{"q": {`CREATE USER "writer" WITH PASSWORD 'w'; GRANT WRITE ON "created" TO "writer"`}}
	gresp, err := http.PostForm(in.URL+"/query?"+url.Values{"u": {"admin"}, "p": {"secret"}}.Encode(), grant)
	if err != nil {
		t.Fatal(err)
	}
	gbody, _ := io.ReadAll(gresp.Body)
	gresp.Body.Close()
	if gresp.StatusCode != http.StatusOK || bytes.Contains(gbody, []byte(`"error"`)) {
		t.Fatalf("create user: HTTP %d %s", gresp.StatusCode, gbody)
	}
	wcfg := testConfig(t, in.URL, "created")
	wcfg.Username, wcfg.Password = "writer", "w"
	ws, err := New(wcfg, WithLogger(logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	wsub := chanSub{make(chan change.Batch, 1)}
	wstop := runSink(t, ws, wsub)
	testenv.WaitFor(t, 20*time.Second, "the writer user's CREATE DATABASE refused", func() bool { return ws.Err() != nil })
	werr := ws.Err()
	_ = wstop() // Run returns the same error, or nil when it saw the cancel first
	if !errors.Is(werr, ErrRefused) || !strings.Contains(werr.Error(), "admin") {
		t.Fatalf("Run with a non-admin user and create-database: %v; want ErrRefused with InfluxDB's reason", werr)
	}
	t.Logf("as the operator sees it: %v", werr)
}
