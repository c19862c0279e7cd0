package bmpbridge

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
	"github.com/meshd/meshd/bmpbridge/decode"
	"github.com/meshd/meshd/change"
)

// TestGracefulRestart: the peering source's restart signal (a Stats
// Report of decode.StatGracefulRestart on an in-process stream) keeps the
// peer's routes, stale, with the session not established; the routes
// sent again after the next Peer Up stay, the End-of-RIB withdraws the
// others. From a router's own BMP connection the same report is a
// counter and nothing more: a router may use the experimental types for
// anything.
func TestGracefulRestart(t *testing.T) {
	state := change.NeighborPath("default", pAddr.String(), "state", "session-state")
	restart := bmpgen.AppendStats(nil, peer(), []bmpgen.Stat{{Type: decode.StatGracefulRestart, Value: 20, Len: 8}})
	for _, tc := range []struct {
		name     string
		attached bool
		state    string
	}{
		{"in-process stream", true, "ACTIVE"},
		{"router's connection", false, "ESTABLISHED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{})
			stream := append(append(upStream("edge1"), table(10, 4200000001)...), restart...)
			var c net.Conn
			if tc.attached {
				ours, theirs := net.Pipe()
				if err := r.b.Attach(context.Background(), theirs); err != nil {
					t.Fatal(err)
				}
				go func() { _, _ = ours.Write(stream) }()
				c = ours
			} else {
				c = r.send(t, stream)
			}
			defer c.Close()
			held := func() int { return r.b.RouteCount("edge1", "default", pAddr.String(), "") }
			waitFor(t, "the session-state "+tc.state+" with the 10 routes held", func() bool {
				return r.val("edge1", state).GetStringVal() == tc.state && held() == 10 &&
					r.count(change.EventStats, nil) == 1
			})
			graceful := r.count(change.EventPeerDown, func(e change.Event) bool { return e.Fields["graceful_restart"] == true })
			if want := map[bool]int{true: 1, false: 0}[tc.attached]; graceful != want {
				t.Fatalf("%d graceful peer_down events, want %d", graceful, want)
			}
			if !tc.attached {
				return
			}
			// Back: a new session (a later Peer Up) sends 6 of the 10
			// again, then its End-of-RIB.
			p := peer()
			p.Time = p.Time.Add(time.Minute)
			fams := []uint32{1<<8 | 1, 2<<8 | 1}
			sent := bmpgen.Open{AS: 65001, HoldTime: 90, ID: rID, Families: fams, FourOctet: true}
			recv := bmpgen.Open{AS: 42009012, HoldTime: 30, ID: pID, Families: fams, FourOctet: true}
			back := bmpgen.AppendPeerUp(nil, p, netip.MustParseAddr("192.0.2.1"), 179, 50001, sent, recv, "")
			back = bmpgen.AppendEndOfRIB(append(back, table(6, 4200000001)...), p)
			go func() { _, _ = c.Write(back) }()
			waitFor(t, "the End-of-RIB withdrawing the 4 routes not sent again", func() bool {
				return r.val("edge1", state).GetStringVal() == "ESTABLISHED" && held() == 6
			})
			wd := func() int {
				return r.count(change.EventRoute, func(e change.Event) bool { return e.Route.Action == change.Withdraw })
			}
			waitFor(t, "4 withdraw route events", func() bool { return wd() == 4 })
		})
	}
}
