// Package ops serves meshd's operator endpoints over HTTP: Prometheus
// /metrics, /healthz (the process is alive) and /readyz (every part that
// registered a readiness check says it is ready), and Go's profiles under
// /debug/pprof/ (as Prometheus serves them on its web port): heap and CPU
// profiles of the running binary are how its cost at fleet scale is found.
// The stages add theirs (the status page, /api/sessions).
//
// With Security set, the listener speaks HTTPS (mutual TLS with a CA),
// and every request but /metrics, /healthz and /readyz must carry the
// account (HTTP basic auth): a scraper and a liveness probe reach those
// without it, and they tell nothing of the fleet a counter does not.
package ops

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports whether one part of meshd is ready; nil means ready.
type Check func() error

// Loopback reports whether a listen host only accepts local connections.
// An empty host, or 0.0.0.0 / ::, listens on every interface.
func Loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Security is the listener's TLS and account; zero values leave each off.
type Security struct {
	TLSCert, TLSKey, TLSCA string
	Username, Password     string
}

// Server is the operator HTTP server.
type Server struct {
	srv *http.Server
	mux *http.ServeMux
	lis net.Listener
	sec Security

	mu     sync.RWMutex
	checks map[string]Check
}

// New returns a server for the metrics gatherer g.
func New(g prometheus.Gatherer) *Server {
	s := &Server{checks: map[string]Check{}}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", s.readyz)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.srv = &http.Server{Handler: http.HandlerFunc(s.guard), ReadHeaderTimeout: 5 * time.Second}
	s.mux = mux
	return s
}

// Secure sets TLS and the account; call it before Listen.
func (s *Server) Secure(sec Security) { s.sec = sec }

// open are the endpoints that never ask for the account.
var open = map[string]bool{"/metrics": true, "/healthz": true, "/readyz": true}

// guard asks for the account where one is set.
func (s *Server) guard(w http.ResponseWriter, r *http.Request) {
	if s.sec.Username != "" && !open[r.URL.Path] {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(s.sec.Username)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(s.sec.Password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="meshd", charset="UTF-8"`)
			http.Error(w, "meshd: credentials required (http.username)", http.StatusUnauthorized)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// TLSConfig is the server side of sec's TLS, nil without a certificate.
func (sec Security) TLSConfig() (*tls.Config, error) {
	if sec.TLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(sec.TLSCert, sec.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("http.tls-cert: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if sec.TLSCA != "" {
		pool, err := CAPool(sec.TLSCA)
		if err != nil {
			return nil, err
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// CAPool reads a PEM file of CAs, for a client or a server to trust.
func CAPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("http.tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("http.tls-ca %s: no certificate", file)
	}
	return pool, nil
}

// Client is how one replica asks another's listener (the fleet's
// sessions): HTTPS when sec has TLS, trusting its CA and showing its
// certificate, and the account. The scheme goes with it.
func (sec Security) Client(timeout time.Duration) (*http.Client, string, error) {
	c := &http.Client{Timeout: timeout}
	scheme := "http"
	if sec.TLSCert != "" {
		scheme = "https"
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if sec.TLSCA != "" {
			pool, err := CAPool(sec.TLSCA)
			if err != nil {
				return nil, "", err
			}
			cert, err := tls.LoadX509KeyPair(sec.TLSCert, sec.TLSKey)
			if err != nil {
				return nil, "", fmt.Errorf("http.tls-cert: %w", err)
			}
			tc.RootCAs, tc.Certificates = pool, []tls.Certificate{cert}
		}
		c.Transport = &http.Transport{TLSClientConfig: tc}
	}
	if sec.Username != "" {
		base := c.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		c.Transport = basicAuth{base, sec.Username, sec.Password}
	}
	return c, scheme, nil
}

type basicAuth struct {
	next       http.RoundTripper
	user, pass string
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.pass)
	return b.next.RoundTrip(r)
}

// Handle adds an endpoint; call it before Serve.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// AddCheck registers a readiness check under a name shown in /readyz.
func (s *Server) AddCheck(name string, c Check) {
	s.mu.Lock()
	s.checks[name] = c
	s.mu.Unlock()
}

// Ready runs every check and returns the failures, joined.
func (s *Server) Ready() error {
	s.mu.RLock()
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	s.mu.RUnlock()
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		s.mu.RLock()
		c := s.checks[n]
		s.mu.RUnlock()
		if err := c(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := s.Ready(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, strings.ReplaceAll(err.Error(), "\n", "\n"))
		return
	}
	fmt.Fprintln(w, "ready")
}

// Listen binds addr; Serve then serves on it. Splitting the two lets the
// caller fail before anything starts when the address is taken.
func (s *Server) Listen(addr string) error {
	tc, err := s.sec.TLSConfig()
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http listener %s: %w", addr, err)
	}
	if tc != nil {
		l = tls.NewListener(l, tc)
	}
	s.lis = l
	return nil
}

// Addr is the bound address, after Listen.
func (s *Server) Addr() string {
	if s.lis == nil {
		return ""
	}
	return s.lis.Addr().String()
}

// Serve serves until Shutdown.
func (s *Server) Serve() error {
	slog.Info("http listening", slog.String("addr", s.Addr()), slog.Bool("tls", s.sec.TLSCert != ""),
		slog.Bool("mtls", s.sec.TLSCA != ""), slog.Bool("auth", s.sec.Username != ""))
	if err := s.srv.Serve(s.lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the server, letting requests in flight finish.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }
