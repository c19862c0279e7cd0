package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"

	"github.com/meshd/meshd/change"
)

// The gNMI-garbage row: for the fault's length, four targets that send
// what no router should join the healthy fleet in meshd's targets file
// (which meshd watches), and leave it after:
//   - garbage-oversized sends a notification twice its max-msg-size
//     (1 MiB, set in its targets-file entry as an operator would);
//   - garbage-huge sends 50,000 neighbors' updates in one notification;
//   - garbage-types sends, every second, paths no schema has and values
//     of the wrong type (a string peer-as, JSON that does not parse, an
//     enum value that does not exist);
//   - garbage-torn answers with gRPC headers and the first bytes of a
//     message whose length prefix promises more, then nothing.
//
// What holds the row: each is counted where an operator looks
// (meshd_gnmi_session_failures_total with gRPC's message-size error or
// "stalled" in meshd's log, meshd_gnmi_invalid_values_total and
// meshd_gnmi_unknown_paths_total, the huge one taken whole on one session),
// no session of the healthy fleet fails, meshd stays up, and InfluxDB's
// count of the fleet's points over the window loses nothing.

// Garbage targets' ports: below the fleet's (soakFleetLow).
const soakGarbageLow = 23050

// garbageHuge is the updates in garbage-huge's one notification.
const garbageHuge = 50000

// garbageMaxMsg is garbage-oversized's max-msg-size.
const garbageMaxMsg = 1 << 20

// garbageTarget is one misbehaving target the harness serves.
type garbageTarget struct {
	name  string
	extra string // its targets-file keys beyond address
	lis   net.Listener
	stop  func()
}

type subscribeFunc func(ctx context.Context, send func(*gpb.SubscribeResponse) error) error

// garbageServer serves Subscribe with fn on a real gRPC server.
type garbageServer struct {
	gpb.UnimplementedGNMIServer
	fn subscribeFunc
}

func (s *garbageServer) Subscribe(st gpb.GNMI_SubscribeServer) error {
	if _, err := st.Recv(); err != nil {
		return err
	}
	return s.fn(st.Context(), st.Send)
}

func syncResponse() *gpb.SubscribeResponse {
	return &gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_SyncResponse{SyncResponse: true}}
}

func updateResponse(n *gpb.Notification) *gpb.SubscribeResponse {
	return &gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: n}}
}

