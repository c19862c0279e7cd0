package decode

import (
	"bufio"
	"bytes"
	"net/netip"
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
