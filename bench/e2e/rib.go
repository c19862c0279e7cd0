package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
)

// RIBScenario is the RIBs served over gNMI (ribview) by the real `meshd
// run` with every sink on: a BMP router's table (most routes with
// attribute sets of their own, as bmpgen makes them) taken while one
// subscriber streams the router's RIB ON_CHANGE, then the whole table
// read by a ONCE subscription, as a client that wants a router's full
// table does.
type RIBScenario struct {
	Name          string
	Routes, Peers int
}

var ribScenarios = []RIBScenario{{Name: "1M", Routes: 1_000_000, Peers: 1}}

// ribShort is what CI runs (TestRIBShort).
var ribShort = RIBScenario{Name: "short", Routes: 20_000, Peers: 1}

// ribAll is every RIB path of every instance.
const ribAll = "/network-instances/network-instance[name=*]/protocols/protocol[identifier=BGP][name=BGP]/bgp/rib"

// RIBResult is one run's figures.
type RIBResult struct {
	Routes int
	// Load is the table's ingest with the stream on; StreamLag how long
	// after the table's last message the subscriber had every route.
	LoadTime, LoadCPU, StreamLag time.Duration
	Streamed                     int
	// Once is the ONCE read of the table: its time to the
	// sync_response, meshd's CPU meanwhile, meshd's peak RSS while it
	// ran (sampled) against its RSS before.
	OnceTime, OnceCPU      time.Duration
	OnceRoutes, OnceBytes  int
	RSSBefore, OncePeakRSS int64
	// HeapPerRoute is meshd's heap in use after a GC with the table held,
	// per route; ExtraPerRoute what it grew by, per route, after the
	// ONCE (what serving the RIBs keeps).
	HeapPerRoute, ExtraPerRoute float64
}

func (r *RIBResult) String() string {
	return fmt.Sprintf("rib %d routes: load %v (%.1f CPU s) with an ON_CHANGE subscriber, which had all %d routes %v after the last message; "+
		"ONCE of the table: %d routes (%.0f MiB of gNMI) in %v, meshd %.1f CPU s, RSS %d MiB before, peak %d MiB during; "+
		"heap %.0f B a route held, %.1f B a route more after the ONCE\n",
		r.Routes, r.LoadTime.Round(time.Millisecond), r.LoadCPU.Seconds(), r.Streamed, r.StreamLag.Round(time.Millisecond),
		r.OnceRoutes, float64(r.OnceBytes)/(1<<20), r.OnceTime.Round(time.Millisecond), r.OnceCPU.Seconds(), r.RSSBefore>>20, r.OncePeakRSS>>20,
		r.HeapPerRoute, r.ExtraPerRoute)
}

// ribConfig is meshd's configuration for the RIB runs, on ports of their
// own (the bench ports may be another run's).
func ribConfig(httpPort, bmpPort, gnmiPort int, influxURL, dir string) string {
	return fmt.Sprintf("log:\n  level: warn\nhttp:\n  listen: \"127.0.0.1:%d\"\nbmp:\n  listen: [\"127.0.0.1:%d\"]\n"+
		"influxdb:\n  url: %q\n  database: meshd\n  create-database: true\n  spool-dir: %q\ngnmi-server:\n  listen: \"127.0.0.1:%d\"\n",
		httpPort, bmpPort, influxURL, filepath.Join(dir, "spool"), gnmiPort)
}

// ribSubscribe subscribes to the RIB of every router (PROTO) and keeps
// the routes it holds (announced by their prefix leaf, gone with their
// entry's delete) and the bytes it got; synced is closed at the
// sync_response, and done says how the stream ended.
type ribSub struct {
	routes, bytes atomic.Int64
	synced        chan struct{}
	done          chan error
	held          map[string]struct{} // the reader's own
}

// ribKey names a route by its place (target, neighbor, view) and keys.
func ribKey(target string, elems []*gpb.PathElem, route *gpb.PathElem) string {
	var b strings.Builder
	b.WriteString(target)
	for i, e := range elems {
		if e.GetName() == "neighbor" {
			b.WriteString(" " + e.GetKey()["neighbor-address"])
			if i+1 < len(elems) {
				b.WriteString(" " + elems[i+1].GetName())
			}
		}
	}
	b.WriteString(" " + route.GetKey()["prefix"] + " " + route.GetKey()["path-id"])
	return b.String()
}

func ribSubscribe(ctx context.Context, addr string, mode gpb.SubscriptionList_Mode) (*ribSub, error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, err
	}
	st, err := gpb.NewGNMIClient(cc).Subscribe(ctx)
	if err != nil {
		cc.Close()
		return nil, err
	}
	p, err := change.ParsePath(ribAll)
	if err != nil {
		cc.Close()
		return nil, err
	}
	sl := &gpb.SubscriptionList{Prefix: &gpb.Path{Target: "*"}, Mode: mode, Encoding: gpb.Encoding_PROTO,
		Subscription: []*gpb.Subscription{{Path: p, Mode: gpb.SubscriptionMode_ON_CHANGE}}}
	if err := st.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: sl}}); err != nil {
		cc.Close()
		return nil, err
	}
	s := &ribSub{synced: make(chan struct{}), done: make(chan error, 1), held: map[string]struct{}{}}
	go func() {
		defer cc.Close()
		for {
			r, err := st.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				s.done <- err
				return
			}
			if r.GetSyncResponse() {
				close(s.synced)
				continue
			}
			n := r.GetUpdate()
			s.bytes.Add(int64(proto.Size(r)))
			tg, pre := n.GetPrefix().GetTarget(), n.GetPrefix().GetElem()
			for _, d := range n.GetDelete() {
				if el := d.GetElem(); len(el) == 1 && el[0].GetName() == "route" {
					delete(s.held, ribKey(tg, pre, el[0]))
				}
			}
			for _, u := range n.GetUpdate() {
				if el := u.GetPath().GetElem(); len(el) > 0 && el[len(el)-1].GetName() == "prefix" && el[0].GetName() == "route" {
					s.held[ribKey(tg, pre, el[0])] = struct{}{}
				}
			}
			s.routes.Store(int64(len(s.held)))
		}
	}()
	return s, nil
}

