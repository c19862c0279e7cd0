package netlab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// BIRD 2 is the lab's third BGP implementation. It has no BMP: meshd sees
// its sessions with the other routers through their BMP feeds and the
// probe in its namespace (RTT, hops, loss), and its routes through a BGP
// session of its own with meshd's peering source on the management
// network (the lab with one meshd; replicas do not peer yet).

// BIRDDir is where a lab router's BIRD keeps its config, hijack routes and
// control socket.
func (l *Lab) BIRDDir(r Router) string { return filepath.Join(l.State.Dir, r.Name+"-bird") }

// BIRDSocket is the control socket birdc talks to.
func (l *Lab) BIRDSocket(r Router) string { return filepath.Join(l.BIRDDir(r), "bird.ctl") }

// birdProto names the BGP protocol of a session in BIRD's config and in
// birdc's output: BIRD names are symbols, so the address is spelled out.
func birdProto(peer netip.Addr) string {
	return "n_" + strings.NewReplacer(".", "_", ":", "_").Replace(peer.String())
}

func (l *Lab) birdConfig(r Router) string {
	dir := l.BIRDDir(r)
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by 'meshd-lab up'.
log stderr { warning, error, fatal };
router id %s;
protocol device { scan time 10; }
protocol direct { ipv4; ipv6; }
`, r.ID)
	// Each router originates an IPv4 and an IPv6 prefix of its own, as a
	// static blackhole; hijacks add to the included files (Hijack).
	fmt.Fprintf(&b, `protocol static own4 {
  ipv4 { import all; };
  route 10.200.%d.0/24 blackhole;
  include %q;
}
protocol static own6 {
  ipv6 { import all; };
  route 2001:db8:%x::/48 blackhole;
  include %q;
}
`, r.Index, filepath.Join(dir, "hijack4.conf"), r.Index, filepath.Join(dir, "hijack6.conf"))
	// The same timers as the other speakers; multihop (TTL 255) so that a
	// reroute through another router keeps the session up. Multihop
	// resolves next hops recursively, through the connected networks the
	// direct protocol puts in the tables; those are not exported.
	fmt.Fprintf(&b, `template bgp peer {
  local as %d;
  hold time 9;
  keepalive time 3;
  connect retry time 1;
  multihop 255;
}
`, r.ASN)
	if l.State.Replicas == 0 {
		// meshd as route collector: it learns what BIRD exports and
		// sends nothing. Over this IPv4 session BIRD exports IPv6 routes
		// only with an IPv6 next hop: an address of its own /48.
		fmt.Fprintf(&b, `protocol bgp meshd {
  local %s as %d;
  neighbor %s port %d as %d;
  hold time 9;
  keepalive time 3;
  connect retry time 1;
  ipv4 { import none; export where source ~ [ RTS_STATIC, RTS_BGP ]; };
  ipv6 { import none; export where source ~ [ RTS_STATIC, RTS_BGP ]; next hop address 2001:db8:%x::1; };
}
`, r.Mgmt, r.ASN, MgmtAddr, PeeringPort, MeshdASN, r.Index)
	}
	for _, p := range l.Topo.Peers(r) {
		af := "ipv4"
		if p.PeerAddr.Is6() {
			af = "ipv6"
		}
		fmt.Fprintf(&b, `protocol bgp %s from peer {
  neighbor %s as %d;
  source address %s;
  %s { import all; export where source ~ [ RTS_STATIC, RTS_BGP ]; };
}
`, birdProto(p.PeerAddr), p.PeerAddr, p.PeerASN, p.LocalAddr, af)
	}
	return b.String()
}

func (l *Lab) startBIRD(ctx context.Context, r Router) error {
	bin, err := l.bin("bird")
	if err != nil {
		return fmt.Errorf("BIRD: %w (install with make tools: Debian's bird2)", err)
	}
	dir := l.BIRDDir(r)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []string{"hijack4.conf", "hijack6.conf"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			return err
		}
	}
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(l.birdConfig(r)), 0o644); err != nil {
		return err
	}
	if err := l.start(r.Name+"-bird", r.NS, bin, "-f", "-c", conf, "-s", l.BIRDSocket(r), "-P", filepath.Join(dir, "bird.pid")); err != nil {
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := l.Birdc(r, "show status")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("BIRD on %s did not answer birdc: %w", r.Name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Birdc runs one birdc command against a router's BIRD and returns its
// output.
func (l *Lab) Birdc(r Router, cmd ...string) ([]byte, error) {
	bin, err := l.bin("birdc")
	if err != nil {
		return nil, fmt.Errorf("birdc: %w (install with make tools: Debian's bird2)", err)
	}
	// birdc runs in the root namespace: it only needs the socket.
	return output(bin, append([]string{"-s", l.BIRDSocket(r)}, cmd...)...)
}

// birdHijack adds a static route for p to BIRD's hijack file and reloads
// the config, so BIRD originates p.
func (l *Lab) birdHijack(r Router, p netip.Prefix) error {
	f := "hijack4.conf"
	if p.Addr().Is6() {
		f = "hijack6.conf"
	}
	path := filepath.Join(l.BIRDDir(r), f)
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(fh, "route %s blackhole;\n", p)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return l.birdConfigure(r)
}

// birdUnhijack removes p's static route from BIRD's hijack file and
// reloads the config.
func (l *Lab) birdUnhijack(r Router, p netip.Prefix) error {
	f := "hijack4.conf"
	if p.Addr().Is6() {
		f = "hijack6.conf"
	}
	path := filepath.Join(l.BIRDDir(r), f)
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	line := fmt.Sprintf("route %s blackhole;\n", p)
	if !strings.Contains(string(b), line) {
		return fmt.Errorf("%s does not originate %s", r.Name, p)
	}
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), line, "")), 0o644); err != nil {
		return err
	}
	return l.birdConfigure(r)
}

func (l *Lab) birdConfigure(r Router) error {
	out, err := l.Birdc(r, "configure")
	if err != nil {
		return err
	}
	if !strings.Contains(string(out), "Reconfigured") {
		return fmt.Errorf("birdc configure on %s: %s", r.Name, strings.TrimSpace(string(out)))
	}
	return nil
}

// birdReset restarts the BGP session with peer, as 'clear bgp' does.
func (l *Lab) birdReset(r Router, peer netip.Addr) error {
	_, err := l.Birdc(r, "restart", birdProto(peer))
	return err
}

// output runs a command and returns its standard output; its error says
// what the command printed on standard error.
func output(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return outputCtx(ctx, name, args...)
}
