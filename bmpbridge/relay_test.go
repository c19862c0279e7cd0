package bmpbridge

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
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
