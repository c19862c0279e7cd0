package gnmiclient

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/http2"

	"github.com/meshd/meshd/change"
)

// Targets that send what no router should: a notification over the
// session's max-msg-size, 50,000 updates in one notification, and a
// stream that stalls in the middle of a message. Each gets a counted,
// named failure or is taken whole, and a healthy target beside them
// streams on, on its first session.
func TestOversizedHugeAndTornNotifications(t *testing.T) {
	const maxMsg = 64 << 10
	oversized := startFake(t, func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
		send(nbrUpdate("default", "10.0.0.1", "description", change.String(strings.Repeat("x", 2*maxMsg))))
		<-ctx.Done()
		return nil
	})
	const huge = 50000
	hugeT := startFake(t, func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
		n := &gpb.Notification{Timestamp: time.Now().UnixNano()}
		for i := range huge {
			n.Update = append(n.Update, &gpb.Update{
				Path: change.NeighborPath("default", fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&0xff, i&0xff), "state", "peer-as"),
				Val:  change.Uint(uint64(64512 + i%1000)),
			})
		}
		send(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: n}})
		send(syncResp)
		<-ctx.Done()
		return nil
	})
	torn := startTorn(t)
	healthy := startHealthy(t)
	oversizedT := fast(&Target{Address: oversized.addr})
	oversizedT.MaxMsgSize = maxMsg
	tornT := fast(&Target{Address: torn})
	tornT.SyncTimeout = 500 * time.Millisecond
	hugeTarget := fast(&Target{Address: hugeT.addr})
	hugeTarget.SyncTimeout = time.Minute // the whole notification is the initial state
	core := newCore(t)
	c, reg := runClient(t, Config{Targets: map[string]*Target{
		"oversized": oversizedT,
		"huge":      hugeTarget,
		"torn":      tornT,
		"healthy":   fast(&Target{Address: healthy.addr}),
	}}, core)

	waitFor(t, 20*time.Second, "oversized refused twice", func() bool { return statusOf(c, "oversized").Failures >= 2 })
	if st := statusOf(c, "oversized"); !strings.Contains(st.LastError, "larger than max") {
		t.Errorf("oversized last error = %q, want gRPC's message-size error", st.LastError)
	}
	waitFor(t, 20*time.Second, "torn declared stalled twice", func() bool { return statusOf(c, "torn").Failures >= 2 })
	if st := statusOf(c, "torn"); !strings.Contains(st.LastError, "stalled") {
		t.Errorf("torn last error = %q", st.LastError)
	}
	waitFor(t, 60*time.Second, "huge synced", func() bool { return statusOf(c, "huge").State == StateSynced })
	peerAS := 0
	for _, u := range core.Snapshot("huge") {
		if strings.HasSuffix(u.Key, "/state/peer-as") {
			peerAS++
		}
	}
	if peerAS != huge {
		t.Errorf("huge: %d neighbors' peer-as held, want %d", peerAS, huge)
	}
	if st := statusOf(c, "huge"); st.Failures != 0 || st.Connects != 1 {
		t.Errorf("huge target was not taken whole on one session: %+v", st)
	}
	if n, _ := testutil.GatherAndCount(reg, "meshd_gnmi_session_failures_total"); n < 2 {
		t.Errorf("failure series = %d, want the oversized and torn targets'", n)
	}
	before := leafVal(core, "healthy", change.NeighborPath("default", "10.0.0.1", "state", "established-transitions")).GetUintVal()
	waitFor(t, 5*time.Second, "healthy still flowing", func() bool {
		return leafVal(core, "healthy", change.NeighborPath("default", "10.0.0.1", "state", "established-transitions")).GetUintVal() > before+3
	})
	if st := statusOf(c, "healthy"); st.Connects != 1 || st.Failures != 0 {
		t.Errorf("healthy target was disturbed: %+v", st)
	}
}

// startTorn serves gNMI's Subscribe over HTTP/2 (h2c) the way a target
// that hangs mid-message does: response headers, then the first bytes of
// a message whose length prefix promises more, then nothing. gRPC's own
// server cannot be made to do that.
func startTorn(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.WriteHeader(http.StatusOK)
		var prefix [5]byte
		binary.BigEndian.PutUint32(prefix[1:], 4096)
		w.Write(prefix[:])
		w.Write([]byte{0x0a, 0x10}) // the start of a notification, and no more
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := &http2.Server{}
	go func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			go srv.ServeConn(conn, &http2.ServeConnOpts{Handler: h})
		}
	}()
	return lis.Addr().String()
}
