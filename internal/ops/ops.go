// Package ops serves meshd's operator endpoints over HTTP: Prometheus
// /metrics, /healthz (the process is alive) and /readyz (every part that
// registered a readiness check says it is ready), and Go's profiles under
// /debug/pprof/ (as Prometheus serves them on its web port): heap and CPU
// profiles of the running binary are how its cost at fleet scale is found.
package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports whether one part of meshd is ready; nil means ready.
type Check func() error

// Server is the operator HTTP server.
type Server struct {
	srv *http.Server
	mux *http.ServeMux
	lis net.Listener

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
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.mux = mux
	return s
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
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http listener %s: %w", addr, err)
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
	slog.Info("http listening", slog.String("addr", s.Addr()))
	if err := s.srv.Serve(s.lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the server, letting requests in flight finish.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }
