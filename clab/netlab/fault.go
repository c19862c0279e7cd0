package netlab

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/meshd/meshd/internal/wire"
)

// Fault injects a fault between two routers: "down", "up", "reset",
// "delay" (arg: e.g. 20ms), "loss" (arg: e.g. 5%) or "clear" (no delay or
// loss). Delay and loss apply to frames from a to b.
func (l *Lab) Fault(kind, a, b, arg string) error {
	lk, ok := l.Topo.LinkBetween(a, b)
	if !ok {
		return fmt.Errorf("no direct link between %s and %s", a, b)
	}
	ra, _ := l.Topo.Router(a)
	rb, _ := l.Topo.Router(b)
	aIf, bIf := lk.AIf, lk.BIf
	if ra.Index != lk.A {
		aIf, bIf = lk.BIf, lk.AIf
	}
	switch kind {
	case "down", "up":
		if err := nsRun(ra.NS, "ip", "link", "set", aIf, kind); err != nil {
			return err
		}
		return nsRun(rb.NS, "ip", "link", "set", bIf, kind)
	case "reset":
		for _, p := range l.Topo.Peers(ra) {
			if p.PeerName != b {
				continue
			}
			if ra.Daemon == "bird" {
				if err := l.birdReset(ra, p.PeerAddr); err != nil {
					return err
				}
				continue
			}
			if ra.Daemon == "frr" {
				if err := l.vtysh(ra, "clear bgp "+p.PeerAddr.String()); err != nil {
					return err
				}
				continue
			}
			cli, err := l.bin("gobgp")
			if err != nil {
				return err
			}
			if err := nsRun(ra.NS, cli, "-u", "127.0.0.1", "-p", fmt.Sprint(gobgpAPIPort), "neighbor", p.PeerAddr.String(), "reset"); err != nil {
				return err
			}
		}
		return nil
	case "delay", "loss", "clear":
		// Faults shape frames leaving a, like netem on a's egress would.
		all, err := l.loadImpairments()
		if err != nil {
			return err
		}
		imp := all[lk.Index][a]
		switch kind {
		case "clear":
			imp = wire.Impairment{}
		case "delay":
			d, err := time.ParseDuration(arg)
			if err != nil || d < 0 || d > 10*time.Second {
				return fmt.Errorf("delay %q: want a duration such as 20ms (0 to 10s)", arg)
			}
			imp.Delay = d
		case "loss":
			p, err := strconv.ParseFloat(strings.TrimSuffix(arg, "%"), 64)
			if err != nil || p < 0 || p > 100 {
				return fmt.Errorf("loss %q: want a percentage such as 5%%", arg)
			}
			imp.Loss = p / 100
		}
		return l.setImpairment(lk, a, imp)
	}
	return fmt.Errorf("unknown fault %q: want down, up, reset, delay or loss", kind)
}

// Hijack makes router r originate prefix (a prefix it does not own, or a
// more-specific of another router's), as a hijack or a leak would.
func (l *Lab) Hijack(name, prefix string) error {
	r, ok := l.Topo.Router(name)
	if !ok {
		return fmt.Errorf("no router %s", name)
	}
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return fmt.Errorf("hijack %q: %w", prefix, err)
	}
	if r.Daemon == "bird" {
		return l.birdHijack(r, p)
	}
	if r.Daemon == "frr" {
		af := "ipv4"
		if p.Addr().Is6() {
			af = "ipv6"
		}
		return nsRun(r.NS, "vtysh", "--vty_socket", l.FRRDir(r), "-d", "bgpd", "-c", "configure terminal",
			"-c", fmt.Sprintf("router bgp %d", r.ASN), "-c", "address-family "+af+" unicast", "-c", "network "+p.String())
	}
	cli, err := l.bin("gobgp")
	if err != nil {
		return err
	}
	fam := "ipv4"
	if p.Addr().Is6() {
		fam = "ipv6"
	}
	return nsRun(r.NS, cli, "-u", "127.0.0.1", "-p", fmt.Sprint(gobgpAPIPort), "global", "rib", "add", p.String(), "-a", fam)
}

// Reroute sends the traffic between a and b's link addresses through via,
// an extra hop, with host routes on all three (and back with "unroute").
// via must be linked to both.
func (l *Lab) Reroute(a, b, via string, undo bool) error {
	ab, ok := l.Topo.LinkBetween(a, b)
	if !ok {
		return fmt.Errorf("no direct link between %s and %s", a, b)
	}
	av, ok1 := l.Topo.LinkBetween(a, via)
	vb, ok2 := l.Topo.LinkBetween(via, b)
	if !ok1 || !ok2 {
		return fmt.Errorf("%s is not linked to both %s and %s", via, a, b)
	}
	ra, _ := l.Topo.Router(a)
	rb, _ := l.Topo.Router(b)
	rv, _ := l.Topo.Router(via)
	// end returns router r's addresses on link lk.
	end := func(lk Link, r Router) (v4, v6 netip.Addr) {
		if lk.A == r.Index {
			return lk.A4, lk.A6
		}
		return lk.B4, lk.B6
	}
	a4, a6 := end(ab, ra)
	b4, b6 := end(ab, rb)
	va4, va6 := end(av, rv) // via, on the a side
	vb4, vb6 := end(vb, rv) // via, on the b side
	aV4, aV6 := end(av, ra) // a, towards via
	bV4, bV6 := end(vb, rb) // b, towards via
	verb := "replace"
	if undo {
		verb = "del"
	}
	routes := []struct {
		ns      string
		dst, gw netip.Addr
	}{
		{ra.NS, b4, va4}, {ra.NS, b6, va6},
		{rb.NS, a4, vb4}, {rb.NS, a6, vb6},
		{rv.NS, b4, bV4}, {rv.NS, b6, bV6},
		{rv.NS, a4, aV4}, {rv.NS, a6, aV6},
	}
	for _, r := range routes {
		fam, plen := "-4", "/32"
		if r.dst.Is6() {
			fam, plen = "-6", "/128"
		}
		args := []string{fam, "route", verb, r.dst.String() + plen}
		if !undo {
			args = append(args, "via", r.gw.String())
		}
		if err := nsRun(r.ns, "ip", args...); err != nil {
			return err
		}
	}
	return nil
}
