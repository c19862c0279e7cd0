package netlab

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshd/meshd/rpki/vrpfile"
)

// The lab's RPKI cache (--rpki): Debian's stayrtr in the management
// namespace, serving the VRPs of a file the lab writes, on loopback there.
const (
	RTRPort        = 8282
	RTRMetricsPort = 8283
)

// ROA is one VRP of the cache's file.
type ROA = vrpfile.ROA

// OwnPrefixes are the prefixes router r originates: an IPv4 /24 and an
// IPv6 /48.
func (r Router) OwnPrefixes() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix(fmt.Sprintf("10.200.%d.0/24", r.Index)),
		netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x::/48", r.Index)),
	}
}

// InvalidPrefix is what the invalid fault has router r originate: the
// first /25 of its own /24, which its ROA (max length 24) makes
// RPKI-invalid by length, though the watch allows it.
func (r Router) InvalidPrefix() netip.Prefix {
	return netip.PrefixFrom(r.OwnPrefixes()[0].Addr(), 25)
}

// ROAs are the lab's VRPs: each router's own prefixes, to its AS, with
// their own length as the max length.
func (t *Topology) ROAs() []ROA {
	var out []ROA
	for _, r := range t.Routers {
		for _, p := range r.OwnPrefixes() {
			out = append(out, ROA{Prefix: p.String(), MaxLength: p.Bits(), ASN: r.ASN})
		}
	}
	return out
}

// monitorConfig is the rpki: and monitor: sections of the lab's meshd
// config: every router's prefixes watched, expected from its AS, IPv4
// more-specifics allowed to /25 (the invalid fault's length); every
// router's AS is the operator's own, so a prefix one originates that no
// watch covers alerts too. A prefix must be withdrawn at as many places
// as the lab has routers to be a visibility alert.
func (l *Lab) monitorConfig() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rpki:\n  caches: [\"127.0.0.1:%d\"]\nmonitor:\n  visibility-loss: %d\n  own-asns: [", RTRPort, len(l.Topo.Routers))
	for i, r := range l.Topo.Routers {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, r.ASN)
	}
	b.WriteString("]\n  prefixes:\n")
	for _, r := range l.Topo.Routers {
		for _, p := range r.OwnPrefixes() {
			maxLen := p.Bits()
			if p.Addr().Is4() {
				maxLen = r.InvalidPrefix().Bits()
			}
			fmt.Fprintf(&b, "    - {prefix: %s, asn: [%d], max-length: %d, description: \"%s's own\"}\n", p, r.ASN, maxLen, r.Name)
		}
	}
	return b.String()
}

// ROAFile is where the lab's VRPs are.
func (l *Lab) ROAFile() string { return filepath.Join(l.State.Dir, "vrps.json") }

// WriteROAs replaces the VRPs the cache serves; stayrtr reads the file
// every second and tells meshd (Serial Notify).
func (l *Lab) WriteROAs(roas []ROA) error { return vrpfile.Write(l.ROAFile(), roas) }

func (l *Lab) startRTR() error {
	bin, err := l.bin("stayrtr")
	if err != nil {
		return fmt.Errorf("stayrtr: %w (install with make tools: Debian's stayrtr)", err)
	}
	if err := l.WriteROAs(l.Topo.ROAs()); err != nil {
		return err
	}
	if err := l.start("stayrtr", MgmtNS, bin, "-bind", fmt.Sprintf("127.0.0.1:%d", RTRPort),
		"-metrics.addr", fmt.Sprintf("127.0.0.1:%d", RTRMetricsPort), "-cache", l.ROAFile(), "-refresh", "1",
		"-checktime=false", "-rtr.refresh", "60", "-rtr.retry", "5", "-log.verbose=false"); err != nil {
		return err
	}
	l.State.Addrs["rtr"] = fmt.Sprintf("127.0.0.1:%d", RTRPort)
	return waitHTTP(MgmtNS, fmt.Sprintf("127.0.0.1:%d", RTRMetricsPort), "/metrics", 30*time.Second)
}
