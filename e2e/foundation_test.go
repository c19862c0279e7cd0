//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/meshd/meshd/bmpbridge"
	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/netns"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/merge"
	"github.com/meshd/meshd/sinks/influx"
)

const (
	asn1 = 4200000001
	asn2 = 4200000002
)

func gobgpConf(asn, peerAS uint32, id, peer string, bmp string) string {
	c := fmt.Sprintf(`[global.config]
  as = %d
  router-id = %q
[[neighbors]]
  [neighbors.config]
    neighbor-address = %q
    peer-as = %d
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
    connect-retry = 1
`, asn, id, peer, peerAS)
	if bmp != "" {
		c += fmt.Sprintf(`[[bmp-servers]]
  [bmp-servers.config]
    address = %q
    port = 11019
    route-monitoring-policy = "pre-policy"
    sys-name = "r1"
`, bmp)
	}
	return c
}

// startFirstPath builds the foundation's path end to end: two gobgpd
// speakers in namespaces establish eBGP; one exports BMP to meshd's
// listener, which sits in a collector namespace.
func startFirstPath(t *testing.T, ctx context.Context, core *merge.Core) {
	t.Helper()
	r1 := testenv.NewNetns(t, "r1")
	r2 := testenv.NewNetns(t, "r2")
	col := testenv.NewNetns(t, "col")
	testenv.Veth(t, r1, r2, []string{"10.90.0.1/30"}, []string{"10.90.0.2/30"})
	testenv.Veth(t, r1, col, []string{"10.91.0.1/30"}, []string{"10.91.0.2/30"})

	br, err := bmpbridge.New(core)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := netns.Listen(col.Name, "10.91.0.2:11019")
	if err != nil {
		t.Fatalf("BMP listener in %s: %v", col.Name, err)
	}
	go func() { _ = br.Serve(ctx, ln) }()
	t.Cleanup(func() { _ = br.Close() })

	testenv.StartGobgpd(t, r2, gobgpConf(asn2, asn1, "10.255.0.2", "10.90.0.1", ""))
	testenv.StartGobgpd(t, r1, gobgpConf(asn1, asn2, "10.255.0.1", "10.90.0.2", "10.91.0.2"))
}

func TestFirstPathBMPToMergeCore(t *testing.T) {
	testenv.RequireRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	core, err := merge.New()
	if err != nil {
		t.Fatal(err)
	}
	startFirstPath(t, ctx, core)

	state := change.NeighborPath("default", "10.90.0.2", "state", "session-state")
	peerAS := change.NeighborPath("default", "10.90.0.2", "state", "peer-as")
	testenv.WaitFor(t, 60*time.Second, "r1's neighbor 10.90.0.2 ESTABLISHED in the merge core", func() bool {
		v, _, _, ok := core.Leaf("r1", state)
		return ok && v.GetStringVal() == "ESTABLISHED"
	})
	v, _, src, ok := core.Leaf("r1", peerAS)
	if !ok || v.GetUintVal() != asn2 {
		t.Fatalf("peer-as = %v, want %d", v, asn2)
	}
	if src != change.SourceBMP {
		t.Errorf("peer-as source = %v, want bmp", src)
	}
}

// TestFirstPathIntoInfluxDB follows the first path on into a real InfluxDB
// 1.8.10 and reads the neighbor's point back with InfluxQL.
func TestFirstPathIntoInfluxDB(t *testing.T) {
	testenv.RequireRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := testenv.StartInfluxd(t)
	core, err := merge.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg := influx.Config{URL: in.URL, Database: "meshd", CreateDatabase: true, SpoolDir: t.TempDir(), FlushInterval: 200 * time.Millisecond}
	cfg.SetDefaults()
	sink, err := influx.New(cfg, influx.WithSnapshotter(core))
	if err != nil {
		t.Fatal(err)
	}
	sub := core.Subscribe("influx", 1024)
	done := make(chan error, 1)
	go func() { done <- sink.Run(ctx, sub) }()
	t.Cleanup(func() {
		cancel()
		<-done
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		_ = sink.Close(cctx)
	})
	startFirstPath(t, ctx, core)

	q := `SELECT last("session_state") FROM "bgp_neighbor" WHERE "router" = 'r1' AND "neighbor" = '10.90.0.2' AND "peer_as" = '4200000002'`
	var last string
	testenv.WaitFor(t, 60*time.Second, "r1's neighbor ESTABLISHED in InfluxDB", func() bool {
		body, err := in.Query("meshd", q)
		if err != nil {
			last = err.Error()
			return false
		}
		var res struct {
			Results []struct {
				Series []struct {
					Values [][]any `json:"values"`
				} `json:"series"`
			} `json:"results"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			last = err.Error()
			return false
		}
		last = string(body)
		for _, r := range res.Results {
			for _, s := range r.Series {
				for _, v := range s.Values {
					if len(v) > 1 && fmt.Sprint(v[1]) == "ESTABLISHED" {
						return true
					}
				}
			}
		}
		return false
	})
	t.Logf("InfluxDB: %s", last)
}
