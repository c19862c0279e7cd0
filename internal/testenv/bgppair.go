package testenv

import (
	"fmt"
	"testing"
)

// BGPPair is FRR's bgpd and gobgpd in two namespaces joined by a veth,
// peering over IPv4 and IPv6 with 3 s keepalives and a 9 s hold time: the
// two daemons a `meshd-probe --bgp` poller reads. FRR announces
// 192.0.2.0/24 over IPv4 and activates IPv6 unicast only on the IPv6
// session.
type BGPPair struct {
	FRR, Gobgpd *Daemon
	// Each side's addresses on the link.
	FRR4, FRR6, Gobgp4, Gobgp6 string
}

// StartBGPPair starts a BGPPair in namespaces named after prefix, on
// 10.<subnet>.0.0/30 and fd00:<subnet>::/64 (FRR the first address, gobgpd
// the second), FRR in frrAS and gobgpd in gobgpAS. Both stop at cleanup.
func StartBGPPair(t testing.TB, prefix string, subnet int, frrAS, gobgpAS uint32) *BGPPair {
	t.Helper()
	RequireRoot(t)
	p := &BGPPair{FRR4: fmt.Sprintf("10.%d.0.1", subnet), FRR6: fmt.Sprintf("fd00:%d::1", subnet),
		Gobgp4: fmt.Sprintf("10.%d.0.2", subnet), Gobgp6: fmt.Sprintf("fd00:%d::2", subnet)}
	a := NewNetns(t, prefix+"a")
	b := NewNetns(t, prefix+"b")
	Veth(t, a, b, []string{p.FRR4 + "/30", p.FRR6 + "/64"}, []string{p.Gobgp4 + "/30", p.Gobgp6 + "/64"})
	p.FRR = StartFRR(t, a, fmt.Sprintf(`frr defaults traditional
hostname a
router bgp %[1]d
 bgp router-id %[3]s
 no bgp ebgp-requires-policy
 neighbor %[4]s remote-as %[2]d
 neighbor %[4]s timers 3 9
 neighbor %[4]s timers connect 1
 neighbor %[5]s remote-as %[2]d
 neighbor %[5]s timers 3 9
 neighbor %[5]s timers connect 1
 address-family ipv4 unicast
  network 192.0.2.0/24
  no neighbor %[5]s activate
 exit-address-family
 address-family ipv6 unicast
  neighbor %[5]s activate
 exit-address-family
`, frrAS, gobgpAS, p.FRR4, p.Gobgp4, p.Gobgp6))
	nb := func(addr, afi string) string {
		return fmt.Sprintf(`[[neighbors]]
  [neighbors.config]
    neighbor-address = %q
    peer-as = %d
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
    connect-retry = 1
    idle-hold-time-after-reset = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = %q
`, addr, frrAS, afi)
	}
	p.Gobgpd = StartGobgpd(t, b, fmt.Sprintf("[global.config]\n  as = %d\n  router-id = %q\n  port = 179\n\n%s\n%s",
		gobgpAS, p.Gobgp4, nb(p.FRR4, "ipv4-unicast"), nb(p.FRR6, "ipv6-unicast")))
	return p
}
