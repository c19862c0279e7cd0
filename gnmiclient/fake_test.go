package gnmiclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
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

// certs is a test PKI: a CA, a server certificate for 127.0.0.1 and a
// client certificate, written as PEM files.
type certs struct {
	dir                              string
	caFile, srvCert, srvKey, cliCert string
	cliKey                           string
	pool                             *x509.CertPool
	server                           tls.Certificate
	otherCAFile                      string
}

func makeCerts(t *testing.T) *certs {
	t.Helper()
	dir := t.TempDir()
	c := &certs{dir: dir}
	caKey, caCert, caDER := newCA(t, "meshd test CA")
	c.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)
	_, _, otherDER := newCA(t, "some other CA")
	c.otherCAFile = writePEM(t, dir, "other-ca.pem", "CERTIFICATE", otherDER)
	c.pool = x509.NewCertPool()
	c.pool.AddCert(caCert)
	leaf := func(name string, server bool) (string, string, tls.Certificate) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(time.Now().UnixNano()),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature,
		}
		if server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		} else {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		cf := writePEM(t, dir, name+".pem", "CERTIFICATE", der)
		kf := writePEM(t, dir, name+"-key.pem", "EC PRIVATE KEY", kder)
		pair, err := tls.LoadX509KeyPair(cf, kf)
		if err != nil {
			t.Fatal(err)
		}
		return cf, kf, pair
	}
	c.srvCert, c.srvKey, c.server = leaf("server", true)
	c.cliCert, c.cliKey, _ = leaf("client", false)
	return c
}

func newCA(t *testing.T, cn string) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return key, cert, der
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (c *certs) serverOpt(requireClient bool) grpc.ServerOption {
	cfg := &tls.Config{Certificates: []tls.Certificate{c.server}, MinVersion: tls.VersionTLS12}
	if requireClient {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = c.pool
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
