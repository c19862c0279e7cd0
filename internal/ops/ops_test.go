package ops

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/internal/testenv"
)

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_test_things_total", Help: "x"})
	reg.MustRegister(c)
	c.Add(3)
	s := New(reg)
	ready := errors.New("bmp listener not bound")
	s.AddCheck("bmp", func() error { return ready })
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Shutdown(context.Background())

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		path string
		code int
		want string
	}{
		{"/healthz", 200, "ok"},
		{"/metrics", 200, "meshd_test_things_total 3"},
		{"/readyz", 503, "bmp: bmp listener not bound"},
		{"/debug/pprof/", 200, "heap"},
		{"/debug/pprof/heap?debug=1", 200, "heap profile:"},
	}
	for _, tc := range tests {
		code, body := get(tc.path)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s = %d %q, want %d containing %q", tc.path, code, body, tc.code, tc.want)
		}
	}
	ready = nil
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz = %d after ready", code)
	}
}

// TestSecurity: with TLS and an account the listener speaks only HTTPS,
// asks the account of everything but the scrape and probe endpoints, and
// with a CA asks a client certificate too; Client reaches it as a
// replica does.
func TestSecurity(t *testing.T) {
	p := testenv.NewPKI(t)
	for _, c := range []struct {
		name   string
		sec    Security
		client *tls.Config
		user   string
		path   string
		code   int // 0: the request fails
	}{
		{"the page without the account", Security{TLSCert: p.ServerCert, TLSKey: p.ServerKey, Username: "u", Password: "p"},
			&tls.Config{RootCAs: p.Pool}, "", "/api/x", http.StatusUnauthorized},
		{"the page with a wrong password", Security{TLSCert: p.ServerCert, TLSKey: p.ServerKey, Username: "u", Password: "p"},
			&tls.Config{RootCAs: p.Pool}, "u:x", "/api/x", http.StatusUnauthorized},
		{"the page with the account", Security{TLSCert: p.ServerCert, TLSKey: p.ServerKey, Username: "u", Password: "p"},
			&tls.Config{RootCAs: p.Pool}, "u:p", "/api/x", http.StatusOK},
		{"profiles ask the account too", Security{TLSCert: p.ServerCert, TLSKey: p.ServerKey, Username: "u", Password: "p"},
			&tls.Config{RootCAs: p.Pool}, "", "/debug/pprof/", http.StatusUnauthorized},
		{"metrics without it", Security{TLSCert: p.ServerCert, TLSKey: p.ServerKey, Username: "u", Password: "p"},
			&tls.Config{RootCAs: p.Pool}, "", "/metrics", http.StatusOK},
		{"healthz without it", Security{TLSCert: p.ServerCert, TLSKey: p.ServerKey, Username: "u", Password: "p"},
			&tls.Config{RootCAs: p.Pool}, "", "/healthz", http.StatusOK},
		{"plain HTTP to a TLS listener", Security{TLSCert: p.ServerCert, TLSKey: p.ServerKey},
			nil, "", "/healthz", http.StatusBadRequest},
		{"mutual TLS without a client certificate", Security{TLSCert: p.ServerCert, TLSKey: p.ServerKey, TLSCA: p.CAFile},
			&tls.Config{RootCAs: p.Pool}, "", "/healthz", 0},
		{"mutual TLS with another CA's certificate", Security{TLSCert: p.ServerCert, TLSKey: p.ServerKey, TLSCA: p.CAFile},
			&tls.Config{RootCAs: p.Pool, Certificates: []tls.Certificate{p.OtherClient}}, "", "/healthz", 0},
		{"mutual TLS with the CA's", Security{TLSCert: p.ServerCert, TLSKey: p.ServerKey, TLSCA: p.CAFile},
			&tls.Config{RootCAs: p.Pool, Certificates: []tls.Certificate{p.Client}}, "", "/healthz", http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := New(prometheus.NewRegistry())
			s.Handle("/api/x", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "x") }))
			s.Secure(c.sec)
			if err := s.Listen("127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
			go s.Serve()
			defer s.Shutdown(context.Background())
			scheme, client := "http", &http.Client{Timeout: 10 * time.Second}
			if c.client != nil {
				scheme = "https"
				client.Transport = &http.Transport{TLSClientConfig: c.client}
			}
			req, _ := http.NewRequest(http.MethodGet, scheme+"://"+s.Addr()+c.path, nil)
			if u, pw, ok := strings.Cut(c.user, ":"); ok {
				req.SetBasicAuth(u, pw)
			}
			resp, err := client.Do(req)
			if c.code == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("GET %s: %s, want the handshake refused", c.path, resp.Status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.code {
				t.Errorf("GET %s: %d, want %d", c.path, resp.StatusCode, c.code)
			}
		})
	}

	// A replica asks another with its own TLS settings and account.
	srv := Security{TLSCert: p.ServerCert, TLSKey: p.ServerKey, Username: "u", Password: "p"}
	s := New(prometheus.NewRegistry())
	s.Handle("/api/x", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "x") }))
	s.Secure(srv)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Shutdown(context.Background())
	peer := srv
	peer.TLSCA = p.CAFile
	client, scheme, err := peer.Client(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(scheme + "://" + s.Addr() + "/api/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || scheme != "https" {
		t.Errorf("a replica's client: %s over %s", resp.Status, scheme)
	}
}