// startGarbage starts the four targets.
func startGarbage() ([]*garbageTarget, error) {
	serve := func(name, extra string, port int, fn subscribeFunc) (*garbageTarget, error) {
		lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return nil, err
		}
		// Room for what the harness sends: the oversized notification
		// must reach meshd's own limit, not the sender's.
		srv := grpc.NewServer(grpc.MaxSendMsgSize(64 << 20))
		gpb.RegisterGNMIServer(srv, &garbageServer{fn: fn})
		go func() { _ = srv.Serve(lis) }()
		return &garbageTarget{name: name, extra: extra, lis: lis, stop: srv.Stop}, nil
	}
	var out []*garbageTarget
	fail := func(err error) ([]*garbageTarget, error) {
		for _, g := range out {
			g.stop()
		}
		return nil, err
	}
	oversized, err := serve("garbage-oversized", fmt.Sprintf("  max-msg-size: %d\n", garbageMaxMsg), soakGarbageLow,
		func(ctx context.Context, send func(*gpb.SubscribeResponse) error) error {
			n := &gpb.Notification{Timestamp: time.Now().UnixNano(), Update: []*gpb.Update{{
				Path: change.NeighborPath("default", "10.0.0.1", "state", "description"),
				Val:  change.String(strings.Repeat("x", 2*garbageMaxMsg)),
			}}}
			_ = send(updateResponse(n))
			<-ctx.Done()
			return nil
		})
	if err != nil {
		return fail(err)
	}
	out = append(out, oversized)
	huge, err := serve("garbage-huge", "", soakGarbageLow+1,
		func(ctx context.Context, send func(*gpb.SubscribeResponse) error) error {
			n := &gpb.Notification{Timestamp: time.Now().UnixNano()}
			for i := range garbageHuge {
				n.Update = append(n.Update, &gpb.Update{
					Path: change.NeighborPath("default", fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&0xff, i&0xff), "state", "peer-as"),
					Val:  change.Uint(uint64(64512 + i%1000)),
				})
			}
			if err := send(updateResponse(n)); err != nil {
				return err
			}
			if err := send(syncResponse()); err != nil {
				return err
			}
			<-ctx.Done()
			return nil
		})
	if err != nil {
		return fail(err)
	}
	out = append(out, huge)
	types, err := serve("garbage-types", "", soakGarbageLow+2,
		func(ctx context.Context, send func(*gpb.SubscribeResponse) error) error {
			if err := send(syncResponse()); err != nil {
				return err
			}
			for i := 0; ; i++ {
				n := &gpb.Notification{Timestamp: time.Now().UnixNano(), Update: []*gpb.Update{
					{Path: &gpb.Path{Elem: []*gpb.PathElem{{Name: "junk"}, {Name: "leaf", Key: map[string]string{"id": fmt.Sprint(i)}}}}, Val: change.Uint(1)},
					{Path: change.NeighborPath("default", "10.9.9.9", "state", "peer-as"), Val: change.String("sixty-five")},
					{Path: change.NeighborPath("default", "10.9.9.9", "state", "session-state"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: []byte("{not json")}}},
					{Path: change.NeighborPath("default", "10.9.9.9", "state", "session-state"), Val: change.String("NOT_A_STATE")},
				}}
				if err := send(updateResponse(n)); err != nil {
					return err
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(time.Second):
				}
			}
		})
	if err != nil {
		return fail(err)
	}
	out = append(out, types)
	torn, err := startTornTarget(soakGarbageLow + 3)
	if err != nil {
		return fail(err)
	}
	return append(out, torn), nil
}

// startTornTarget serves Subscribe over HTTP/2 (h2c) as a target that
// hangs mid-message does; gRPC's own server cannot be made to. Its
// sync-timeout is short so that it fails several times in a short row.
func startTornTarget(port int) (*garbageTarget, error) {
	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.WriteHeader(http.StatusOK)
		var prefix [5]byte
		binary.BigEndian.PutUint32(prefix[1:], 4096)
		_, _ = w.Write(prefix[:])
		_, _ = w.Write([]byte{0x0a, 0x10}) // a notification's first bytes
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := &http2.Server{}
	quit := make(chan struct{})
	go func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				go func() { <-quit; conn.Close() }()
				srv.ServeConn(conn, &http2.ServeConnOpts{Handler: h})
			}()
		}
	}()
	stop := func() { lis.Close(); close(quit) }
	return &garbageTarget{name: "garbage-torn", extra: "  sync-timeout: 3s\n", lis: lis, stop: stop}, nil
}

// writeTargets replaces the targets file whole (meshd watches it).
func writeTargets(path, content string) error {
	tmp := filepath.Join(filepath.Dir(path), ".targets.tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// garbageFault adds the garbage targets to the targets file for dur,
// checks each was counted and the fleet undisturbed, removes them, and
// counts the window in InfluxDB.
func garbageFault(row *SoakRow, m *meshdProc, proxy *influxProxy, sim *simChild, q influxQuerier, targetsFile string, dur time.Duration) error {
	orig, err := os.ReadFile(targetsFile)
	if err != nil {
		return err
	}
	mfs0, err := scrape(soakMetrics())
	if err != nil {
		return err
	}
	fleetFailures0 := fleetFailures(mfs0)
	gs, err := startGarbage()
	if err != nil {
		return err
	}
	defer func() {
		for _, g := range gs {
			g.stop()
		}
	}()
	var b strings.Builder
	b.Write(orig)
	for _, g := range gs {
		fmt.Fprintf(&b, "%s:\n  address: %s\n  insecure: true\n  subscriptions: [bgp-neighbors]\n%s", g.name, g.lis.Addr(), g.extra)
	}
	start := time.Now()
	rss0, _, err := procMem(m.pid())
	if err != nil {
		return err
	}
	if err := writeTargets(targetsFile, b.String()); err != nil {
		return err
	}
	peak := rss0
	for time.Since(start) < dur {
		if err := sleepWatching(m, time.Second); err != nil {
			return err
		}
		if rss, _, err := procMem(m.pid()); err == nil {
			peak = max(peak, rss)
		}
	}
	// The garbage targets' series go with them: read them first.
	mfs, err := scrape(soakMetrics())
	if err != nil {
		return err
	}
	if err := writeTargets(targetsFile, string(orig)); err != nil {
		return err
	}
	end := time.Now()
	logText, _ := os.ReadFile(m.logPath)

	failures := func(t string) float64 { return sum(mfs, "meshd_gnmi_session_failures_total", "target", t) }
	var failed []error
	check := func(ok bool, f string, a ...any) {
		if !ok {
			failed = append(failed, fmt.Errorf(f, a...))
		}
	}
	check(failures("garbage-oversized") >= 2, "garbage-oversized: %.0f session failures, want 2 or more", failures("garbage-oversized"))
	check(strings.Contains(string(logText), "larger than max"), "meshd's log has no message-size error for garbage-oversized")
	check(failures("garbage-torn") >= 2, "garbage-torn: %.0f session failures, want 2 or more", failures("garbage-torn"))
	check(strings.Contains(string(logText), "stalled"), "meshd's log has no stalled session for garbage-torn")
	hugeLeaves := sum(mfs, "meshd_gnmi_leaves_total", "target", "garbage-huge")
	check(hugeLeaves >= garbageHuge, "garbage-huge: %.0f leaves taken, want %d", hugeLeaves, garbageHuge)
	check(failures("garbage-huge") == 0, "garbage-huge: %.0f session failures, want it taken whole on one session", failures("garbage-huge"))
	invalid := sum(mfs, "meshd_gnmi_invalid_values_total", "target", "garbage-types")
	unknown := sum(mfs, "meshd_gnmi_unknown_paths_total", "target", "garbage-types")
	check(invalid > 0 && unknown > 0, "garbage-types: %.0f invalid values and %.0f unknown paths counted, want both", invalid, unknown)
	check(failures("garbage-types") == 0, "garbage-types: %.0f session failures: bad values should be dropped and counted, the session kept", failures("garbage-types"))
	fleet := fleetFailures(mfs) - fleetFailures0
	check(fleet == 0, "the healthy fleet's sessions failed %.0f times beside the garbage", fleet)
	row.PeakRSS = max(row.PeakRSS, peak)
	row.Note = fmt.Sprintf("session failures: oversized %.0f, torn %.0f, huge %.0f, types %.0f; huge: %.0f leaves taken; types: %.0f invalid values, %.0f unknown paths counted; healthy fleet's session failures %.0f; meshd RSS %d MiB at the fault's start, %d MiB at most during it.",
		failures("garbage-oversized"), failures("garbage-torn"), failures("garbage-huge"), failures("garbage-types"),
		hugeLeaves, invalid, unknown, fleet, rss0>>20, peak>>20)
	if err := errors.Join(failed...); err != nil {
		row.Failed = err.Error()
	}
	return countWindow(row, m, proxy, sim, q, start, end, dur)
}

// fleetFailures is the session failures of every target but the garbage
// ones.
func fleetFailures(mfs map[string]*dto.MetricFamily) float64 {
	var t float64
	for _, s := range mfs["meshd_gnmi_session_failures_total"].GetMetric() {
		garbage := false
		for _, l := range s.GetLabel() {
			garbage = garbage || l.GetName() == "target" && strings.HasPrefix(l.GetValue(), "garbage-")
		}
		if !garbage {
			t += s.GetCounter().GetValue()
		}
	}
	return t
}
