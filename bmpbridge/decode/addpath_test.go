package decode

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
	"github.com/meshd/meshd/bmpbridge/pcapstream"
)

func locPeer() *bmpgen.Peer {
	return &bmpgen.Peer{Type: 3, BGPID: routerI, AS: 4200000002, Time: t0}
}

func route(prefix string, ids ...uint32) *bmpgen.Route {
	p := netip.MustParsePrefix(prefix)
	nh := peerV4
	if p.Addr().Is6() {
		nh = netip.MustParseAddr("2001:db8::2")
	}
	return &bmpgen.Route{Prefixes: []netip.Prefix{p}, PathIDs: ids, ASPath: []uint32{65001}, NextHop: nh}
}

// routes lists a message's NLRI as "+prefix#id" (announce) or "-prefix#id".
func routes(m *Message) string {
	var out []string
	if m.Update != nil {
		for _, n := range m.Update.Announce {
			out = append(out, fmt.Sprintf("+%s#%d", n.Prefix, n.PathID))
		}
		for _, n := range m.Update.Withdraw {
			out = append(out, fmt.Sprintf("-%s#%d", n.Prefix, n.PathID))
		}
	}
	return strings.Join(out, " ")
}

// TestAddPathGuess decodes Route Monitoring messages of peers whose Peer
// Up was not seen: each family is read the way that parses, and every
// reading that is a guess says so.
func TestAddPathGuess(t *testing.T) {
	const (
		guessed   = "IPV4_UNICAST: " + WarnAddPathGuessed
		guessed6  = "IPV6_UNICAST: " + WarnAddPathGuessed
		ambigPlan = "IPV4_UNICAST: " + WarnAddPathAmbiguous + "without path IDs" + whyBigID
		ambigZero = "IPV4_UNICAST: " + WarnAddPathAmbiguous + "with path IDs" + whyZero
		ambigMemA = "IPV4_UNICAST: " + WarnAddPathAmbiguous + "with path IDs" + whyEarlier
		ambigMemP = "IPV4_UNICAST: " + WarnAddPathAmbiguous + "without path IDs" + whyEarlier
		negotBig  = "IPV4_UNICAST: " + WarnAddPathNegotiated + "without path IDs" + whyBigID
		negotMemP = "IPV4_UNICAST: " + WarnAddPathNegotiated + "without path IDs" + whyEarlier
	)
	// 134875147 is 08 0a 08 0b: read without path IDs, the route
	// 10.0.0.0/8 with it becomes 10/8 11/8 10/8, as clean as the truth.
	const sneaky = 0x080a080b
	type msg struct {
		r    *bmpgen.Route
		want string
		warn string
		peer *bmpgen.Peer // the test's peer if nil
	}
	tests := []struct {
		name   string
		peer   *bmpgen.Peer
		peerUp bool // the session's Peer Up (ADD-PATH negotiated) comes first
		msgs   []msg
	}{
		{"Loc-RIB route with path ID, no Peer Up", locPeer(), false, []msg{
			{route("10.200.2.0/25", 1), "+10.200.2.0/25#1", guessed, nil},
			// the same attributes again: the fast path must guess too
			{route("10.200.3.0/24", 1), "+10.200.3.0/24#1", guessed, nil},
			{&bmpgen.Route{Prefixes: route("10.200.2.0/25").Prefixes, PathIDs: []uint32{1}, Withdraw: true}, "-10.200.2.0/25#1", guessed, nil},
		}},
		{"IPv6 route with path ID, no Peer Up", locPeer(), false, []msg{
			{route("2001:db8:200::/48", 1), "+2001:db8:200::/48#1", guessed6, nil},
			// 00 00 00 07 30 20 01 ...: /0 /0 /0 /7 /32 /0 without path IDs
			{route("2001:db8:200::/48", 7), "+2001:db8:200::/48#7", "IPV6_UNICAST: " + WarnAddPathAmbiguous + "with path IDs" + whyEarlier, nil},
		}},
		{"IPv6 route with path ID 7, nothing known", locPeer(), false, []msg{
			{route("2001:db8:200::/48", 7), "+2001:db8:200::/48#7", "IPV6_UNICAST: " + WarnAddPathAmbiguous + "with path IDs" + whyZero, nil},
		}},
		{"plain route, no Peer Up", gpeer(0), false, []msg{
			{route("10.0.0.0/8"), "+10.0.0.0/8#0", "", nil},
			{route("2001:db8::/32"), "+2001:db8::/32#0", "", nil},
		}},
		{"plain route that also parses with path IDs", gpeer(0), false, []msg{
			{route("192.0.2.0/31"), "+192.0.2.0/31#0", ambigPlan, nil},
		}},
		{"default route with path ID: the plain reading is /0s", gpeer(0), false, []msg{
			{route("0.0.0.0/0", 1), "+0.0.0.0/0#1", ambigZero, nil},
		}},
		{"ambiguous after an unambiguous message: as that one", gpeer(0), false, []msg{
			{route("10.200.2.0/25", 1), "+10.200.2.0/25#1", guessed, nil},
			{route("10.0.0.0/8", sneaky), "+10.0.0.0/8#134875147", ambigMemA, nil},
		}},
		{"ambiguous, nothing known: without path IDs", gpeer(0), false, []msg{
			{route("10.0.0.0/8", sneaky), "+10.0.0.0/8#0 +11.0.0.0/8#0 +10.0.0.0/8#0", ambigPlan, nil},
		}},
		// gobgpd v4: pre-policy with path IDs, the same peer's post-policy
		// view without. 10.99.1.0/25 without (19 0a 63 01 00) also reads
		// as path ID 420111105 and 0.0.0.0/0.
		{"another view of the peer is settled apart", gpeer(0), false, []msg{
			{route("10.99.1.0/25", 1), "+10.99.1.0/25#1", guessed, nil},
			{route("10.99.0.0/24"), "+10.99.0.0/24#0", "", gpeer(bmpgen.FlagL)},
			{route("10.99.1.0/25"), "+10.99.1.0/25#0", ambigMemP, gpeer(bmpgen.FlagL)},
		}},
		{"Peer Up seen: path IDs as negotiated", gpeer(0), true, []msg{
			{route("10.0.0.0/8", 7), "+10.0.0.0/8#7", "", nil},
			{route("192.0.2.0/31", 1), "+192.0.2.0/31#1", "", nil},
		}},
		// gobgpd v4's post-policy view, FRR 8.4's every view: negotiated,
		// yet without path IDs.
		{"Peer Up seen, path IDs left out", gpeer(0), true, []msg{
			{route("10.99.0.0/24"), "+10.99.0.0/24#0", "", nil},
			{route("10.99.1.0/25"), "+10.99.1.0/25#0", negotMemP, nil},
		}},
		{"Peer Up seen, path IDs left out, nothing known", gpeer(0), true, []msg{
			{route("10.99.1.0/25"), "+10.99.1.0/25#0", negotBig, nil},
		}},
		{"Peer Up seen, a path ID of 2^24 or more", gpeer(0), true, []msg{
			{route("10.0.0.0/8", sneaky), "+10.0.0.0/8#0 +11.0.0.0/8#0 +10.0.0.0/8#0", negotBig, nil},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(nil)
			if tc.peerUp {
				sent, recv := opens(true)
				if _, err := d.Decode(bmpgen.AppendPeerUp(nil, tc.peer, localV4, 179, 1, sent, recv, "")); err != nil {
					t.Fatal(err)
				}
			}
			for i, m := range tc.msgs {
				p := tc.peer
				if m.peer != nil {
					p = m.peer
				}
				got, err := d.Decode(bmpgen.AppendRouteMonitoring(nil, p, m.r))
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if r := routes(got); r != m.want {
					t.Errorf("message %d: routes %s, want %s", i, r, m.want)
				}
				if w := strings.Join(got.Warnings, "; "); w != m.warn {
					t.Errorf("message %d: warnings %q, want %q", i, w, m.warn)
				}
				// With a Peer Up, a reading without the negotiated path
				// IDs is AddPathAbsent (which the bridge matches on).
				if absent := tc.peerUp && strings.HasSuffix(m.want, "#0"); got.AddPathAbsent != absent {
					t.Errorf("message %d: AddPathAbsent %v, want %v", i, got.AddPathAbsent, absent)
				}
			}
		})
	}
}

