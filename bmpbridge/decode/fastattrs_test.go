package decode

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
)

// attrsUpdate wraps raw path attributes in a Route Monitoring message of
// gpeer(flags): an UPDATE with them and, for v4, one IPv4 route.
func attrsUpdate(flags uint8, attrs []byte, v4 bool) []byte {
	u := make([]byte, 16, 64+len(attrs))
	for i := range u {
		u[i] = 0xff
	}
	u = append(u, 0, 0, 2, 0, 0)
	u = binary.BigEndian.AppendUint16(u, uint16(len(attrs)))
	u = append(u, attrs...)
	if v4 {
		u = append(u, 8, 10)
	}
	binary.BigEndian.PutUint16(u[16:], uint16(len(u)))
	return bmpgen.AppendRouteMonitoringMsg(nil, gpeer(flags), u)
}

// pathAttrs returns the path attributes of the UPDATE bmpgen makes for r.
func pathAttrs(r *bmpgen.Route) []byte {
	u := bmpgen.AppendUpdate(nil, r)
	b := u[19:]
	wl := int(binary.BigEndian.Uint16(b))
	b = b[2+wl:]
	al := int(binary.BigEndian.Uint16(b))
	return b[2 : 2+al]
}

// compareDecoders decodes msg after a Peer Up with the fast attribute
// reader and with gobgp alone, and fails on any difference.
func compareDecoders(t *testing.T, msg []byte) (fastUsed bool) {
	t.Helper()
	sent, recv := opens(false)
	up := bmpgen.AppendPeerUp(nil, gpeer(0), localV4, 179, 1, sent, recv, "")
	up2 := bmpgen.AppendPeerUp(nil, gpeer(bmpgen.FlagA), localV4, 179, 1, sent, recv, "")
	fast, slow := NewDecoder(nil), NewDecoder(nil)
	slow.noFastAttrs = true
	var got, want [2]*Message
	var gotErr, wantErr [2]error
	for _, d := range []*Decoder{fast, slow} {
		for _, u := range [][]byte{up, up2} {
			if _, err := d.Decode(u); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Twice: the second time the set comes from the decoder's cache.
	for i := 0; i < 2; i++ {
		got[i], gotErr[i] = fast.Decode(msg)
		want[i], wantErr[i] = slow.Decode(msg)
		if (gotErr[i] == nil) != (wantErr[i] == nil) {
			t.Fatalf("fast reader error %v, gobgp %v", gotErr[i], wantErr[i])
		}
		jg, _ := json.Marshal(got[i].Update)
		jw, _ := json.Marshal(want[i].Update)
		if !bytes.Equal(jg, jw) {
			t.Fatalf("fast reader and gobgp differ:\nfast  %s\ngobgp %s", jg, jw)
		}
		if a, b := got[i].Update, want[i].Update; a != nil && b != nil && a.Attrs != nil && b.Attrs != nil && a.Attrs.Key != b.Attrs.Key {
			t.Fatalf("keys differ: %x, %x", a.Attrs.Key, b.Attrs.Key)
		}
	}
	return fast.fastSets > 0 && slow.fastSets == 0
}

func attrCases() []struct {
	name  string
	flags uint8
	r     bmpgen.Route
} {
	med, lp := uint32(7), uint32(200)
	v4 := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}
	v6 := []netip.Prefix{netip.MustParsePrefix("2001:db8:1::/48")}
	nh6 := netip.MustParseAddr("2001:db8::2")
	agg := netip.MustParseAddr("10.0.0.9")
	return []struct {
		name  string
		flags uint8
		r     bmpgen.Route
	}{
		{"plain", 0, bmpgen.Route{Prefixes: v4, ASPath: []uint32{42009012, 3356, 65001}, NextHop: peerV4}},
		{"all", 0, bmpgen.Route{Prefixes: v4, ASPath: []uint32{42009012, 4200000001}, NextHop: peerV4, MED: &med, LocalPref: &lp,
			Communities: []uint32{1<<16 | 2, 65535<<16 | 65281}, Large: [][3]uint32{{1, 2, 3}, {4200000000, 0, 4294967295}}, Origin: 2,
			AggregatorAS: 65001, Aggregator: agg}},
		{"ext communities", 0, bmpgen.Route{Prefixes: v4, ASPath: []uint32{42009012}, NextHop: peerV4,
			ExtComm: [][8]byte{{0, 2, 0xfd, 0xe8, 0, 0, 0, 1}, {3, 0x0c, 0, 0, 0, 0, 0, 8}}}},
		{"empty path", 0, bmpgen.Route{Prefixes: v4, NextHop: peerV4, Origin: 1}},
		{"iBGP", 0, bmpgen.Route{Prefixes: v4, NextHop: peerV4, LocalPref: &lp}},
		{"v6", 0, bmpgen.Route{Prefixes: v6, ASPath: []uint32{42009012, 6939}, NextHop: nh6, MED: &med, Communities: []uint32{5}}},
		{"two-byte with AS4_PATH", bmpgen.FlagA, bmpgen.Route{Prefixes: v4, ASPath: []uint32{42009012, 3356, 4200000001}, TwoByte: true, NextHop: peerV4}},
		{"two-byte v6", bmpgen.FlagA, bmpgen.Route{Prefixes: v6, ASPath: []uint32{65010, 65020}, TwoByte: true, NextHop: nh6}},
	}
}

func TestFastAttrsMatchGobgp(t *testing.T) {
	// Attributes bmpgen does not make: ORIGINATOR_ID and CLUSTER_LIST of
	// a route reflector, an attribute gobgp does not know (OTC, RFC 9234).
	rr := pathAttrs(&bmpgen.Route{ASPath: []uint32{1, 2}, NextHop: peerV4})
	rr = append(rr, 0x80, 9, 4, 10, 0, 0, 1, 0x80, 10, 8, 10, 0, 0, 2, 10, 0, 0, 3, 0xc0, 35, 4, 0, 0, 0, 7)
	if !compareDecoders(t, attrsUpdate(0, rr, true)) {
		t.Error("the fast reader did not read the route reflector's set")
	}
	for _, tc := range attrCases() {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			if !compareDecoders(t, bmpgen.AppendRouteMonitoring(nil, gpeer(tc.flags), &r)) {
				t.Error("the fast reader did not read the set")
			}
		})
	}
	// Sets the fast reader leaves to gobgp, and ones gobgp refuses.
	base := pathAttrs(&bmpgen.Route{ASPath: []uint32{1, 2}, NextHop: peerV4})
	for _, tc := range []struct {
		name  string
		attrs []byte
	}{
		{"bad origin length", append([]byte{0x40, 1, 2, 0, 0}, base[4:]...)},
		{"origin optional", append([]byte{0xc0, 1, 1, 0}, base[4:]...)},
		{"partial well-known", append([]byte{0x60, 1, 1, 0}, base[4:]...)},
		{"unused flag bits", append([]byte{0x41, 1, 1, 0}, base[4:]...)},
		{"repeated MED", append(append([]byte(nil), base...), 0x80, 4, 4, 0, 0, 0, 1, 0x80, 4, 4, 0, 0, 0, 2)},
		{"unknown well-known", append(append([]byte(nil), base...), 0x00, 99, 1, 7)},
		{"originator length", append(append([]byte(nil), base...), 0x80, 9, 3, 1, 2, 3)},
		{"PMSI tunnel", append(append([]byte(nil), base...), 0xc0, 22, 5, 0, 0, 0, 0, 0)},
		{"empty segment", append([]byte{0x40, 1, 1, 0, 0x40, 2, 2, 2, 0}, base[len(base)-7:]...)},
		{"bad segment type", append([]byte{0x40, 1, 1, 0, 0x40, 2, 6, 9, 1, 0, 0, 0, 1}, base[len(base)-7:]...)},
		{"odd communities", append(append([]byte(nil), base...), 0xc0, 8, 3, 0, 0, 1)},
		{"aggregator length", append(append([]byte(nil), base...), 0xc0, 7, 5, 0, 0, 1, 1, 1)},
		{"next hop 16", append(append([]byte(nil), base[:len(base)-7]...), append([]byte{0x40, 3, 16}, make([]byte, 16)...)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if compareDecoders(t, attrsUpdate(0, tc.attrs, true)) {
				t.Error("the fast reader read a set it should leave to gobgp")
			}
		})
	}
}

