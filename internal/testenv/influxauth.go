package testenv

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
)

// StartInfluxdAuth starts influxd like StartInfluxd but with HTTP
// authentication on and one admin user, for tests of credential errors.
// Query needs credentials on it; use QueryAuth.
func StartInfluxdAuth(t testing.TB, user, pass string) *Influxd {
	t.Helper()
	in := StartInfluxd(t)
	// The first admin user may be created without credentials.
	resp, err := http.PostForm(in.URL+"/query", url.Values{"q": {fmt.Sprintf("CREATE USER %q WITH PASSWORD '%s' WITH ALL PRIVILEGES", user, pass)}})
	if err != nil {
		t.Fatalf("influxd create user: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("influxd create user: HTTP %d", resp.StatusCode)
	}
	in.Stop()
	conf, err := os.ReadFile(in.conf)
	if err != nil {
		t.Fatalf("influxd config: %v", err)
	}
	s := strings.Replace(string(conf), "[http]\n", "[http]\n  auth-enabled = true\n", 1)
	if err := os.WriteFile(in.conf, []byte(s), 0o644); err != nil {
		t.Fatalf("influxd config: %v", err)
	}
	in.Start()
	return in
}
