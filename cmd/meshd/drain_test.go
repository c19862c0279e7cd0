//go:build integration

package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
	"github.com/meshd/meshd/internal/testenv"
)

// TestSIGTERMDrainsSinks runs the meshd binary with a BMP listener and an
// InfluxDB sink whose flush timer and snapshots are an hour away: what a
// router sent reaches InfluxDB only if SIGTERM makes meshd stop its
// sources and then drain its sinks, as it must before exiting 0.
func TestSIGTERMDrainsSinks(t *testing.T) {
	in := testenv.StartInfluxd(t)
	bin := filepath.Join(t.TempDir(), "meshd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	bmpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := filepath.Join(t.TempDir(), "meshd.yaml")
	conf := fmt.Sprintf(`http:
  listen: %q
bmp:
  listen: [%q]
influxdb:
  url: %q
  database: meshd
  create-database: true
  spool-dir: %q
  flush-timer: 1h
  batch-size: 100000
  snapshot-interval: 1h
`, httpAddr, bmpAddr, in.URL, t.TempDir())
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var log testenv.SyncBuffer
	cmd := exec.Command(bin, "run", "-c", cfg)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("meshd's log:\n%s", log.String())
		}
	})
	get := func(path string) string {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	testenv.WaitFor(t, 30*time.Second, "meshd's HTTP endpoint", func() bool { return get("/healthz") != "" })

	// A router's session comes up over BMP and stays connected.
	fams := []uint32{1<<8 | 1}
	peer := &bmpgen.Peer{Addr: netip.MustParseAddr("192.0.2.2"), AS: 65002, BGPID: netip.MustParseAddr("10.255.0.2"), Time: time.Now()}
	stream := bmpgen.AppendInitiation(nil, "drain1", "drain test")
	stream = bmpgen.AppendPeerUp(stream, peer, netip.MustParseAddr("192.0.2.1"), 179, 50000,
		bmpgen.Open{AS: 65001, HoldTime: 90, ID: netip.MustParseAddr("10.255.0.1"), Families: fams, FourOctet: true},
		bmpgen.Open{AS: 65002, HoldTime: 90, ID: peer.BGPID, Families: fams, FourOctet: true}, "")
	c, err := net.Dial("tcp", bmpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(stream); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "drain1's neighbor in meshd's state", func() bool {
		return strings.Contains(get("/api/sessions?router=drain1"), "192.0.2.2")
	})

	q := `SELECT count("session_state") FROM "bgp_neighbor" WHERE "router" = 'drain1'`
	before, err := in.Query("meshd", q)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(before), `"values"`) {
		t.Fatalf("points written before the shutdown (the flush timer is an hour): %s", before)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("meshd exited with %v after SIGTERM", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("meshd still running 40s after SIGTERM")
	}
	if !strings.Contains(log.String(), "draining sinks") {
		t.Errorf("no shutdown sequence logged")
	}
	after, err := in.Query("meshd", q)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(after), `"values"`) {
		t.Errorf("drain1's neighbor not in InfluxDB after the shutdown: %s", after)
	}
}
