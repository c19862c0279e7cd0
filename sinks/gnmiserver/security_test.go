package gnmiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/meshd/meshd/internal/testenv"
)

// The sink's security settings reach the target it serves: TLS from the
// certificate files, client certificates from tls-ca, credentials on every
// RPC and the per-client subscription cap. None of the credentials is
// logged, whether given by the config or tried by a client.
func TestSecureConfigServed(t *testing.T) {
	certs := testenv.NewPKI(t)
	const user, pass, wrong = "meshd-reader", "pw-4e7b-secret", "pw-0000-guess"
	cfg := Config{Listen: "127.0.0.1:0", TLSCert: certs.ServerCert, TLSKey: certs.ServerKey, TLSCA: certs.CAFile,
		Username: user, Password: pass, MaxSubscriptionsPerClient: 1}
	var logs testenv.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tc := &tls.Config{RootCAs: certs.Pool, Certificates: []tls.Certificate{certs.Client}, MinVersion: tls.VersionTLS12}
	f := startWith(t, 64, cfg, []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tc))}, WithLogger(log))
	f.core.Apply(bmpPeerUp("edge1", "default", "192.0.2.1", 64512, time.Now()))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	good := metadata.AppendToOutgoingContext(ctx, "username", user, "password", pass)
	getReq := &gpb.GetRequest{Prefix: &gpb.Path{Target: "edge1"}, Encoding: gpb.Encoding_PROTO}

	dialWith := func(creds credentials.TransportCredentials) gpb.GNMIClient {
		cc, err := grpc.NewClient(f.sink.Addr().String(), grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cc.Close() })
		return gpb.NewGNMIClient(cc)
	}
	for _, tc := range []struct {
		name string
		c    gpb.GNMIClient
		ctx  context.Context
		want codes.Code
	}{
		{"plaintext", dialWith(insecure.NewCredentials()), good, codes.Unavailable},
		{"TLS without a client certificate", dialWith(credentials.NewTLS(&tls.Config{RootCAs: certs.Pool, MinVersion: tls.VersionTLS12})), good, codes.Unavailable},
		{"mTLS without credentials", f.c, ctx, codes.Unauthenticated},
		{"mTLS with a wrong password", f.c, metadata.AppendToOutgoingContext(ctx, "username", user, "password", wrong), codes.Unauthenticated},
		{"mTLS with credentials", f.c, good, codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			// The merge core hands the sink its batch asynchronously:
			// wait for the router rather than race it.
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				_, err = tc.c.Get(tc.ctx, getReq)
				if status.Code(err) != codes.NotFound || time.Now().After(deadline) {
					break
				}
			}
			if status.Code(err) != tc.want {
				t.Errorf("Get: %v, want %v", err, tc.want)
			}
		})
	}

	// The cap of 1: a second live subscription of this client is refused.
	sl := &gpb.SubscriptionList{Prefix: &gpb.Path{Target: "*"}, Mode: gpb.SubscriptionList_STREAM, Encoding: gpb.Encoding_PROTO,
		Subscription: []*gpb.Subscription{{Path: &gpb.Path{}, Mode: gpb.SubscriptionMode_ON_CHANGE}}}
	open := func() (gpb.GNMI_SubscribeClient, error) {
		st, err := f.c.Subscribe(good)
		if err != nil {
			return nil, err
		}
		// The server may refuse before it reads the request; gRPC then
		// fails Send with io.EOF and gives the status to Recv only.
		if err := st.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: sl}}); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		for {
			resp, err := st.Recv()
			if err != nil {
				return nil, err
			}
			if resp.GetSyncResponse() {
				return st, nil
			}
		}
	}
	if _, err := open(); err != nil {
		t.Fatalf("first subscription: %v", err)
	}
	if _, err := open(); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("second subscription: %v, want ResourceExhausted", err)
	}

	out := logs.String()
	if !strings.Contains(out, "gnmi server listening") || !strings.Contains(out, "refused") {
		t.Fatalf("the sink's logger was not used as expected:\n%s", out)
	}
	for _, secret := range []string{user, pass, wrong} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain %q:\n%s", secret, out)
		}
	}
}
