package testenv

import (
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
	"testing"
	"time"
)

// PKI is a throwaway certificate authority for TLS and mTLS tests: a
// server certificate for 127.0.0.1 and a client certificate it signed,
// and a client certificate another CA signed, which a server must refuse.
// Certificates and keys are PEM files in a temporary directory, as meshd's
// configuration names them, and ready-made tls.Certificates for clients
// and servers built in the test.
type PKI struct {
	Dir    string
	CAFile string
	Pool   *x509.CertPool // holds the CA

	ServerCert, ServerKey string
	Server                tls.Certificate
	ClientCert, ClientKey string
	Client                tls.Certificate

	OtherCAFile string          // a CA that signed nothing meshd trusts
	OtherClient tls.Certificate // signed by the other CA
}

// NewPKI makes a PKI valid for an hour either side of now.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{Dir: t.TempDir(), Pool: x509.NewCertPool()}
	ca, caKey := p.ca(t, "meshd test CA", "ca.pem")
	p.CAFile = filepath.Join(p.Dir, "ca.pem")
	p.Pool.AddCert(ca)
	other, otherKey := p.ca(t, "some other CA", "other-ca.pem")
	p.OtherCAFile = filepath.Join(p.Dir, "other-ca.pem")

	p.ServerCert, p.ServerKey, p.Server = p.leaf(t, ca, caKey, "server", x509.ExtKeyUsageServerAuth)
	p.ClientCert, p.ClientKey, p.Client = p.leaf(t, ca, caKey, "client", x509.ExtKeyUsageClientAuth)
	_, _, p.OtherClient = p.leaf(t, other, otherKey, "intruder", x509.ExtKeyUsageClientAuth)
	return p
}

func (p *PKI) ca(t testing.TB, cn, file string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p.write(t, file, "CERTIFICATE", der)
	return cert, key
}

// leaf makes a certificate for 127.0.0.1 signed by ca, writes it and its
// key as name.pem and name-key.pem, and returns their paths and the pair.
func (p *PKI) leaf(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, usage x509.ExtKeyUsage) (string, string, tls.Certificate) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cf := p.write(t, name+".pem", "CERTIFICATE", der)
	kf := p.write(t, name+"-key.pem", "EC PRIVATE KEY", kder)
	return cf, kf, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (p *PKI) write(t testing.TB, name, typ string, der []byte) string {
	t.Helper()
	f := filepath.Join(p.Dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// serial is a certificate serial number unique within a test run: a TLS
// stack may take two certificates of one issuer and serial for the same.
func serial() *big.Int { return big.NewInt(time.Now().UnixNano()) }
