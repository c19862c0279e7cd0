//go:build integration

package bmpbridge_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/bmpbridge"
	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
)

// TestGobgpdLabeledVPNEVPNFamilies has a gobgpd speaker originate labeled
// unicast, L3VPN and EVPN routes to a second one, which exports BMP to the
// bridge, and checks each route as meshd decodes it: family, prefix text
// with its RD and EVPN fields, route-target, and, in the captured stream
// decoded offline, its labels; then its withdraw.
func TestGobgpdLabeledVPNEVPNFamilies(t *testing.T) {
	// args are the gobgp CLI's for `global rib -a family add|del`; prefix
	// is meshd's text for the route; labels nil means the NLRI has none
	// (EVPN types 3 and 4).
	routes := []struct {
		family, afiSafi string
		args            []string
		prefix          string
		rt              string
		labels          []uint32
	}{
		{"ipv4-mpls", "IPV4_LABELED_UNICAST", []string{"10.41.0.0/24", "1041", "rt", "65000:41"},
			"10.41.0.0/24", "65000:41", []uint32{1041}},
		{"ipv6-mpls", "IPV6_LABELED_UNICAST", []string{"2001:db8:41::/48", "1042", "rt", "65000:42"},
			"2001:db8:41::/48", "65000:42", []uint32{1042}},
		{"vpnv4", "L3VPN_IPV4_UNICAST", []string{"10.43.0.0/24", "label", "1043", "rd", "65000:43", "rt", "65000:43"},
			"65000:43:10.43.0.0/24", "65000:43", []uint32{1043}},
		// An IPv4-address RD and a 4-octet-AS route-target (asdot: gobgp's CLI
		// reads "4200000022:44" as 2-octet AS 65535).
		{"vpnv6", "L3VPN_IPV6_UNICAST", []string{"2001:db8:44::/48", "label", "1044", "rd", "10.0.4.2:44", "rt", "64086.59906:44"},
			"10.0.4.2:44:2001:db8:44::/48", "64086.59906:44", []uint32{1044}},
		{"evpn", "L2VPN_EVPN", []string{"a-d", "esi", "AS", "65000", "45", "etag", "45", "label", "1045", "rd", "65000:45", "rt", "65000:45"},
			"[type:A-D][rd:65000:45][esi:ESI_AS | as 65000, local discriminator 45][etag:45]", "65000:45", []uint32{1045}},
		// A 4-octet-AS RD, which gobgp writes in asdot.
		{"evpn", "L2VPN_EVPN", []string{"macadv", "02:00:00:00:00:46", "10.46.0.1", "etag", "46", "label", "1046", "rd", "64086.59906:46", "rt", "65000:46"},
			"[type:macadv][rd:64086.59906:46][etag:46][mac:02:00:00:00:00:46][ip:10.46.0.1]", "65000:46", []uint32{1046}},
		{"evpn", "L2VPN_EVPN", []string{"multicast", "10.0.4.2", "etag", "47", "rd", "65000:47", "rt", "65000:47"},
			"[type:multicast][rd:65000:47][etag:47][ip:10.0.4.2]", "65000:47", nil},
		{"evpn", "L2VPN_EVPN", []string{"esi", "10.0.4.2", "esi", "AS", "65000", "48", "rd", "65000:48", "rt", "65000:48"},
			"[type:esi][rd:65000:48][esi:ESI_AS | as 65000, local discriminator 48][ip:10.0.4.2]", "65000:48", nil},
		// gobgp's API refuses a type 5 route without a gateway address.
		{"evpn", "L2VPN_EVPN", []string{"prefix", "10.49.0.0/24", "gw", "0.0.0.0", "etag", "49", "label", "1049", "rd", "65000:49", "rt", "65000:49"},
			"[type:Prefix][rd:65000:49][etag:49][prefix:10.49.0.0/24]", "65000:49", []uint32{1049}},
	}
	fams := []string{"ipv4-labelled-unicast", "ipv6-labelled-unicast", "l3vpn-ipv4-unicast", "l3vpn-ipv6-unicast", "l2vpn-evpn"}

	a := testenv.NewNetns(t, "bmpfa")
	bns := testenv.NewNetns(t, "bmpfb")
	testenv.Veth(t, a, bns, []string{"10.0.4.1/30"}, []string{"10.0.4.2/30"})
	h := newHarness(t, a, bmpbridge.Config{})
	stopCapture := h.capture(t)
	const router, peer = "spk-fa", "10.0.4.2"
	testenv.StartGobgpd(t, a, speakerConf{as: 4200000021, id: "10.0.4.1", peer: peer, peerAS: 4200000022,
		bmpHost: h.ip, bmpPort: h.port, sysName: router, statsTimeout: 15, families: fams}.String())
	spkB := testenv.StartGobgpd(t, bns, speakerConf{as: 4200000022, id: peer, peer: "10.0.4.1", peerAS: 4200000021,
		families: fams}.String())
	testenv.WaitFor(t, 30*time.Second, "neighbor "+peer+" ESTABLISHED in the core", func() bool {
		return h.value(router, nbr("default", peer, "state/session-state")) == "ESTABLISHED"
	})

	for _, r := range routes {
		spkB.Gobgp(t, append([]string{"global", "rib", "-a", r.family, "add"}, r.args...)...)
	}
	testenv.WaitFor(t, 20*time.Second, "every route in the BMP RIB", func() bool {
		return h.bridge.RouteCount(router, "default", peer, "ADJ_RIB_IN_PRE") == len(routes)
	})
	// await polls for a route event, which reaches the harness through a
	// queue after the core's state; nil when none came in 5 s.
	await := func(action change.RouteAction, afiSafi, prefix string) *change.Route {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			for _, e := range h.allEvents() {
				if e.Kind == change.EventRoute && e.Route.Action == action && e.Route.AfiSafi == afiSafi && e.Route.Prefix == prefix {
					return e.Route
				}
			}
			if time.Now().After(deadline) {
				return nil
			}
		}
	}
	for _, r := range routes {
		got := await(change.Announce, r.afiSafi, r.prefix)
		if got == nil {
			t.Errorf("no announce event for %s %s; events:\n%s", r.afiSafi, r.prefix, h.dumpRoutes())
			continue
		}
		// IPv6 next hops are IPv4-mapped: the session runs over IPv4.
		if got.RIB != "ADJ_RIB_IN_PRE" || got.OriginAS != 4200000022 || !strings.HasSuffix(got.NextHop, peer) {
			t.Errorf("%s %s: rib %s, origin AS %d, next hop %q; want ADJ_RIB_IN_PRE, 4200000022, %s", r.afiSafi, r.prefix, got.RIB, got.OriginAS, got.NextHop, peer)
		}
		if rts := got.ExtCommunities["route-target"]; !slices.Equal(rts, []string{r.rt}) {
			t.Errorf("%s %s: route-targets %q, want [%s] (ext communities %v)", r.afiSafi, r.prefix, rts, r.rt, got.ExtCommunities)
		}
	}

	for _, r := range routes {
		spkB.Gobgp(t, append([]string{"global", "rib", "-a", r.family, "del"}, r.args...)...)
	}
	testenv.WaitFor(t, 20*time.Second, "every route withdrawn from the BMP RIB", func() bool {
		return h.bridge.RouteCount(router, "default", peer, "ADJ_RIB_IN_PRE") == 0
	})
	for _, r := range routes {
		if await(change.Withdraw, r.afiSafi, r.prefix) == nil {
			t.Errorf("no withdraw event for %s %s; events:\n%s", r.afiSafi, r.prefix, h.dumpRoutes())
		}
	}

	// Labels are not in the route event; the offline decode of the same
	// stream shows them.
	lines := decodeCapture(t, stopCapture())
	for _, l := range lines {
		if l.Error != "" {
			t.Errorf("decode error in capture: %s", l.Error)
		}
	}
	for _, r := range routes {
		var labels [][]uint32
		for _, l := range lines {
			if l.Update == nil {
				continue
			}
			for _, n := range l.Update.Announce {
				if n.AfiSafi == r.afiSafi && n.Prefix == r.prefix {
					labels = append(labels, n.Labels)
				}
			}
		}
		if len(labels) == 0 || slices.ContainsFunc(labels, func(l []uint32) bool { return !slices.Equal(l, r.labels) }) {
			t.Errorf("%s %s: captured announcements carry labels %v, want %v each", r.afiSafi, r.prefix, labels, r.labels)
		}
	}
}
