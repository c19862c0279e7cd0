package gnmitarget

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/meshd/meshd/internal/testenv"
)

func tlsDial(t *testing.T, addr string, p *testenv.PKI, cert *tls.Certificate) gpb.GNMIClient {
	tc := &tls.Config{RootCAs: p.Pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return dial(t, addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
}

func TestTLSAndMutualTLS(t *testing.T) {
	p := testenv.NewPKI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// TLS only: any client that trusts the CA may talk.
	_, addr := startServer(t, WithTLS(p.ServerCert, p.ServerKey, ""))
	if _, err := tlsDial(t, addr, p, nil).Capabilities(ctx, &gpb.CapabilityRequest{}); err != nil {
		t.Fatalf("TLS: %v", err)
	}
	if _, err := dial(t, addr).Capabilities(ctx, &gpb.CapabilityRequest{}); err == nil {
		t.Error("plaintext client talked to a TLS server")
	}

	// mTLS: only clients with a certificate from the CA.
	_, addr = startServer(t, WithTLS(p.ServerCert, p.ServerKey, p.CAFile))
	if _, err := tlsDial(t, addr, p, &p.Client).Capabilities(ctx, &gpb.CapabilityRequest{}); err != nil {
		t.Fatalf("mTLS with a good client certificate: %v", err)
	}
	if _, err := tlsDial(t, addr, p, nil).Capabilities(ctx, &gpb.CapabilityRequest{}); err == nil {
		t.Error("mTLS accepted a client without a certificate")
	}
	if _, err := tlsDial(t, addr, p, &p.OtherClient).Capabilities(ctx, &gpb.CapabilityRequest{}); err == nil {
		t.Error("mTLS accepted a certificate from another CA")
	}

	if _, err := New(WithTLS(filepath.Join(p.Dir, "missing.pem"), p.ServerKey, "")); err == nil {
		t.Error("New accepted a missing certificate file")
	}
}

func TestCredentials(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := testenv.NewPKI(t)
	s, addr := startServer(t, WithTLS(p.ServerCert, p.ServerKey, ""), WithCredentials("admin", "s3cret"), WithRegisterer(reg))
	s.Update("r1", nbr("default", "192.0.2.1", "ESTABLISHED", 1))
	c := tlsDial(t, addr, p, nil)
	base, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	tests := []struct {
		name string
		md   []string
		code codes.Code
	}{
		{"missing", nil, codes.Unauthenticated},
		{"password missing", []string{"username", "admin"}, codes.Unauthenticated},
		{"wrong password", []string{"username", "admin", "password", "s3cret!"}, codes.Unauthenticated},
		{"wrong user", []string{"username", "root", "password", "s3cret"}, codes.Unauthenticated},
		{"right", []string{"username", "admin", "password", "s3cret"}, codes.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := base
			if tc.md != nil {
				ctx = metadata.AppendToOutgoingContext(base, tc.md...)
			}
			_, err := c.Get(ctx, &gpb.GetRequest{Prefix: &gpb.Path{Target: "r1"}, Encoding: gpb.Encoding_PROTO})
			if status.Code(err) != tc.code {
				t.Errorf("Get: %v, want %v", err, tc.code)
			}
			if err != nil && (strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "root")) {
				t.Errorf("error echoes credentials: %v", err)
			}
			r := subscribe(t, c, streamList("r1", gpb.SubscriptionMode_ON_CHANGE, "/"), ctx)
			if tc.code == codes.OK {
				if got := r.untilSync(t, 5*time.Second); len(got.vals) != 4 {
					t.Errorf("subscribe = %v", got.keys())
				}
				return
			}
			if _, ok := <-r.ch; ok {
				t.Fatal("unauthenticated subscription got data")
			}
			if err := <-r.err; status.Code(err) != codes.Unauthenticated {
				t.Errorf("Subscribe: %v, want Unauthenticated", err)
			}
		})
	}
	if v := testutil.ToFloat64(s.m.authFailures.WithLabelValues("invalid")); v != 4 {
		t.Errorf("invalid-credential failures counted = %v, want 4", v)
	}
	if v := testutil.ToFloat64(s.m.authFailures.WithLabelValues("missing")); v != 4 {
		t.Errorf("missing-credential failures counted = %v, want 4", v)
	}
}