// TestMidSessionCapture decodes real gobgpd captures (testdata/README.md)
// and compares every route with tshark's decoding of the same file, kept
// in a .tshark file (TestTsharkGolden, an integration test, checks those
// files against tshark itself). The mid-session capture has no Peer Up:
// every route needs the ADD-PATH guess, and says so.
func TestMidSessionCapture(t *testing.T) {
	tests := []struct {
		file, golden string
		warned       int
	}{
		{"gobgpd-locrib-midsession.pcap", "gobgpd-locrib-midsession.tshark", 5},
		{"gobgpd-locrib.pcap", "gobgpd-locrib.tshark", 0},
		{"gobgpd-locrib.pcapng", "gobgpd-locrib.tshark", 0},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			got, warned := captureRoutes(t, filepath.Join("testdata", tc.file))
			want, err := os.ReadFile(filepath.Join("testdata", tc.golden))
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("routes differ from tshark's:\n got %s\nwant %s", got, want)
			}
			if warned != tc.warned {
				t.Errorf("%d messages with warnings, want %d", warned, tc.warned)
			}
		})
	}
}

// captureRoutes decodes every BMP flow of a capture file and lists its
// routes one a line, sorted, as "announce|withdraw PREFIX path-id N".
func captureRoutes(t *testing.T, file string) (string, int) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flows, err := pcapstream.Read(bufio.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	warned := 0
	for _, fl := range flows {
		if len(fl.Data) == 0 || fl.Data[0] != 3 {
			continue
		}
		d := NewDecoder(nil)
		sc := bufio.NewScanner(bytes.NewReader(fl.Data))
		sc.Split(Split(MaxMessage))
		for sc.Scan() {
			m, err := d.Decode(sc.Bytes())
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if len(m.Warnings) > 0 {
				warned++
			}
			if m.Update == nil {
				continue
			}
			for _, n := range m.Update.Announce {
				lines = append(lines, fmt.Sprintf("announce %s path-id %d", n.Prefix, n.PathID))
			}
			for _, n := range m.Update.Withdraw {
				lines = append(lines, fmt.Sprintf("withdraw %s path-id %d", n.Prefix, n.PathID))
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n", warned
}
