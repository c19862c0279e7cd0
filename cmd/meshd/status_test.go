package main

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/internal/ops"
	"github.com/meshd/meshd/internal/sessions"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/merge"
)

// TestStatusSecured: meshd status reaches a listener with TLS and an
// account given --tls-ca, --username and MESHD_HTTP_PASSWORD, and says
// what is missing otherwise.
func TestStatusSecured(t *testing.T) {
	p := testenv.NewPKI(t)
	core, err := merge.New()
	if err != nil {
		t.Fatal(err)
	}
	s := ops.New(prometheus.NewRegistry())
	s.Handle("/api/sessions", sessions.Handler(core))
	s.Secure(ops.Security{TLSCert: p.ServerCert, TLSKey: p.ServerKey, Username: "op", Password: "s3cret"})
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Shutdown(context.Background())

	for _, c := range []struct {
		name, password string
		args           []string
		want           string // in the error; "" for success
	}{
		{"all given", "s3cret", []string{"--tls-ca", p.CAFile, "--username", "op"}, ""},
		{"no account", "", []string{"--tls-ca", p.CAFile}, "asks for its account"},
		{"wrong password", "nope", []string{"--tls-ca", p.CAFile, "--username", "op"}, "asks for its account"},
		{"plain HTTP", "s3cret", []string{"--username", "op"}, "HTTP 400"},
		{"a CA that did not sign it", "s3cret", []string{"--tls-ca", p.OtherCAFile, "--username", "op"}, "certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("MESHD_HTTP_PASSWORD", c.password)
			out, err := runCmd(t, newStatusCmd(), append([]string{"--http", s.Addr()}, c.args...)...)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("status: %v\n%s", err, out)
			case c.want == "" && !strings.Contains(out, "ROUTER"):
				t.Errorf("no sessions table:\n%s", out)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("status = %v, want an error saying %q", err, c.want)
			}
		})
	}
}
