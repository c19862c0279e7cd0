package decode

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
)

var (
	t0      = time.Unix(1_700_000_000, 250_000_000)
	peerV4  = netip.MustParseAddr("192.0.2.2")
	localV4 = netip.MustParseAddr("192.0.2.1")
	routerI = netip.MustParseAddr("10.255.0.1")
	peerID  = netip.MustParseAddr("10.255.0.2")
)

func gpeer(flags uint8) *bmpgen.Peer {
	return &bmpgen.Peer{Type: 0, Flags: flags, Addr: peerV4, AS: 42009012, BGPID: peerID, Time: t0}
}

func opens(addPath bool) (bmpgen.Open, bmpgen.Open) {
	fams := []uint32{1<<8 | 1, 2<<8 | 1}
	sent := bmpgen.Open{AS: 4200000001, HoldTime: 90, ID: routerI, Families: fams, FourOctet: true}
	recv := bmpgen.Open{AS: 42009012, HoldTime: 30, ID: peerID, Families: fams, FourOctet: true}
	if addPath {
		sent.AddPath = []bmpgen.AddPath{{AFI: 1, SAFI: 1, Mode: 1}, {AFI: 2, SAFI: 1, Mode: 3}}
		recv.AddPath = []bmpgen.AddPath{{AFI: 1, SAFI: 1, Mode: 2}}
	}
	return sent, recv
}