// heapAfterGC is meshd's heap in use after a collection (pprof's gc=1
// runs one).
func heapAfterGC(httpPort int) (float64, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?gc=1", httpPort))
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	mfs, err := scrape(fmt.Sprintf("http://127.0.0.1:%d/metrics", httpPort))
	if err != nil {
		return 0, err
	}
	return sum(mfs, "go_memstats_heap_inuse_bytes"), nil
}

func runRIB(tb testing.TB, bins binaries, sc RIBScenario) (*RIBResult, error) {
	dir := tb.TempDir()
	in := testenv.StartInfluxd(tb)
	table := filepath.Join(dir, "table.bin")
	msgs, n, err := writeTable(table, bmpgen.TableConfig{SysName: "rib-router", Peers: sc.Peers, Routes: sc.Routes, V6Share: 0.15, NewAttrShare: 0.35, Seed: 5})
	if err != nil {
		return nil, err
	}
	res := &RIBResult{Routes: n}
	httpPort, bmpPort, gnmiPort := testenv.FreePort(tb), testenv.FreePort(tb), testenv.FreePort(tb)
	cfg := filepath.Join(dir, "meshd.yaml")
	if err := os.WriteFile(cfg, []byte(ribConfig(httpPort, bmpPort, gnmiPort, in.URL, dir)), 0o644); err != nil {
		return nil, err
	}
	m, err := startMeshdAt(bins.meshd, cfg, filepath.Join(dir, "meshd.log"), httpPort)
	if err != nil {
		return nil, err
	}
	defer m.stop()
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", httpPort)
	gnmiAddr := fmt.Sprintf("127.0.0.1:%d", gnmiPort)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	stream, err := ribSubscribe(ctx, gnmiAddr, gpb.SubscriptionList_STREAM)
	if err != nil {
		return nil, err
	}
	select {
	case <-stream.synced:
	case err := <-stream.done:
		return nil, fmt.Errorf("the stream ended before its sync_response: %v", err)
	case <-time.After(30 * time.Second):
		return nil, errors.New("no sync_response on the stream in 30 s")
	}
	cpu0, _ := procCPU(m.pid())
	start := time.Now()
	_, conn, err := sendTable(table, fmt.Sprintf("127.0.0.1:%d", bmpPort))
	if err != nil {
		return nil, err
	}
	defer conn.Close() // the router's session stays: closing it withdraws the table
	if err := waitFor(20*time.Minute, 50*time.Millisecond, func() (bool, error) {
		mfs, err := scrape(metricsURL)
		return err == nil && int(sum(mfs, "meshd_bmp_messages_total")) >= msgs, m.exited()
	}); err != nil {
		return nil, fmt.Errorf("the bridge did not take the table: %w", err)
	}
	res.LoadTime = time.Since(start)
	loaded := time.Now()
	if err := waitFor(10*time.Minute, 20*time.Millisecond, func() (bool, error) {
		select {
		case err := <-stream.done:
			return false, fmt.Errorf("the stream ended: %v", err)
		default:
		}
		return stream.routes.Load() >= int64(n), m.exited()
	}); err != nil {
		return nil, fmt.Errorf("the ON_CHANGE subscriber got %d of %d routes: %w", stream.routes.Load(), n, err)
	}
	res.StreamLag = time.Since(loaded)
	res.Streamed = int(stream.routes.Load())
	cpu1, _ := procCPU(m.pid())
	res.LoadCPU = cpu1 - cpu0

	heap0, err := heapAfterGC(httpPort)
	if err != nil {
		return nil, err
	}
	res.HeapPerRoute = heap0 / float64(n)
	res.RSSBefore, _, _ = procMem(m.pid())

	// The ONCE, with meshd's RSS sampled meanwhile.
	var peak atomic.Int64
	sampling, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, _, err := procMem(m.pid()); err == nil && rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-sampling.Done():
				return
			case <-t.C:
			}
		}
	}()
	cpu0, _ = procCPU(m.pid())
	t0 := time.Now()
	once, err := ribSubscribe(ctx, gnmiAddr, gpb.SubscriptionList_ONCE)
	if err != nil {
		stopSampling()
		return nil, err
	}
	select {
	case <-once.synced:
	case err := <-once.done:
		stopSampling()
		return nil, fmt.Errorf("the ONCE ended before its sync_response: %v", err)
	case <-time.After(10 * time.Minute):
		stopSampling()
		return nil, errors.New("no sync_response to the ONCE in 10 min")
	}
	res.OnceTime = time.Since(t0)
	cpu1, _ = procCPU(m.pid())
	stopSampling()
	<-sampled
	res.OnceCPU = cpu1 - cpu0
	res.OnceRoutes, res.OnceBytes, res.OncePeakRSS = int(once.routes.Load()), int(once.bytes.Load()), peak.Load()
	if res.OnceRoutes != n {
		return nil, fmt.Errorf("the ONCE served %d routes of %d", res.OnceRoutes, n)
	}
	heap1, err := heapAfterGC(httpPort)
	if err != nil {
		return nil, err
	}
	res.ExtraPerRoute = (heap1 - heap0) / float64(n)
	return res, m.exited()
}
