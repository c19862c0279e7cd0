package decode

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
)

func seedStream() []byte {
	sent, recv := opens(true)
	s := bmpgen.AppendInitiation(nil, "r1", "fuzz")
	s = bmpgen.AppendPeerUp(s, gpeer(0), localV4, 179, 1, sent, recv, "blue")
	s = bmpgen.AppendRouteMonitoring(s, gpeer(0), &bmpgen.Route{Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, PathIDs: []uint32{1},
		ASPath: []uint32{42009012}, NextHop: peerV4, Communities: []uint32{1}, Large: [][3]uint32{{1, 2, 3}}})
	s = bmpgen.AppendRouteMonitoring(s, gpeer(bmpgen.FlagA), &bmpgen.Route{Prefixes: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, PathIDs: []uint32{2},
		ASPath: []uint32{4200000001, 65000}, TwoByte: true, NextHop: peerV4})
	s = bmpgen.AppendStats(s, gpeer(0), []bmpgen.Stat{{Type: 9, AFI: 1, SAFI: 1, Value: 3}, {Type: 1, Value: 2}})
	s = bmpgen.AppendPeerDown(s, gpeer(0), 1, 6, 2, []byte{2, 'h', 'i'}, 0)
	return bmpgen.AppendTermination(s, 0, "bye")
}

// FuzzStream feeds arbitrary bytes through the session reader's framing
// and decoding: nothing may panic, and every error is one of ours.
func FuzzStream(f *testing.F) {
	f.Add(seedStream())
	f.Add([]byte{3, 0, 0, 0, 6, 4})
	// Routes of a peer without a Peer Up: the ADD-PATH guess.
	mid := bmpgen.AppendRouteMonitoring(nil, locPeer(), route("10.200.2.0/25", 1))
	mid = bmpgen.AppendRouteMonitoring(mid, locPeer(), route("2001:db8:200::/48", 7))
	f.Add(bmpgen.AppendRouteMonitoring(mid, gpeer(0), route("192.0.2.0/31")))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDecoder(map[string]string{"0:0": "x"})
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1024), 1<<16)
		sc.Split(Split(1 << 16))
		for sc.Scan() {
			if m, err := d.Decode(sc.Bytes()); m == nil {
				t.Fatalf("nil message (err %v)", err)
			}
		}
	})
}

// FuzzMessage decodes one message after a Peer Up set ADD-PATH state.
func FuzzMessage(f *testing.F) {
	s := seedStream()
	for len(s) >= 6 {
		n := int(s[1])<<24 | int(s[2])<<16 | int(s[3])<<8 | int(s[4])
		f.Add(s[:n])
		s = s[n:]
	}
	f.Add(bmpgen.AppendRouteMirroring(nil, gpeer(0), familyUpdate(f, bgp.RF_IPv4_VPN, familyCases()[2].nlri, peerV4, false), bmpgen.MirrorErroredPDU))
	for _, tc := range familyCases() {
		f.Add(bmpgen.AppendRouteMonitoringMsg(nil, gpeer(0), familyUpdate(f, tc.family, tc.nlri, tc.nh, false)))
	}
	sent, recv := opens(true)
	up := bmpgen.AppendPeerUp(nil, gpeer(0), localV4, 179, 1, sent, recv, "")
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDecoder(nil)
		if _, err := d.Decode(up); err != nil {
			t.Fatal(err)
		}
		if m, _ := d.Decode(b); m == nil {
			t.Fatal("nil message")
		}
	})
}

// FuzzAddPathGuess builds Route Monitoring messages, with or without
// ADD-PATH path IDs, of a peer whose Peer Up was not seen or negotiated
// ADD-PATH (IPv4), and decodes them: the routes that come out are the
// ones put in, or the message carries a warning. Never a made-up prefix
// without one.
func FuzzAddPathGuess(f *testing.F) {
	f.Add([]byte{10, 200, 2, 0}, uint8(25), uint32(1), []byte{10, 200, 3, 0}, uint8(24), uint32(1), true, false, false, false)
	f.Add([]byte{10, 200, 2, 0}, uint8(25), uint32(1), []byte{}, uint8(0), uint32(0), true, false, true, false)
	f.Add([]byte{0x20, 1, 0xd, 0xb8, 2}, uint8(48), uint32(7), []byte{}, uint8(0), uint32(0), true, true, false, false)
	f.Add([]byte{192, 0, 2, 0}, uint8(31), uint32(0), []byte{}, uint8(0), uint32(0), false, false, false, false)
	f.Add([]byte{10}, uint8(8), uint32(0x080a080b), []byte{}, uint8(0), uint32(0), true, false, false, false)
	f.Add([]byte{}, uint8(0), uint32(1), []byte{}, uint8(0), uint32(0), true, false, false, false)
	f.Add([]byte{10, 99, 1, 0}, uint8(25), uint32(0), []byte{}, uint8(0), uint32(0), false, false, false, true)
	f.Add([]byte{10}, uint8(8), uint32(0x080a080b), []byte{}, uint8(0), uint32(0), true, false, false, true)
	sent, recv := opens(true)
	up := bmpgen.AppendPeerUp(nil, gpeer(0), localV4, 179, 1, sent, recv, "")
	f.Fuzz(func(t *testing.T, a1 []byte, l1 uint8, id1 uint32, a2 []byte, l2 uint8, id2 uint32, addPath, v6, withdraw, peerUp bool) {
		mk := func(a []byte, l uint8) (netip.Prefix, bool) {
			var b [16]byte
			copy(b[:], a)
			addr := netip.AddrFrom4([4]byte(b[:4]))
			if v6 {
				addr = netip.AddrFrom16(b)
			}
			p, err := addr.Prefix(int(l))
			return p, err == nil
		}
		var r bmpgen.Route
		for _, c := range []struct {
			a  []byte
			l  uint8
			id uint32
		}{{a1, l1, id1}, {a2, l2, id2}} {
			if c.a == nil || (len(r.Prefixes) == 1 && len(c.a) == 0 && c.l == 0 && c.id == 0) {
				continue // the second route is optional
			}
			p, ok := mk(c.a, c.l)
			if !ok {
				return
			}
			r.Prefixes = append(r.Prefixes, p)
			if addPath {
				r.PathIDs = append(r.PathIDs, c.id)
			}
		}
		if len(r.Prefixes) == 0 {
			return
		}
		r.Withdraw = withdraw
		if !withdraw {
			r.ASPath, r.NextHop = []uint32{65001}, peerV4
			if v6 {
				r.NextHop = netip.MustParseAddr("2001:db8::2")
			}
		}
		var want []string
		sign := "+"
		if withdraw {
			sign = "-"
		}
		for i, p := range r.Prefixes {
			var id uint32
			if addPath {
				id = r.PathIDs[i]
			}
			want = append(want, fmt.Sprintf("%s%s#%d", sign, p, id))
		}
		d, peer := NewDecoder(nil), locPeer()
		if peerUp {
			peer = gpeer(0)
			if _, err := d.Decode(up); err != nil {
				t.Fatal(err)
			}
		}
		m, err := d.Decode(bmpgen.AppendRouteMonitoring(nil, peer, &r))
		if peerUp && v6 && addPath {
			// Path IDs where the Peer Up negotiated none: the sender breaks
			// its own session; reading it as negotiated (or failing) is
			// right, and when that reading is clean nothing can tell.
			return
		}
		if err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		if got := routes(m); got != strings.Join(want, " ") && len(m.Warnings) == 0 {
			t.Fatalf("routes %s, want %s, and no warning", got, strings.Join(want, " "))
		}
	})
}
