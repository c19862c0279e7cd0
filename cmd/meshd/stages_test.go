package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/bmpbridge"
	"github.com/meshd/meshd/bmpbridge/bmpgen"
	"github.com/meshd/meshd/config"
	"github.com/meshd/meshd/gnmiclient"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/sinks/influx"
)

func loadConfig(t *testing.T, text string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "meshd.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

type jsonLine struct {
	Type   string `json:"type"`
	Router string `json:"router"`
	Path   string `json:"path"`
	Value  any    `json:"value"`
	Kind   string `json:"kind"`
}

func readJSONLines(t *testing.T, path string) []jsonLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []jsonLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l jsonLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// TestRunBuildsConfiguredStages: meshd run, given a bmp section and a
// sinks: jsonl section, builds both through the registry (run has no line
// for either), a router's Peer Up reaches the file, and at shutdown the
// BMP session's end is written before run returns: sources stop, then
// sinks drain.
func TestRunBuildsConfiguredStages(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.jsonl")
	bmpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := loadConfig(t, fmt.Sprintf(`http:
  listen: "127.0.0.1:%d"
bmp:
  listen: [%q]
sinks:
  jsonl:
    path: %q
`, testenv.FreePort(t), bmpAddr, out))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg) }()

	var c net.Conn
	testenv.WaitFor(t, 20*time.Second, "meshd's BMP listener", func() bool {
		var err error
		c, err = net.Dial("tcp", bmpAddr)
		return err == nil
	})
	defer c.Close()
	fams := []uint32{1<<8 | 1}
	peer := &bmpgen.Peer{Addr: netip.MustParseAddr("192.0.2.2"), AS: 65002, BGPID: netip.MustParseAddr("10.255.0.2"), Time: time.Now()}
	stream := bmpgen.AppendInitiation(nil, "stage1", "stage test")
	stream = bmpgen.AppendPeerUp(stream, peer, netip.MustParseAddr("192.0.2.1"), 179, 50000,
		bmpgen.Open{AS: 65001, HoldTime: 90, ID: netip.MustParseAddr("10.255.0.1"), Families: fams, FourOctet: true},
		bmpgen.Open{AS: 65002, HoldTime: 90, ID: peer.BGPID, Families: fams, FourOctet: true}, "")
	if _, err := c.Write(stream); err != nil {
		t.Fatal(err)
	}
	established := func(ls []jsonLine) bool {
		for _, l := range ls {
			if l.Type == "update" && l.Router == "stage1" && strings.Contains(l.Path, "neighbor[neighbor-address=192.0.2.2]") &&
				strings.HasSuffix(l.Path, "/state/session-state") && l.Value == "ESTABLISHED" {
				return true
			}
		}
		return false
	}
	testenv.WaitFor(t, 20*time.Second, "stage1's session in the jsonl file", func() bool { return established(readJSONLines(t, out)) })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("run still running 40s after its context ended")
	}
	down := false
	for _, l := range readJSONLines(t, out) {
		down = down || (l.Type == "event" && l.Kind == "router_down" && l.Router == "stage1")
	}
	if !down {
		t.Errorf("no router_down for stage1 in the file: the sink stopped before the source")
	}
}

// TestRunRefusesUnknownSink: a sinks: entry no stage registered fails the
// start, naming it and what there is.
func TestRunRefusesUnknownSink(t *testing.T) {
	cfg := loadConfig(t, fmt.Sprintf(`http:
  listen: "127.0.0.1:%d"
sinks:
  nats:
    url: nats://127.0.0.1:4222
`, testenv.FreePort(t)))
	err := run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "sinks.nats: no such sink (known: gnmi-server, influx, jsonl, status-page)") {
		t.Fatalf("run = %v, want sinks.nats refused", err)
	}
}

// TestDecoderGivesTypedSections: a stage decoding a section config.Config
// has a field for gets that field's value, defaults and all, as
// config.Load made it; a wrong type is an error, a missing section none.
func TestDecoderGivesTypedSections(t *testing.T) {
	cfg := loadConfig(t, `influxdb:
  url: http://127.0.0.1:8086
  database: meshd
bmp:
  listen: ["127.0.0.1:11019"]
targets:
  r1:
    address: 127.0.0.1:57400
    insecure: true
`)
	dec := decoder(cfg)
	var ic influx.Config
	var bc bmpbridge.Config
	var gc gnmiclient.Config
	for _, tc := range []struct {
		section string
		into    any
		want    any
	}{{"influxdb", &ic, &cfg.Influx}, {"bmp", &bc, &cfg.BMP}, {"", &gc, &cfg.GNMI}} {
		ok, err := dec(tc.section, tc.into)
		if !ok || err != nil || !reflect.DeepEqual(tc.into, tc.want) {
			t.Errorf("section %q: ok %v, err %v, %+v; want %+v", tc.section, ok, err, tc.into, tc.want)
		}
	}
	if ok, err := dec("bmp", &ic); !ok || err == nil {
		t.Errorf("bmp into an influx.Config: ok %v, err %v; want an error", ok, err)
	}
	if ok, err := dec("jsonl", &struct{}{}); ok || err != nil {
		t.Errorf("absent jsonl: ok %v, err %v; want neither", ok, err)
	}
}
