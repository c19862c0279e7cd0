package bmpbridge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
)

func TestRelayTags(t *testing.T) {
	tests := []struct {
		name         string
		strs         []string
		router, addr string
		ok           bool
	}{
		{"none", nil, "", "", false},
		{"another string", []string{"FRRouting 8.4"}, "", "", false},
		{"relayed", []string{"x", "meshd-relay router=r1 address=10.0.0.1"}, "r1", "10.0.0.1", true},
		{"no router", []string{"meshd-relay address=10.0.0.1"}, "", "10.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, a, ok := relayed(tt.strs)
			if r != tt.router || a != tt.addr || ok != tt.ok {
				t.Errorf("relayed(%q) = %q, %q, %v; want %q, %q, %v", tt.strs, r, a, ok, tt.router, tt.addr, tt.ok)
			}
		})
	}
}

// FuzzInitiationTLVs: the relay reads a router's first message itself,
// before the decoder; no body may make it panic, and a lone sysName TLV
// gives its value back.
func FuzzInitiationTLVs(f *testing.F) {
	init := bmpgen.AppendInitiation(nil, "r1", "FRRouting")
	f.Add(init[6:])
	f.Add([]byte{0, 2, 0, 9, 'r'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		sys, _ := initiationTLVs(body)
		if len(body) >= 4 && binary.BigEndian.Uint16(body) == 2 {
			// One sysName TLV and nothing after it.
			if l := int(binary.BigEndian.Uint16(body[2:])); len(body) == 4+l && sys == "" && l > 0 {
				t.Errorf("sysName TLV of %d bytes read as empty", l)
			}
		}
	})
}

// onePlace says every router belongs to the replica at addr.
type onePlace struct{ addr string }

func (p onePlace) BMPRoute(string) (string, bool)  { return p.addr, true }
func (p onePlace) GNMIRoute(string) (string, bool) { return "", false }
func (p onePlace) GNMIPeers() []string             { return nil }

