package gnmiclient

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/merge"
)

// script drives one Subscribe stream of a fake target; conn counts the
// streams this target has served, from 1.
type script func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error

// fakeTarget is a real gRPC gNMI server on loopback that sends what its
// script says.
type fakeTarget struct {
	gpb.UnimplementedGNMIServer
	addr    string
	script  script
	streams atomic.Int32
	user    string // when set, username/password metadata must match
	pass    string

	mu   sync.Mutex
	reqs []*gpb.SubscribeRequest
}

func startFake(t *testing.T, s script, opts ...grpc.ServerOption) *fakeTarget {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeTarget{addr: lis.Addr().String(), script: s}
	srv := grpc.NewServer(opts...)
	gpb.RegisterGNMIServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return f
}

func (f *fakeTarget) Subscribe(stream gpb.GNMI_SubscribeServer) error {
	if f.user != "" {
		md, _ := metadata.FromIncomingContext(stream.Context())
		if first(md["username"]) != f.user || first(md["password"]) != f.pass {
			return status.Error(codes.Unauthenticated, "bad username or password")
		}
	}
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	n := int(f.streams.Add(1))
	return f.script(stream.Context(), n, req, stream.Send)
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// recordingMerger wraps a real merge core and records source releases.
type recordingMerger struct {
	*merge.Core
	released atomic.Int32
}

func (r *recordingMerger) ReleaseSource(router string, src change.Source) {
	r.released.Add(1)
	r.Core.ReleaseSource(router, src)
}

func newCore(t *testing.T) *recordingMerger {
	t.Helper()
	c, err := merge.New(merge.WithoutVerdict())
	if err != nil {
		t.Fatal(err)
	}
	return &recordingMerger{Core: c}
}

// nbrUpdate is a notification with one neighbor leaf, PROTO-encoded.
func nbrUpdate(ni, addr, leaf string, v *gpb.TypedValue) *gpb.SubscribeResponse {
	p := change.NeighborPath(ni, addr, "state", leaf)
	return &gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: &gpb.Notification{
		Timestamp: time.Now().UnixNano(),
		Update:    []*gpb.Update{{Path: p, Val: v}},
	}}}
}

var syncResp = &gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_SyncResponse{SyncResponse: true}}

// serverOpt makes a fake target serve TLS with p's server certificate,
// requiring a client certificate p's CA signed if requireClient.
func serverOpt(p *testenv.PKI, requireClient bool) grpc.ServerOption {
	cfg := &tls.Config{Certificates: []tls.Certificate{p.Server}, MinVersion: tls.VersionTLS12}
	if requireClient {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = p.Pool
	}
	return grpc.Creds(credentials.NewTLS(cfg))
}

func ptr[T any](v T) *T { return &v }

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, what)
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

// startHealthy is a target that syncs, then counts up
// established-transitions every 20 ms for as long as its session lasts:
// the one beside misbehaving targets that must not be disturbed.
func startHealthy(t *testing.T) *fakeTarget {
	t.Helper()
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	return startFake(t, func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
		send(syncResp)
		for i := uint64(1); ; i++ {
			if err := send(nbrUpdate("default", "10.0.0.1", "established-transitions", change.Uint(i))); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return nil
			case <-stop:
				<-ctx.Done()
				return nil
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
}
