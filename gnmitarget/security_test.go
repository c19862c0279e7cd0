package gnmitarget

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
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// pki is a throwaway CA with a server and a client certificate, written
// as PEM files in a temporary directory.
type pki struct {
	dir                   string
	caPool                *x509.CertPool
	caFile                string
	serverCert, serverKey string
	clientCert            tls.Certificate
	otherClient           tls.Certificate // signed by another CA
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	caCert, caKey := makeCA(t, "meshd test CA")
	otherCert, otherKey := makeCA(t, "someone else's CA")
	p.caPool = x509.NewCertPool()
	p.caPool.AddCert(caCert)
	p.caFile = writePEM(t, p.dir, "ca.pem", "CERTIFICATE", caCert.Raw)

	srvDER, srvKey := makeLeaf(t, caCert, caKey, "meshd", x509.ExtKeyUsageServerAuth)
	p.serverCert = writePEM(t, p.dir, "server.pem", "CERTIFICATE", srvDER)
	kb, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	p.serverKey = writePEM(t, p.dir, "server-key.pem", "EC PRIVATE KEY", kb)

	cliDER, cliKey := makeLeaf(t, caCert, caKey, "gnmic", x509.ExtKeyUsageClientAuth)
	p.clientCert = tls.Certificate{Certificate: [][]byte{cliDER}, PrivateKey: cliKey}
	othDER, othKey := makeLeaf(t, otherCert, otherKey, "intruder", x509.ExtKeyUsageClientAuth)
	p.otherClient = tls.Certificate{Certificate: [][]byte{othDER}, PrivateKey: othKey}
	return p
}

func makeCA(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func makeLeaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func tlsDial(t *testing.T, addr string, p *pki, cert *tls.Certificate) gpb.GNMIClient {
	tc := &tls.Config{RootCAs: p.caPool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return dial(t, addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
}

func TestTLSAndMutualTLS(t *testing.T) {
	p := newPKI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// TLS only: any client that trusts the CA may talk.
	_, addr := startServer(t, WithTLS(p.serverCert, p.serverKey, ""))
	if _, err := tlsDial(t, addr, p, nil).Capabilities(ctx, &gpb.CapabilityRequest{}); err != nil {
		t.Fatalf("TLS: %v", err)
	}
	if _, err := dial(t, addr).Capabilities(ctx, &gpb.CapabilityRequest{}); err == nil {
		t.Error("plaintext client talked to a TLS server")
	}

	// mTLS: only clients with a certificate from the CA.
	_, addr = startServer(t, WithTLS(p.serverCert, p.serverKey, p.caFile))
	if _, err := tlsDial(t, addr, p, &p.clientCert).Capabilities(ctx, &gpb.CapabilityRequest{}); err != nil {
		t.Fatalf("mTLS with a good client certificate: %v", err)
	}
	if _, err := tlsDial(t, addr, p, nil).Capabilities(ctx, &gpb.CapabilityRequest{}); err == nil {
		t.Error("mTLS accepted a client without a certificate")
	}
	if _, err := tlsDial(t, addr, p, &p.otherClient).Capabilities(ctx, &gpb.CapabilityRequest{}); err == nil {
		t.Error("mTLS accepted a certificate from another CA")
	}

	if _, err := New(WithTLS(filepath.Join(p.dir, "missing.pem"), p.serverKey, "")); err == nil {
		t.Error("New accepted a missing certificate file")
	}
}

func TestCredentials(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := newPKI(t)
	s, addr := startServer(t, WithTLS(p.serverCert, p.serverKey, ""), WithCredentials("admin", "s3cret"), WithRegisterer(reg))
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
