package gnmiclient

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/internal/testenv"
)

// A targets file mounted from a Kubernetes ConfigMap is a symlink through
// "..data", itself a symlink that the kubelet swaps to a new directory:
// the file's own name never sees an event, and the change must still be
// followed.
func TestTargetsFileSymlinkSwap(t *testing.T) {
	serve := func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
		send(syncResp)
		<-ctx.Done()
		return nil
	}
	a, b := startFake(t, serve), startFake(t, serve)
	dir := t.TempDir()
	version := func(name, content string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "targets.yaml"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The kubelet's layout: targets.yaml -> ..data/targets.yaml,
	// ..data -> ..<timestamp>.
	version("..v1", fmt.Sprintf("a:\n  address: %s\n  insecure: true\n", a.addr))
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "targets.yaml"), filepath.Join(dir, "targets.yaml")); err != nil {
		t.Fatal(err)
	}
	cfg := Config{TargetsFile: filepath.Join(dir, "targets.yaml"), Defaults: Target{RetryTimer: 50 * time.Millisecond, MaxRetryTimer: 100 * time.Millisecond}}
	c, _ := runClient(t, cfg, newCore(t))
	waitFor(t, 5*time.Second, "a synced", func() bool { return statusOf(c, "a").State == StateSynced })

	// The swap: a new version, a temporary link to it renamed over ..data,
	// the old version removed.
	version("..v2", fmt.Sprintf("a:\n  address: %s\n  insecure: true\nb:\n  address: %s\n  insecure: true\n", a.addr, b.addr))
	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "..v1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b added by the swap", func() bool { return statusOf(c, "b").State == StateSynced })
	if a.streams.Load() != 1 {
		t.Errorf("a reconnected %d times by the swap", a.streams.Load()-1)
	}
}

// A targets file names TLS the way gnmic does (tls-ca, tls-cert, tls-key,
// skip-verify, insecure, username, password): each target connects as its
// entry says.
func TestTargetsFileTLS(t *testing.T) {
	pki := testenv.NewPKI(t)
	serve := func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
		send(syncResp)
		<-ctx.Done()
		return nil
	}
	mtls := startFake(t, serve, serverOpt(pki, true))
	skip := startFake(t, serve, serverOpt(pki, false))
	skip.user, skip.pass = "admin", "s3cret"
	plain := startFake(t, serve)
	file := filepath.Join(t.TempDir(), "targets.yaml")
	content := fmt.Sprintf(`mtls:
  address: %s
  tls-ca: %s
  tls-cert: %s
  tls-key: %s
skip:
  address: %s
  skip-verify: true
  username: admin
  password: s3cret
plain:
  address: %s
  insecure: true
no-client-cert:
  address: %s
  tls-ca: %s
`, mtls.addr, pki.CAFile, pki.ClientCert, pki.ClientKey, skip.addr, plain.addr, mtls.addr, pki.CAFile)
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{TargetsFile: file, Defaults: Target{RetryTimer: 50 * time.Millisecond, MaxRetryTimer: 100 * time.Millisecond, Timeout: 2 * time.Second}}
	c, _ := runClient(t, cfg, newCore(t))
	waitFor(t, 5*time.Second, "mtls, skip and plain synced", func() bool {
		return statusOf(c, "mtls").State == StateSynced && statusOf(c, "skip").State == StateSynced && statusOf(c, "plain").State == StateSynced
	})
	waitFor(t, 5*time.Second, "no-client-cert refused", func() bool { return statusOf(c, "no-client-cert").Failures > 0 })
	if st := statusOf(c, "no-client-cert"); st.State == StateSynced {
		t.Errorf("a target without the client certificate synced with an mTLS server: %+v", st)
	}
}