func decodeAll(t *testing.T, d *Decoder, stream []byte) []*Message {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(stream))
	sc.Buffer(make([]byte, 4096), MaxMessage)
	sc.Split(Split(MaxMessage))
	var out []*Message
	for sc.Scan() {
		m, err := d.Decode(sc.Bytes())
		if err != nil {
			t.Fatalf("decode at %d: %v", m.Offset, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func u32(v uint32) *uint32 { return &v }

func TestPeerUpAndRoutes(t *testing.T) {
	sent, recv := opens(true)
	var s []byte
	s = bmpgen.AppendInitiation(s, "r1", "test router")
	s = bmpgen.AppendPeerUp(s, gpeer(0), localV4, 179, 40000, sent, recv, "")
	s = bmpgen.AppendRouteMonitoring(s, gpeer(0), &bmpgen.Route{
		Prefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("198.51.100.0/24")},
		PathIDs:  []uint32{7, 8},
		ASPath:   []uint32{42009012, 4200000099}, NextHop: peerV4, MED: u32(5), LocalPref: u32(200),
		Communities: []uint32{65000<<16 | 100}, Large: [][3]uint32{{4200000099, 1, 2}},
		ExtComm: [][8]byte{{0x00, 0x02, 0xfd, 0xe8, 0, 0, 0, 1}},
	})
	// A legacy 2-byte AS_PATH (A flag) with AS4_PATH carrying the real path.
	s = bmpgen.AppendRouteMonitoring(s, gpeer(bmpgen.FlagA|bmpgen.FlagL), &bmpgen.Route{
		Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.128/25")}, PathIDs: []uint32{1},
		ASPath: []uint32{42009012, 65001}, TwoByte: true, NextHop: peerV4,
	})
	s = bmpgen.AppendRouteMonitoring(s, gpeer(0), &bmpgen.Route{
		Prefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}, PathIDs: []uint32{7}, Withdraw: true,
	})
	msgs := decodeAll(t, NewDecoder(nil), s)
	if len(msgs) != 5 {
		t.Fatalf("got %d messages", len(msgs))
	}
	if in := msgs[0].Initiation; in == nil || in.SysName != "r1" || in.SysDescr != "test router" {
		t.Errorf("initiation = %+v", msgs[0].Initiation)
	}
	up := msgs[1].PeerUp
	if up.PeerAS != 42009012 || up.LocalAS != 4200000001 || up.NegotiatedHoldTime != 30 || !up.FourOctetAS {
		t.Errorf("peer up = %+v", up)
	}
	if strings.Join(up.AddPathIn, ",") != "IPV4_UNICAST" || len(up.AddPathOut) != 0 {
		t.Errorf("add-path in=%v out=%v", up.AddPathIn, up.AddPathOut)
	}
	if got := strings.Join(up.OCCapabilities, ","); got != "MPBGP,ROUTE_REFRESH,ASN32,ADD_PATHS" {
		t.Errorf("OC capabilities = %s", got)
	}
	if got := strings.Join(up.Received.Families, ","); got != "IPV4_UNICAST,IPV6_UNICAST" {
		t.Errorf("received OPEN's families = %s", got)
	}
	p := msgs[1].Peer
	if p.AS != 42009012 || p.Address != "192.0.2.2" || p.NetworkInstance != "default" || p.RIB != "ADJ_RIB_IN_PRE" || !msgs[1].Time.Equal(t0) {
		t.Errorf("peer = %+v", p)
	}
	u := msgs[2].Update
	if len(u.Announce) != 2 || u.Announce[0].Prefix != "203.0.113.0/24" || u.Announce[0].PathID != 7 || u.Announce[1].PathID != 8 {
		t.Fatalf("announce = %+v", u.Announce)
	}
	a := u.Attrs
	if a.ASPath != "42009012 4200000099" || a.OriginAS != 4200000099 || a.NextHop != "192.0.2.2" || *a.MED != 5 || *a.LocalPref != 200 {
		t.Errorf("attrs = %+v", a)
	}
	if len(a.Communities) != 1 || a.Communities[0] != "65000:100" || a.LargeCommunities[0] != "4200000099:1:2" {
		t.Errorf("communities = %v %v", a.Communities, a.LargeCommunities)
	}
	if rt := a.ExtCommunities["route-target"]; len(rt) != 1 || rt[0] != "65000:1" {
		t.Errorf("ext communities = %v", a.ExtCommunities)
	}
	u2 := msgs[3].Update
	if msgs[3].Peer.RIB != "ADJ_RIB_IN_POST" || u2.Attrs.ASPath != "42009012 65001" || u2.Attrs.OriginAS != 65001 || u2.Announce[0].PathID != 1 {
		t.Errorf("2-byte AS update: rib=%s attrs=%+v nlri=%+v", msgs[3].Peer.RIB, u2.Attrs, u2.Announce)
	}
	if w := msgs[4].Update.Withdraw; len(w) != 1 || w[0].Prefix != "203.0.113.0/24" || w[0].PathID != 7 {
		t.Errorf("withdraw = %+v", w)
	}
}

func TestIPv6AndViews(t *testing.T) {
	sent, recv := opens(false)
	v6 := &bmpgen.Peer{Flags: bmpgen.FlagV | bmpgen.FlagO | bmpgen.FlagL, Addr: netip.MustParseAddr("2001:db8::2"), AS: 65002, BGPID: peerID, Time: t0}
	loc := &bmpgen.Peer{Type: 3, RD: 0x0000fde800000001, BGPID: routerI, Time: t0}
	rd := &bmpgen.Peer{Type: 1, RD: 0x0000fde800000002, Addr: peerV4, AS: 65003, BGPID: peerID, Time: t0}
	var s []byte
	s = bmpgen.AppendPeerUp(s, v6, netip.MustParseAddr("2001:db8::1"), 179, 1, sent, recv, "")
	s = bmpgen.AppendPeerUp(s, loc, netip.Addr{}, 0, 0, sent, sent, "blue")
	s = bmpgen.AppendPeerUp(s, rd, localV4, 179, 2, sent, recv, "")
	s = bmpgen.AppendRouteMonitoring(s, v6, &bmpgen.Route{Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1::/48")}, ASPath: []uint32{65002}, NextHop: netip.MustParseAddr("2001:db8::2")})
	s = bmpgen.AppendRouteMonitoring(s, loc, &bmpgen.Route{Prefixes: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, ASPath: []uint32{65002}, NextHop: peerV4})
	s = bmpgen.AppendRouteMonitoring(s, rd, &bmpgen.Route{Prefixes: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}, ASPath: []uint32{65003}, NextHop: peerV4})
	msgs := decodeAll(t, NewDecoder(map[string]string{"65000:9": "unused"}), s)
	tests := []struct {
		i                  int
		rib, ni, prefix, a string
	}{
		{3, "ADJ_RIB_OUT_POST", "default", "2001:db8:1::/48", "2001:db8::2"},
		{4, "LOC_RIB", "blue", "10.1.0.0/16", "0.0.0.0"},
		{5, "ADJ_RIB_IN_PRE", "rd:65000:2", "10.2.0.0/16", "192.0.2.2"},
	}
	for _, tc := range tests {
		m := msgs[tc.i]
		if m.Peer.RIB != tc.rib || m.Peer.NetworkInstance != tc.ni || m.Update.Announce[0].Prefix != tc.prefix || m.Peer.Address != tc.a {
			t.Errorf("message %d: rib=%s ni=%s addr=%s nlri=%+v; want %s %s %s %s", tc.i, m.Peer.RIB, m.Peer.NetworkInstance, m.Peer.Address, m.Update.Announce, tc.rib, tc.ni, tc.a, tc.prefix)
		}
	}
	if nh := msgs[3].Update.Attrs.NextHop; nh != "2001:db8::2" {
		t.Errorf("v6 next hop = %s", nh)
	}
	// Config maps an RD to a network instance when the Peer Up has no name.
	d := NewDecoder(map[string]string{"65000:2": "red"})
	msgs = decodeAll(t, d, s)
	if ni := msgs[5].Peer.NetworkInstance; ni != "red" {
		t.Errorf("RD peer with configured VRF: ni = %s, want red", ni)
	}
}

func TestPeerDownReasons(t *testing.T) {
	tests := []struct {
		reason, code, sub uint8
		data              []byte
		fsm               uint16
		want              string
		notif             string
	}{
		{1, 6, 2, append([]byte{8}, "shutdown"...), 0, "local system closed the session with a NOTIFICATION", "Cease/Administrative Shutdown/shutdown"},
		{2, 0, 0, nil, 7, "local system closed the session without a NOTIFICATION", ""},
		{3, 4, 0, nil, 0, "remote system closed the session with a NOTIFICATION", "Hold Timer Expired/Unspecific/"},
		{3, 6, 10, nil, 0, "remote system closed the session with a NOTIFICATION", "Cease/BFD Down/"},
		{4, 0, 0, nil, 0, "remote system closed the session without a NOTIFICATION", ""},
		{5, 0, 0, nil, 0, "peer de-configured: information for this peer will no longer be sent", ""},
		{6, 0, 0, []byte("vrf gone"), 0, "Loc-RIB instance no longer monitored (information TLVs follow)", ""},
	}
	for _, tc := range tests {
		b := bmpgen.AppendPeerDown(nil, gpeer(0), tc.reason, tc.code, tc.sub, tc.data, tc.fsm)
		m, err := NewDecoder(nil).Decode(b)
		if err != nil {
			t.Fatalf("reason %d: %v", tc.reason, err)
		}
		pd := m.PeerDown
		if pd.Reason != tc.want || pd.FSMEvent != tc.fsm {
			t.Errorf("reason %d: %+v", tc.reason, pd)
		}
		got := ""
		if n := pd.Notification; n != nil {
			got = n.CodeName + "/" + n.SubcodeName + "/" + n.Data
		}
		if got != tc.notif {
			t.Errorf("reason %d: notification %q, want %q", tc.reason, got, tc.notif)
		}
	}
}

func TestStatsAndTermination(t *testing.T) {
	b := bmpgen.AppendStats(nil, gpeer(0), []bmpgen.Stat{
		{Type: 0, Value: 3}, {Type: 7, Value: 1_000_000}, {Type: 9, AFI: 2, SAFI: 1, Value: 42},
		{Type: 14, Value: 9}, {Type: 17, AFI: 1, SAFI: 1, Value: 10}, {Type: 99, Value: 77, Len: 8},
	})
	b = bmpgen.AppendTermination(b, 2, "bye")
	msgs := decodeAll(t, NewDecoder(nil), b)
	got := ""
	for _, s := range msgs[0].Stats {
		got += s.Name + "=" + s.AfiSafi + ":" + itoa(s.Value) + " "
	}
	want := "rejected-prefixes=:3 adj-rib-in-routes=:1000000 adj-rib-in-routes-per-afi-safi=IPV6_UNICAST:42 adj-rib-out-pre-policy-routes=:9 adj-rib-out-post-policy-routes-per-afi-safi=IPV4_UNICAST:10 type-99=:77 "
	if got != want {
		t.Errorf("stats:\n got %s\nwant %s", got, want)
	}
	if tm := msgs[1].Termination; tm.ReasonCode != 2 || tm.Reason != "out of resources" || tm.Strings[0] != "bye" {
		t.Errorf("termination = %+v", tm)
	}
}

func itoa(v uint64) string {
	var b []byte
	if v == 0 {
		return "0"
	}
	for v > 0 {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
	}
	return string(b)
}

func TestMalformed(t *testing.T) {
	good := bmpgen.AppendRouteMonitoring(nil, gpeer(0), &bmpgen.Route{Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, ASPath: []uint32{1}, NextHop: peerV4})
	trunc := append([]byte(nil), good...)
	trunc[6+42+19+2], trunc[6+42+19+3] = 0xff, 0xf0 // path attribute length beyond the message
	tests := map[string][]byte{
		"bad attr length": trunc,
		"short":           {3, 0, 0, 0, 8, 0, 1, 2},
		"unknown type":    {3, 0, 0, 0, 6, 42},
		"peer up no opens": func() []byte {
			b := bmpgen.AppendPeerUp(nil, gpeer(0), localV4, 1, 2, bmpgen.Open{ID: routerI}, bmpgen.Open{ID: peerID}, "")
			return append(b[:6+42+20:6+42+20], 0xff)
		}(),
	}
	for name, b := range tests {
		if len(b) >= 6 {
			b[1], b[2], b[3], b[4] = 0, 0, byte(len(b)>>8), byte(len(b))
		}
		m, err := NewDecoder(nil).Decode(b)
		if !errors.Is(err, ErrMessage) {
			t.Errorf("%s: err = %v, want ErrMessage", name, err)
		}
		if m == nil || m.Length != len(b) {
			t.Errorf("%s: message = %+v", name, m)
		}
	}
}

func TestSplitRejectsBadFraming(t *testing.T) {
	for name, b := range map[string][]byte{
		"version": {1, 0, 0, 0, 6, 4},
		"zero":    {3, 0, 0, 0, 0, 4},
		"huge":    {3, 0xff, 0, 0, 0, 4},
	} {
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Split(Split(MaxMessage))
		for sc.Scan() {
		}
		if !errors.Is(sc.Err(), ErrFraming) {
			t.Errorf("%s: err = %v, want ErrFraming", name, sc.Err())
		}
	}
}

// TestFastPathMatchesGobgp decodes the same stream with and without the
// fast path and wants identical results.
func TestFastPathMatchesGobgp(t *testing.T) {
	sent, recv := opens(true)
	s := bmpgen.AppendPeerUp(nil, gpeer(0), localV4, 179, 1, sent, recv, "")
	nh6 := netip.MustParseAddr("2001:db8::2")
	for i := 0; i < 50; i++ {
		a := []uint32{42009012, uint32(65000 + i%3)}
		v4 := []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16), netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, byte(i), 128}), 25)}
		v6 := []netip.Prefix{netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i)}), 40)}
		s = bmpgen.AppendRouteMonitoring(s, gpeer(0), &bmpgen.Route{Prefixes: v4, PathIDs: []uint32{uint32(i), 9}, ASPath: a, NextHop: peerV4})
		s = bmpgen.AppendRouteMonitoring(s, gpeer(0), &bmpgen.Route{Prefixes: v6, ASPath: a, NextHop: nh6})
		if i%5 == 0 {
			s = bmpgen.AppendRouteMonitoring(s, gpeer(0), &bmpgen.Route{Prefixes: v4[:1], PathIDs: []uint32{uint32(i)}, Withdraw: true})
			s = bmpgen.AppendRouteMonitoring(s, gpeer(0), &bmpgen.Route{Prefixes: v6, Withdraw: true})
		}
	}
	fast, slow := NewDecoder(nil), NewDecoder(nil)
	slow.noFast = true
	a, b := decodeAll(t, fast, s), decodeAll(t, slow, s)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("fast and gobgp paths differ:\nfast %s\nslow %s", ja[:min(len(ja), 2000)], jb[:min(len(jb), 2000)])
	}
	if fast.cachedSets() == 0 {
		t.Fatal("fast path not used")
	}

	// DecodeInto reusing one Message, with lazy prefix text, must give
	// the same records once the text is filled in.
	reuse := NewDecoder(nil)
	reuse.LazyPrefix = true
	sc := bufio.NewScanner(bytes.NewReader(s))
	sc.Buffer(make([]byte, 4096), MaxMessage)
	sc.Split(Split(MaxMessage))
	var m Message
	var js []byte
	for i := 0; sc.Scan(); i++ {
		if err := reuse.DecodeInto(&m, sc.Bytes()); err != nil {
			t.Fatalf("DecodeInto message %d: %v", i, err)
		}
		if m.Update != nil {
			for _, l := range [][]NLRI{m.Update.Announce, m.Update.Withdraw} {
				for j := range l {
					l[j].Prefix = l[j].Text()
				}
			}
		}
		j, _ := json.Marshal(&m)
		want, _ := json.Marshal(b[i])
		if !bytes.Equal(j, want) {
			t.Fatalf("message %d with reuse:\n got %s\nwant %s", i, j, want)
		}
		js = j
	}
	if len(js) == 0 {
		t.Fatal("no messages")
	}
}
