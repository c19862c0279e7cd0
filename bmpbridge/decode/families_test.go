package decode

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
)

// familyUpdate serialises an UPDATE announcing (or, with withdraw,
// withdrawing) nlri of family f from AS 4200000002 with next hop nh and
// the route target 65000:200.
func familyUpdate(t testing.TB, f bgp.Family, nlri bgp.NLRI, nh netip.Addr, withdraw bool) []byte {
	t.Helper()
	var pas []bgp.PathAttributeInterface
	if withdraw {
		un, err := bgp.NewPathAttributeMpUnreachNLRI(f, []bgp.PathNLRI{{NLRI: nlri}})
		if err != nil {
			t.Fatal(err)
		}
		pas = append(pas, un)
	} else {
		reach, err := bgp.NewPathAttributeMpReachNLRI(f, []bgp.PathNLRI{{NLRI: nlri}}, nh)
		if err != nil {
			t.Fatal(err)
		}
		pas = append(pas,
			bgp.NewPathAttributeOrigin(0),
			bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{4200000002})}),
			reach,
			bgp.NewPathAttributeExtendedCommunities([]bgp.ExtendedCommunityInterface{bgp.NewTwoOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, 65000, 200, true)}),
		)
	}
	b, err := bgp.NewBGPUpdateMessage(nil, pas, nil).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

type familyCase struct {
	name    string
	family  bgp.Family
	nlri    bgp.NLRI
	nh      netip.Addr
	afiSafi string
	prefix  string
	labels  []uint32
}

func familyCases() []familyCase {
	rd := bgp.NewRouteDistinguisherTwoOctetAS(65000, 100)
	esi := bgp.EthernetSegmentIdentifier{Type: bgp.ESI_ARBITRARY, Value: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}}
	nh4, nh6 := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::2")
	ip4, ip6 := netip.MustParseAddr("10.72.0.1"), netip.MustParseAddr("2001:db8:72::1")
	return []familyCase{
		{"ipv4 labeled", bgp.RF_IPv4_MPLS, must(bgp.NewLabeledIPAddrPrefix(netip.MustParsePrefix("10.70.0.0/24"), *bgp.NewMPLSLabelStack(100))), nh4,
			"IPV4_LABELED_UNICAST", "10.70.0.0/24", []uint32{100}},
		{"ipv6 labeled", bgp.RF_IPv6_MPLS, must(bgp.NewLabeledIPAddrPrefix(netip.MustParsePrefix("2001:db8:70::/48"), *bgp.NewMPLSLabelStack(101, 102))), nh6,
			"IPV6_LABELED_UNICAST", "2001:db8:70::/48", []uint32{101, 102}},
		{"l3vpn ipv4", bgp.RF_IPv4_VPN, must(bgp.NewLabeledVPNIPAddrPrefix(netip.MustParsePrefix("10.71.0.0/24"), *bgp.NewMPLSLabelStack(200), rd)), nh4,
			"L3VPN_IPV4_UNICAST", "65000:100:10.71.0.0/24", []uint32{200}},
		{"l3vpn ipv6", bgp.RF_IPv6_VPN, must(bgp.NewLabeledVPNIPAddrPrefix(netip.MustParsePrefix("2001:db8:71::/48"), *bgp.NewMPLSLabelStack(201), rd)), nh6,
			"L3VPN_IPV6_UNICAST", "65000:100:2001:db8:71::/48", []uint32{201}},
		// EVPN routes are keyed as RFC 7432 defines them (the labels, and
		// the ESI of types 2 and 5, are not part of the key).
		{"evpn 1 ethernet auto-discovery", bgp.RF_EVPN, bgp.NewEVPNEthernetAutoDiscoveryRoute(rd, esi, 10, 300), nh4,
			"L2VPN_EVPN", "[type:A-D][rd:65000:100][esi:ESI_ARBITRARY | 01:02:03:04:05:06:07:08:09][etag:10]", []uint32{300}},
		{"evpn 2 mac/ip advertisement", bgp.RF_EVPN, must(bgp.NewEVPNMacIPAdvertisementRoute(rd, esi, 10, "aa:bb:cc:dd:ee:01", ip4, []uint32{301, 5001})), nh4,
			"L2VPN_EVPN", "[type:macadv][rd:65000:100][etag:10][mac:aa:bb:cc:dd:ee:01][ip:10.72.0.1]", []uint32{301, 5001}},
		{"evpn 3 inclusive multicast", bgp.RF_EVPN, must(bgp.NewEVPNMulticastEthernetTagRoute(rd, 10, nh4)), nh4,
			"L2VPN_EVPN", "[type:multicast][rd:65000:100][etag:10][ip:192.0.2.2]", nil},
		{"evpn 4 ethernet segment", bgp.RF_EVPN, must(bgp.NewEVPNEthernetSegmentRoute(rd, esi, nh4)), nh4,
			"L2VPN_EVPN", "[type:esi][rd:65000:100][esi:ESI_ARBITRARY | 01:02:03:04:05:06:07:08:09][ip:192.0.2.2]", nil},
		{"evpn 5 ip prefix", bgp.RF_EVPN, must(bgp.NewEVPNIPPrefixRoute(rd, esi, 10, 48, ip6, netip.MustParseAddr("2001:db8::1"), 302)), nh4,
			"L2VPN_EVPN", "[type:Prefix][rd:65000:100][etag:10][prefix:2001:db8:72::1/48]", []uint32{302}},
	}
}

// TestFamilies decodes labeled unicast, L3VPN and the five EVPN route
// types: family name, prefix text (with RD and EVPN fields), labels, next
// hop, route target; then their withdrawals.
func TestFamilies(t *testing.T) {
	sent, recv := opens(false)
	for _, tc := range familyCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := bmpgen.AppendPeerUp(nil, gpeer(0), localV4, 179, 1, sent, recv, "")
			s = bmpgen.AppendRouteMonitoringMsg(s, gpeer(0), familyUpdate(t, tc.family, tc.nlri, tc.nh, false))
			s = bmpgen.AppendRouteMonitoringMsg(s, gpeer(0), familyUpdate(t, tc.family, tc.nlri, tc.nh, true))
			msgs := decodeAll(t, NewDecoder(nil), s)
			ann, wd := msgs[1].Update, msgs[2].Update
			if ann == nil || len(ann.Announce) != 1 || len(ann.Skipped) != 0 {
				t.Fatalf("announce: %+v", ann)
			}
			n, a := ann.Announce[0], ann.Attrs
			if n.AfiSafi != tc.afiSafi || n.Text() != tc.prefix || !slices.Equal(n.Labels, tc.labels) {
				t.Errorf("got %s %q labels %v; want %s %q labels %v", n.AfiSafi, n.Text(), n.Labels, tc.afiSafi, tc.prefix, tc.labels)
			}
			if a.NextHop != tc.nh.String() || a.OriginAS != 4200000002 || !slices.Equal(a.ExtCommunities["route-target"], []string{"65000:200"}) {
				t.Errorf("attrs: next hop %s, origin AS %d, ext communities %v", a.NextHop, a.OriginAS, a.ExtCommunities)
			}
			if wd == nil || len(wd.Withdraw) != 1 || wd.Withdraw[0].AfiSafi != tc.afiSafi || wd.Withdraw[0].Text() != n.Text() {
				t.Errorf("withdraw: %+v", wd)
			}
		})
	}
}
