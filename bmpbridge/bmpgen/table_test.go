package bmpgen

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"net/netip"
	"testing"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/packet/bmp"
)

// tableStats is what gobgp's decoder finds in a WriteTable stream.
type tableStats struct {
	msgs, routes, sets int
	byType             map[uint8]int
	eor                map[string]int // peer/family
	perPeer            map[string]int
	pathLens           map[int]int
	maxUpdate          int
}

// readTable decodes a stream with gobgp's pkg/packet/bmp, the oracle for
// what WriteTable wrote.
func readTable(t *testing.T, stream []byte) tableStats {
	t.Helper()
	st := tableStats{byType: map[uint8]int{}, eor: map[string]int{}, perPeer: map[string]int{}, pathLens: map[int]int{}}
	seenSets := map[string]bool{}
	seenPfx := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(stream))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	sc.Split(bmp.SplitBMP)
	opt := &bgp.MarshallingOption{}
	for sc.Scan() {
		msg, err := bmp.ParseBMPMessageWithOptions(sc.Bytes(), func(bmp.BMPPeerHeader) []*bgp.MarshallingOption { return []*bgp.MarshallingOption{opt} })
		if err != nil {
			t.Fatalf("message %d: gobgp: %v", st.msgs, err)
		}
		st.msgs++
		st.byType[msg.Header.Type]++
		rm, ok := msg.Body.(*bmp.BMPRouteMonitoring)
		if !ok {
			continue
		}
		peer := msg.PeerHeader.PeerAddress.String()
		u := rm.BGPUpdate.Body.(*bgp.BGPUpdate)
		if l := int(rm.BGPUpdate.Header.Len); l > st.maxUpdate {
			st.maxUpdate = l
		}
		if eor, fam := u.IsEndOfRib(); eor {
			st.eor[peer+" "+fam.String()]++
			continue
		}
		var key bytes.Buffer
		var nlri []string
		for _, a := range u.PathAttributes {
			switch a := a.(type) {
			case *bgp.PathAttributeMpReachNLRI:
				fmt.Fprintf(&key, "mp %v %v;", a.AFI, a.Nexthop)
				for _, p := range a.Value {
					nlri = append(nlri, p.NLRI.String())
				}
			default:
				if a, ok := a.(*bgp.PathAttributeAsPath); ok {
					n := 0
					for _, s := range a.Value {
						n += len(s.GetAS())
					}
					st.pathLens[n]++
				}
				b, err := a.Serialize(opt)
				if err != nil {
					t.Fatal(err)
				}
				key.Write(b)
			}
		}
		for _, p := range u.NLRI {
			nlri = append(nlri, p.NLRI.String())
		}
		if len(nlri) == 0 {
			t.Fatalf("message %d: an UPDATE with no route", st.msgs)
		}
		if !seenSets[key.String()] {
			seenSets[key.String()] = true
			st.sets++
		}
		for _, p := range nlri {
			k := peer + " " + p
			if seenPfx[k] {
				t.Fatalf("peer %s announces %s twice", peer, p)
			}
			seenPfx[k] = true
		}
		st.routes += len(nlri)
		st.perPeer[peer] += len(nlri)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestWriteTable(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    TableConfig
	}{
		{"worst case", TableConfig{SysName: "r1", Peers: 4, Routes: 20003, V6Share: 0.2, NewAttrShare: 1, Seed: 1}},
		{"realistic", TableConfig{SysName: "r2", Peers: 2, Routes: 40000, V6Share: 0.2, NewAttrShare: 0.35, Seed: 7}},
		{"v4 only", TableConfig{SysName: "r3", Peers: 1, Routes: 5000, NewAttrShare: 0.5, Seed: 3}},
		// One set for thousands of routes: only the 4096-byte limit splits
		// the UPDATEs.
		{"packed full", TableConfig{SysName: "r4", Peers: 1, Routes: 30000, V6Share: 0.5, NewAttrShare: 0.0001, Seed: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			msgs, routes, err := WriteTable(&buf, tc.c)
			if err != nil {
				t.Fatal(err)
			}
			st := readTable(t, buf.Bytes())
			if st.msgs != msgs || st.routes != routes || routes != tc.c.Routes {
				t.Fatalf("gobgp read %d messages, %d routes; WriteTable says %d, %d; config %d routes", st.msgs, st.routes, msgs, routes, tc.c.Routes)
			}
			if st.byType[bmp.BMP_MSG_INITIATION] != 1 || st.byType[bmp.BMP_MSG_PEER_UP_NOTIFICATION] != tc.c.Peers {
				t.Errorf("message types %v, want 1 Initiation and %d Peer Ups", st.byType, tc.c.Peers)
			}
			if len(st.perPeer) != tc.c.Peers {
				t.Errorf("routes from %d peers, want %d", len(st.perPeer), tc.c.Peers)
			}
			for p, n := range st.perPeer {
				if want := tc.c.Routes / tc.c.Peers; n != want && n != want+1 {
					t.Errorf("peer %s sent %d routes, want %d", p, n, want)
				}
			}
			// End-of-RIB per peer and family.
			if len(st.eor) != 2*tc.c.Peers {
				t.Errorf("End-of-RIB markers %v, want 2 per peer", st.eor)
			}
			for k, n := range st.eor {
				if n != 1 {
					t.Errorf("%s: %d End-of-RIB markers", k, n)
				}
			}
			if st.maxUpdate > MaxUpdate {
				t.Errorf("an UPDATE of %d bytes", st.maxUpdate)
			}
			share := float64(st.sets) / float64(st.routes)
			if math.Abs(share-tc.c.NewAttrShare) > 0.01+0.05*tc.c.NewAttrShare {
				t.Errorf("%d attribute sets for %d routes: share %.3f, want %.3f", st.sets, st.routes, share, tc.c.NewAttrShare)
			}
			if tc.c.NewAttrShare == 1 && st.sets != st.routes {
				t.Errorf("worst case: %d sets for %d routes", st.sets, st.routes)
			}
			if tc.c.NewAttrShare < 0.001 && st.maxUpdate < MaxUpdate-64 {
				t.Errorf("packed: largest UPDATE %d bytes, want close to %d", st.maxUpdate, MaxUpdate)
			}
			for l := range st.pathLens {
				if l < 2 || l > 8 {
					t.Errorf("an AS path of %d ASes", l)
				}
			}
			if tc.c.NewAttrShare > 0.3 && len(st.pathLens) < 7 {
				t.Errorf("AS path lengths %v, want 2-8 all seen", st.pathLens)
			}
			var again bytes.Buffer
			if _, _, err := WriteTable(&again, tc.c); err != nil || !bytes.Equal(again.Bytes(), buf.Bytes()) {
				t.Errorf("a second WriteTable with the same config wrote another stream (err %v)", err)
			}
		})
	}
}

func TestWriteTableRejects(t *testing.T) {
	for _, c := range []TableConfig{{Peers: 0, Routes: 1, NewAttrShare: 1}, {Peers: 1, Routes: 1, NewAttrShare: 0}, {Peers: 1, Routes: 1, NewAttrShare: 1, V6Share: 2}} {
		if _, _, err := WriteTable(&bytes.Buffer{}, c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestTablePeer(t *testing.T) {
	seen := map[netip.Addr]bool{}
	for i := 0; i < 1000; i++ {
		a := TablePeer(i).Addr
		if seen[a] {
			t.Fatalf("peer %d: address %s taken", i, a)
		}
		seen[a] = true
	}
}