// Neither the configured credentials nor the ones a client tried appear in
// the logs, even at debug level where refusals are logged.
func TestCredentialsNeverLogged(t *testing.T) {
	var logs testenv.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const user, pass = "operator-7f3a", "pw-9c1e-secret"
	const triedUser, triedPass = "mallory-2b8d", "guess-4d5f-secret"
	s, addr := startServer(t, WithCredentials(user, pass), WithLogger(log))
	s.Update("r1", nbr("default", "192.0.2.1", "ESTABLISHED", 1))
	c := dial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, md := range [][]string{
		nil,
		{"username", user},
		{"username", user, "password", triedPass},
		{"username", triedUser, "password", pass},
		{"username", triedUser, "password", triedPass},
		{"username", user, "password", pass},
	} {
		cctx := ctx
		if md != nil {
			cctx = metadata.AppendToOutgoingContext(ctx, md...)
		}
		_, _ = c.Get(cctx, &gpb.GetRequest{Prefix: &gpb.Path{Target: "r1"}, Encoding: gpb.Encoding_PROTO})
		_, _ = c.Capabilities(cctx, &gpb.CapabilityRequest{})
		r := subscribe(t, c, streamList("r1", gpb.SubscriptionMode_ON_CHANGE, "/"), cctx)
		for range r.ch {
			if len(md) == 4 && md[1] == user && md[3] == pass {
				r.cancel()
			}
		}
	}
	out := logs.String()
	if !strings.Contains(out, "refused") {
		t.Fatalf("no refusal logged at debug level: the test saw no logging at all:\n%s", out)
	}
	for _, secret := range []string{user, pass, triedUser, triedPass} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain %q:\n%s", secret, out)
		}
	}
}

// Every RPC needs credentials, Capabilities and Set included.
func TestCredentialsOnEveryRPC(t *testing.T) {
	_, addr := startServer(t, WithCredentials("admin", "s3cret"))
	c := dial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	good := metadata.AppendToOutgoingContext(ctx, "username", "admin", "password", "s3cret")
	bad := metadata.AppendToOutgoingContext(ctx, "username", "admin", "password", "")
	for _, tc := range []struct {
		name string
		call func(context.Context) error
		ok   codes.Code // the code with good credentials
	}{
		{"Capabilities", func(ctx context.Context) error {
			_, err := c.Capabilities(ctx, &gpb.CapabilityRequest{})
			return err
		}, codes.OK},
		{"Set", func(ctx context.Context) error {
			_, err := c.Set(ctx, &gpb.SetRequest{Delete: []*gpb.Path{{Elem: []*gpb.PathElem{{Name: "a"}}}}})
			return err
		}, codes.Unimplemented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, cx := range []struct {
				what string
				ctx  context.Context
				want codes.Code
			}{{"none", ctx, codes.Unauthenticated}, {"empty password", bad, codes.Unauthenticated}, {"good", good, tc.ok}} {
				if err := tc.call(cx.ctx); status.Code(err) != cx.want {
					t.Errorf("%s credentials: %v, want %v", cx.what, err, cx.want)
				}
			}
		})
	}
}

// dialFrom dials addr from a chosen loopback source address, so a test can
// play several clients on one machine.
func dialFrom(t *testing.T, addr, from string) gpb.GNMIClient {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	return dial(t, addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }))
}

// The subscription cap is per client: with the one account every client
// logs in with, two machines each get their own share, and one machine's
// share is still capped.
func TestSubscriptionLimitPerClientWithCredentials(t *testing.T) {
	_, addr := startServer(t, WithCredentials("admin", "s3cret"), WithMaxSubscriptionsPerClient(1))
	ctx := metadata.AppendToOutgoingContext(context.Background(), "username", "admin", "password", "s3cret")
	first := subscribe(t, dialFrom(t, addr, "127.0.0.1"), streamList("*", gpb.SubscriptionMode_ON_CHANGE, "/"), ctx)
	first.untilSync(t, 5*time.Second)

	other := subscribe(t, dialFrom(t, addr, "127.0.0.2"), streamList("*", gpb.SubscriptionMode_ON_CHANGE, "/"), ctx)
	select {
	case resp, ok := <-other.ch:
		if !ok {
			t.Fatalf("a second client was refused: %v", <-other.err)
		}
		if !resp.GetSyncResponse() {
			t.Fatalf("second client: %v", resp)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second client: no sync_response in 5s")
	}

	again := subscribe(t, dialFrom(t, addr, "127.0.0.1"), streamList("*", gpb.SubscriptionMode_ON_CHANGE, "/"), ctx)
	if _, ok := <-again.ch; ok {
		t.Fatal("the first client's second subscription was accepted beyond its cap of 1")
	}
	if err := <-again.err; status.Code(err) != codes.ResourceExhausted {
		t.Errorf("over the cap: %v, want ResourceExhausted", err)
	}
}