// TestFastAttrsTable holds the fast reader equal to gobgp on a full table
// of realistic attribute sets.
func TestFastAttrsTable(t *testing.T) {
	var buf bytes.Buffer
	if _, _, err := bmpgen.WriteTable(&buf, bmpgen.TableConfig{SysName: "r", Peers: 2, Routes: 4000, V6Share: 0.3, NewAttrShare: 0.5, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	fast, slow := NewDecoder(nil), NewDecoder(nil)
	slow.noFastAttrs = true
	a, b := decodeAll(t, fast, buf.Bytes()), decodeAll(t, slow, buf.Bytes())
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		for i := range a {
			x, _ := json.Marshal(a[i])
			y, _ := json.Marshal(b[i])
			if !bytes.Equal(x, y) {
				t.Fatalf("message %d: fast reader and gobgp differ:\nfast  %s\ngobgp %s", i, x, y)
			}
		}
	}
	keys := map[string]bool{}
	for _, m := range b {
		if m.Update != nil && m.Update.Attrs != nil {
			keys[m.Update.Attrs.Key] = true
		}
	}
	sets := len(keys)
	if fast.fastSets != sets || sets < 1000 {
		t.Fatalf("attribute sets read by the fast reader: %d, by gobgp: %d", fast.fastSets, sets)
	}
}

// FuzzFastAttrs holds the raw-bytes attribute reader equal to gobgp's
// decode on the same UPDATE: the same error or none, the same records.
func FuzzFastAttrs(f *testing.F) {
	for _, tc := range attrCases() {
		r := tc.r
		r.Prefixes = nil
		if tc.r.Prefixes[0].Addr().Is6() {
			f.Add(pathAttrs(&tc.r), tc.flags != 0, false)
			continue
		}
		f.Add(pathAttrs(&r), tc.flags != 0, true)
	}
	rr := pathAttrs(&bmpgen.Route{ASPath: []uint32{1, 2}, NextHop: peerV4})
	f.Add(append(rr, 0x80, 9, 4, 10, 0, 0, 1, 0x80, 10, 4, 10, 0, 0, 2, 0xc0, 35, 4, 0, 0, 0, 7), false, true)
	f.Fuzz(func(t *testing.T, attrs []byte, twoByte, v4 bool) {
		if len(attrs) > 4000 {
			return
		}
		var flags uint8
		if twoByte {
			flags = bmpgen.FlagA
		}
		compareDecoders(t, attrsUpdate(flags, attrs, v4))
	})
}