// TestRelayRefusedServedHere: an owner that ends every relayed session at
// once (its bmp.allow, say) does not make the router reconnect in a
// loop: the relay is counted as refused, and the router's next session
// is served where it landed.
func TestRelayRefusedServedHere(t *testing.T) {
	owner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	go func() {
		for {
			c, err := owner.Accept()
			if err != nil {
				return
			}
			c.(*net.TCPConn).SetLinger(0) // a reset, as a refusing listener's close
			c.Close()
		}
	}()
	r := newRig(t, Config{}, WithPlacement(onePlace{owner.Addr().String()}))
	var stream []byte
	stream = bmpgen.AppendInitiation(stream, "edge1", "test")
	for range 200 {
		stream = bmpgen.AppendStats(stream, ptrPeer(bmpgen.TablePeer(0)), []bmpgen.Stat{{Type: 7, Value: 1}})
	}
	c := r.send(t, stream)
	defer c.Close()
	relays := func(result string) float64 { return testutil.ToFloat64(r.b.m.relays.WithLabelValues(result)) }
	deadline := time.Now().Add(10 * time.Second)
	// The owner's reset lands before the relay's dial completes
	// (failed) or after (refused): either way the router's sessions are
	// served here for a while.
	for relays("refused")+relays("failed") != 1 {
		// Keep writing until the relay notices the owner is gone.
		_, _ = c.Write(bmpgen.AppendStats(nil, ptrPeer(bmpgen.TablePeer(0)), []bmpgen.Stat{{Type: 7, Value: 1}}))
		if time.Now().After(deadline) {
			t.Fatalf("relays: refused %v, failed %v, relayed %v", relays("refused"), relays("failed"), relays("relayed"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	tried := relays("relayed") + relays("refused") + relays("failed")
	before := testutil.ToFloat64(r.b.m.messages.WithLabelValues("stats_report"))
	c2 := r.send(t, stream)
	defer c2.Close()
	deadline = time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(r.b.m.messages.WithLabelValues("stats_report")) < before+200 {
		if time.Now().After(deadline) {
			t.Fatalf("the router's next session was not served here: %v stats messages", testutil.ToFloat64(r.b.m.messages.WithLabelValues("stats_report"))-before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := relays("relayed") + relays("refused") + relays("failed"); n != tried {
		t.Errorf("the router's second session went to the relay too (relay counts %v, then %v)", tried, n)
	}
}

func ptrPeer(p bmpgen.Peer) *bmpgen.Peer { return &p }

// movingPlace sends every router to the replica at addr once moved is
// set, and keeps them here before.
type movingPlace struct {
	addr  string
	moved *atomic.Bool
}

func (p movingPlace) BMPRoute(string) (string, bool) {
	if p.moved.Load() {
		return p.addr, true
	}
	return "", false
}
func (p movingPlace) GNMIRoute(string) (string, bool) { return "", false }
func (p movingPlace) GNMIPeers() []string             { return nil }

// TestHandOverWhenOwnerMoves: a session served here (its router had no
// other owner when it connected) ends once another replica owns the
// router, and the router's next session is relayed there, tagged: a
// router must not stay joined apart from its gNMI data.
func TestHandOverWhenOwnerMoves(t *testing.T) {
	owner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := owner.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b := make([]byte, 512)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _ := c.Read(b)
		got <- b[:n]
		_, _ = io.Copy(io.Discard, c)
	}()
	var moved atomic.Bool
	r := newRig(t, Config{}, WithPlacement(movingPlace{owner.Addr().String(), &moved}))
	stream := bmpgen.AppendInitiation(nil, "edge1", "test")
	stream = bmpgen.AppendStats(stream, ptrPeer(bmpgen.TablePeer(0)), []bmpgen.Stat{{Type: 7, Value: 1}})
	c := r.send(t, stream)
	defer c.Close()
	relays := func(result string) float64 { return testutil.ToFloat64(r.b.m.relays.WithLabelValues(result)) }
	testenv.WaitFor(t, 10*time.Second, "the session served here", func() bool {
		return testutil.ToFloat64(r.b.m.messages.WithLabelValues("stats_report")) == 1
	})
	moved.Store(true)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the session served here did not end when its router moved: %v", err)
	}
	if n := relays("handed_over"); n != 1 {
		t.Errorf("handed_over = %v, want 1", n)
	}
	c2 := r.send(t, stream)
	defer c2.Close()
	select {
	case first := <-got:
		if !bytes.Contains(first, []byte("meshd-relay router=edge1")) {
			t.Errorf("the owner got %q, not a tagged Initiation", first)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the router's next session was not relayed to its owner")
	}
}

// livePlace keeps every router here and says whether this replica holds
// its cluster lease.
type livePlace struct{ live *atomic.Bool }

func (p livePlace) BMPRoute(string) (string, bool)  { return "", false }
func (p livePlace) GNMIRoute(string) (string, bool) { return "", false }
func (p livePlace) GNMIPeers() []string             { return nil }
func (p livePlace) Live() bool                      { return p.live.Load() }

// TestFencedReplicaServesNoBMP: a replica without its lease (paused past
// it, or cut from etcd) refuses BMP connections and ends the sessions it
// had, so that routers reconnect to a replica that holds one; with its
// lease back it serves them again.
func TestFencedReplicaServesNoBMP(t *testing.T) {
	var live atomic.Bool
	r := newRig(t, Config{}, WithPlacement(livePlace{&live}))
	stream := bmpgen.AppendInitiation(nil, "edge1", "test")
	stream = bmpgen.AppendStats(stream, ptrPeer(bmpgen.TablePeer(0)), []bmpgen.Stat{{Type: 7, Value: 1}})
	fencedCount := func() float64 { return testutil.ToFloat64(r.b.m.refused.WithLabelValues("fenced")) }
	closed := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
	}

	c := r.send(t, stream)
	defer c.Close()
	if !closed(c) {
		t.Fatal("a fenced replica kept a new BMP connection open")
	}
	if n := fencedCount(); n != 1 {
		t.Errorf("refused{fenced} = %v after a refused connection, want 1", n)
	}

	live.Store(true)
	c2 := r.send(t, stream)
	defer c2.Close()
	testenv.WaitFor(t, 10*time.Second, "the session served with the lease held", func() bool {
		return testutil.ToFloat64(r.b.m.messages.WithLabelValues("stats_report")) == 1
	})
	live.Store(false)
	if !closed(c2) {
		t.Fatal("the session went on after the replica lost its lease")
	}
	if n := fencedCount(); n != 2 {
		t.Errorf("refused{fenced} = %v after the session ended, want 2", n)
	}
}

// initiationRelayed is an Initiation as a relaying replica sends it: the
// router's own TLVs and the relay's string.
func initiationRelayed(sysName, router, addr string) []byte {
	b := bmpgen.AppendInitiation(nil, sysName, "test")
	tag := relayPrefix + "router=" + router + " address=" + addr
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(tag)))
	b = append(b, tag...)
	binary.BigEndian.PutUint32(b[1:5], uint32(len(b)))
	return b
}

// TestStandbySession: a router that reaches this replica on two paths
// (directly, and relayed by another replica) has one session applied;
// the other is held as a standby, its peers not applied, and it ends
// when the applied one does, so the router connects again.
func TestStandbySession(t *testing.T) {
	var live atomic.Bool
	live.Store(true)
	r := newRig(t, Config{}, WithPlacement(livePlace{&live}))
	direct := r.send(t, upStream("edge1"))
	defer direct.Close()
	established := change.NeighborPath("default", "192.0.2.2", "state", "session-state")
	waitFor(t, "the direct session's peer", func() bool { return r.val("edge1", established).GetStringVal() == "ESTABLISHED" })

	// The same router relayed: a peer only this path announces must not
	// be applied.
	other := &bmpgen.Peer{Addr: netip.MustParseAddr("192.0.2.9"), AS: 64999, BGPID: pID, Time: t0}
	fams := []uint32{1<<8 | 1}
	o := bmpgen.Open{AS: 64999, HoldTime: 90, ID: pID, Families: fams, FourOctet: true}
	relayedStream := bmpgen.AppendPeerUp(initiationRelayed("edge1", "edge1", "127.0.0.1"), other, netip.MustParseAddr("192.0.2.1"), 179, 50001, o, o, "")
	relayed := r.send(t, relayedStream)
	defer relayed.Close()
	waitFor(t, "a standby session", func() bool { return testutil.ToFloat64(r.b.m.standby) == 1 })
	waitFor(t, "its messages counted", func() bool { return testutil.ToFloat64(r.b.m.messages.WithLabelValues("peer_up")) >= 2 })
	if v := r.val("edge1", change.NeighborPath("default", "192.0.2.9", "state", "session-state")); v != nil {
		t.Errorf("the standby session's peer was applied: %v", v)
	}

	direct.Close()
	_ = relayed.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := relayed.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the standby session did not end with the applied one: %v", err)
	}
	waitFor(t, "no standby", func() bool { return testutil.ToFloat64(r.b.m.standby) == 0 })

	// Back on the relayed path alone: it is the router's session now.
	again := r.send(t, relayedStream)
	defer again.Close()
	waitFor(t, "the relayed session's peer applied", func() bool {
		return r.val("edge1", change.NeighborPath("default", "192.0.2.9", "state", "session-state")).GetStringVal() == "ESTABLISHED"
	})
}

// placedPlace keeps every router here and says whether this replica
// knows yet where routers belong.
type placedPlace struct{ placed *atomic.Bool }

func (p placedPlace) BMPRoute(string) (string, bool)  { return "", false }
func (p placedPlace) GNMIRoute(string) (string, bool) { return "", false }
func (p placedPlace) GNMIPeers() []string             { return nil }
func (p placedPlace) Placed() bool                    { return p.placed.Load() }

// TestUnplacedReplicaRefusesBMP: until a replica knows which replica owns
// each router, it serves no BMP: a router another replica owns, served
// here, would have its points written by two replicas.
func TestUnplacedReplicaRefusesBMP(t *testing.T) {
	var placed atomic.Bool
	r := newRig(t, Config{}, WithPlacement(placedPlace{&placed}))
	stream := bmpgen.AppendInitiation(nil, "edge1", "test")
	stream = bmpgen.AppendStats(stream, ptrPeer(bmpgen.TablePeer(0)), []bmpgen.Stat{{Type: 7, Value: 1}})
	c := r.send(t, stream)
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a replica that does not know where routers belong kept a BMP connection: %v", err)
	}
	if n := testutil.ToFloat64(r.b.m.refused.WithLabelValues("starting")); n != 1 {
		t.Errorf("refused{starting} = %v, want 1", n)
	}
	placed.Store(true)
	c2 := r.send(t, stream)
	defer c2.Close()
	testenv.WaitFor(t, 10*time.Second, "the session served once placed", func() bool {
		return testutil.ToFloat64(r.b.m.messages.WithLabelValues("stats_report")) == 1
	})
}
