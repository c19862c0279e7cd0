package netlab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshd/meshd/internal/netns"
)

func (l *Lab) startInflux() error {
	bin, err := l.bin("influxd")
	if err != nil {
		return fmt.Errorf("influxd: %w (install with make tools)", err)
	}
	dir := filepath.Join(l.State.Dir, "influxdb")
	// A new lab starts with a new database: a previous lab's series in the
	// same folder would be taken for this one's last values.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	conf := filepath.Join(l.State.Dir, "influxdb.conf")
	cfg := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:8088"
[meta]
  dir = %q
  logging-enabled = false
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
[http]
  bind-address = "%s:%d"
  log-enabled = false
[monitor]
  store-enabled = false
[logging]
  level = "warn"
`, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), MgmtAddr, InfluxPort)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		return err
	}
	if err := l.start("influxd", MgmtNS, bin, "run", "-config", conf); err != nil {
		return err
	}
	l.State.Addrs["influxdb"] = fmt.Sprintf("http://%s:%d", MgmtAddr, InfluxPort)
	return waitHTTP(MgmtNS, fmt.Sprintf("%s:%d", MgmtAddr, InfluxPort), "/ping", 30*time.Second)
}

// sinkConfig is the sinks' part of the lab's meshd config.
func sinkConfig(influxHost string, influxPort int, spool string, gnmiListen string) string {
	return fmt.Sprintf(`influxdb:
  url: "http://%s:%d"
  database: meshd
  create-database: true
  spool-dir: %q
  snapshot-interval: 10s
gnmi-server:
  listen: %q
`, influxHost, influxPort, spool, gnmiListen)
}

// MeshdConfig is the config the lab gives meshd.
func (l *Lab) MeshdConfig() string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by 'meshd-lab up'.
log:
  level: info
http:
  listen: "127.0.0.1:%d"
bmp:
  listen: ["%s:%d"]
`, HTTPPort, MgmtAddr, BMPPort)
	fmt.Fprint(&b, sinkConfig(MgmtAddr, InfluxPort, filepath.Join(l.State.Dir, "spool"), fmt.Sprintf("127.0.0.1:%d", GNMIPort)))
	b.WriteString(l.peeringConfig())
	if l.State.RPKI {
		b.WriteString(l.monitorConfig())
	}
	b.WriteString("targets:\n")
	b.WriteString(l.targetsYAML("  "))
	return b.String()
}

// peeringConfig is meshd's peering: section: the routers with no BMP
// (BIRD) peer with it over BGP on the management network, as their
// route collector.
func (l *Lab) peeringConfig() string {
	var b strings.Builder
	for _, r := range l.Topo.Routers {
		if r.Daemon != "bird" {
			continue
		}
		if b.Len() == 0 {
			fmt.Fprintf(&b, "peering:\n  listen: [\"%s:%d\"]\n  local-as: %d\n  router-id: %s\n  hold-time: 9s\n  peers:\n", MgmtAddr, PeeringPort, MeshdASN, MgmtAddr)
		}
		fmt.Fprintf(&b, "    - {address: %s, as: %d, name: %s}\n", r.Mgmt, r.ASN, r.Name)
	}
	return b.String()
}

// targetsYAML is the lab's gNMI targets, each line after indent: every
// router's probe agent, named as the router, so that its samples join the
// BMP data of the same sessions. The same map is the replicas' shared
// targets file.
func (l *Lab) targetsYAML(indent string) string {
	var b strings.Builder
	for _, r := range l.Topo.Routers {
		fmt.Fprintf(&b, "%s%s:\n%s  address: \"%s:%d\"\n%s  insecure: true\n%s  subscriptions: [meshd-probe, bgp-neighbors]\n%s  encoding: proto\n",
			indent, r.Name, indent, r.Mgmt, ProbePort, indent, indent, indent)
	}
	return b.String()
}

func (l *Lab) startMeshd() error {
	conf := filepath.Join(l.State.Dir, "meshd.yaml")
	// Nor may a previous lab's spool be replayed into the new database.
	if err := os.RemoveAll(filepath.Join(l.State.Dir, "spool")); err != nil {
		return err
	}
	if err := os.WriteFile(conf, []byte(l.MeshdConfig()), 0o644); err != nil {
		return err
	}
	bin, err := l.opts.binary("meshd", l.opts.Meshd)
	if err != nil {
		return err
	}
	if err := l.start("meshd", MgmtNS, bin, "run", "-c", conf); err != nil {
		return err
	}
	l.State.Addrs["meshd-http"] = fmt.Sprintf("127.0.0.1:%d", HTTPPort)
	l.State.Addrs["gnmi"] = fmt.Sprintf("127.0.0.1:%d", GNMIPort)
	if err := waitHTTP(MgmtNS, fmt.Sprintf("127.0.0.1:%d", HTTPPort), "/healthz", 30*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(l.State.Dir, "meshd.log"))
		return fmt.Errorf("%w; meshd's log:\n%s", err, log)
	}
	return nil
}

func (l *Lab) gobgpConfig(r Router) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[global.config]\n  as = %d\n  router-id = %q\n  port = 179\n\n", r.ASN, r.ID)
	for _, p := range l.Topo.Peers(r) {
		afi := "ipv4-unicast"
		if p.PeerAddr.Is6() {
			afi = "ipv6-unicast"
		}
		fmt.Fprintf(&b, `[[neighbors]]
  [neighbors.config]
    neighbor-address = %q
    peer-as = %d
  [neighbors.transport.config]
    local-address = %q
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
    connect-retry = 1
  [neighbors.ebgp-multihop.config]
    enabled = true
    multihop-ttl = 255
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = %q

`, p.PeerAddr, p.PeerASN, p.LocalAddr, afi)
	}
	fmt.Fprintf(&b, `[[bmp-servers]]
  [bmp-servers.config]
    address = %q
    port = %d
    route-monitoring-policy = "all"
    statistics-timeout = 15
    sys-name = %q
`, l.bmpAddr(r), BMPPort, r.Name)
	return b.String()
}

func (l *Lab) startGobgpd(ctx context.Context, r Router) error {
	bin, err := l.bin("gobgpd")
	if err != nil {
		return fmt.Errorf("gobgpd: %w (install with make tools)", err)
	}
	cli, err := l.bin("gobgp")
	if err != nil {
		return fmt.Errorf("gobgp: %w (install with make tools)", err)
	}
	conf := filepath.Join(l.State.Dir, r.Name+"-gobgpd.toml")
	if err := os.WriteFile(conf, []byte(l.gobgpConfig(r)), 0o644); err != nil {
		return err
	}
	api := fmt.Sprintf("127.0.0.1:%d", gobgpAPIPort)
	if err := l.start(r.Name+"-gobgpd", r.NS, bin, "-f", conf, "-t", "toml", "-l", "warn", "-p",
		"--api-hosts", api, "--pprof-disable", "--metrics-path", ""); err != nil {
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := nsRun(r.NS, cli, "-u", "127.0.0.1", "-p", fmt.Sprint(gobgpAPIPort), "global")
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("gobgpd on %s did not answer its API: %w", r.Name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Each router originates an IPv4 and an IPv6 prefix of its own.
	for _, args := range [][]string{
		{"global", "rib", "add", fmt.Sprintf("10.200.%d.0/24", r.Index), "-a", "ipv4"},
		{"global", "rib", "add", fmt.Sprintf("2001:db8:%x::/48", r.Index), "-a", "ipv6"},
	} {
		if err := nsRun(r.NS, cli, append([]string{"-u", "127.0.0.1", "-p", fmt.Sprint(gobgpAPIPort)}, args...)...); err != nil {
			return err
		}
	}
	return nil
}

// waitHTTP polls an HTTP endpoint inside a namespace until it answers 2xx.
func waitHTTP(ns, addr, path string, timeout time.Duration) error {
	client := NSHTTPClient(ns)
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		resp, err := client.Get("http://" + addr + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s%s in %s did not answer within %v: %v", addr, path, ns, timeout, last)
}

// NSHTTPClient returns an HTTP client whose connections are made inside a
// namespace.
func NSHTTPClient(ns string) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return netns.Dial(ctx, ns, addr)
			},
		},
	}
}

func (l *Lab) frrConfig(r Router) string {
	var b strings.Builder
	fmt.Fprintf(&b, "frr defaults datacenter\nhostname %s\n!\nrouter bgp %d\n bgp router-id %s\n", r.Name, r.ASN, r.ID)
	b.WriteString(" no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n no bgp network import-check\n timers bgp 3 9\n")
	peers := l.Topo.Peers(r)
	for _, p := range peers {
		// Multihop (TTL 255) so that a reroute through another router
		// keeps the session up and shows as one hop more.
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n neighbor %s timers connect 1\n neighbor %s ebgp-multihop 255\n", p.PeerAddr, p.PeerASN, p.PeerAddr, p.PeerAddr)
	}
	for _, af := range []struct {
		name   string
		v6     bool
		prefix string
	}{{"ipv4", false, fmt.Sprintf("10.200.%d.0/24", r.Index)}, {"ipv6", true, fmt.Sprintf("2001:db8:%x::/48", r.Index)}} {
		fmt.Fprintf(&b, " address-family %s unicast\n  network %s\n", af.name, af.prefix)
		for _, p := range peers {
			if p.PeerAddr.Is6() == af.v6 {
				fmt.Fprintf(&b, "  neighbor %s activate\n", p.PeerAddr)
			}
		}
		b.WriteString(" exit-address-family\n")
	}
	b.WriteString(` bmp targets meshd
  bmp monitor ipv4 unicast pre-policy
  bmp monitor ipv6 unicast pre-policy
  bmp monitor ipv4 unicast post-policy
  bmp stats interval 15000
`)
	for _, addr := range l.frrBMPAddrs(r) {
		fmt.Fprintf(&b, "  bmp connect %s port %d min-retry 500 max-retry 2000\n", addr, BMPPort)
	}
	b.WriteString(" exit\n!\n")
	return b.String()
}

// FRRDir is where a lab router's FRR keeps its config and vty socket.
func (l *Lab) FRRDir(r Router) string { return filepath.Join(l.State.Dir, r.Name+"-frr") }

func (l *Lab) startFRR(ctx context.Context, r Router) error {
	bin, err := l.bin("bgpd")
	if err != nil {
		return fmt.Errorf("FRR bgpd: %w (install with make tools)", err)
	}
	dir := l.FRRDir(r)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	conf := filepath.Join(dir, "bgpd.conf")
	if err := os.WriteFile(conf, []byte(l.frrConfig(r)), 0o644); err != nil {
		return err
	}
	// No zebra: the lab needs BGP sessions and BMP, not a FIB.
	if err := l.start(r.Name+"-bgpd", r.NS, bin, "-f", conf, "-M", "bmp", "-Z", "-S", "-i", filepath.Join(dir, "bgpd.pid"),
		"--vty_socket", dir, "-z", filepath.Join(dir, "zserv.api"), "--log", "stdout", "-u", "root", "-g", "root"); err != nil {
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := l.vtysh(r, "show bgp summary")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("FRR on %s did not answer vtysh: %w", r.Name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (l *Lab) vtysh(r Router, cmd string) error {
	return nsRun(r.NS, "vtysh", "--vty_socket", l.FRRDir(r), "-d", "bgpd", "-c", cmd)
}

// startProbe runs meshd's keepalive probe in a router's namespace, serving
// gNMI on the router's management address.
func (l *Lab) startProbe(r Router) error {
	bin, err := l.opts.binary("meshd-probe", l.opts.Probe)
	if err != nil {
		return err
	}
	// The management network is private to the lab, hence no TLS there.
	args := []string{"--router", r.Name,
		"--listen", fmt.Sprintf("%s:%d", r.Mgmt, ProbePort), "--allow-insecure", "--window", "20"}
	// The probe also serves its router's own view of the sessions (the
	// daemon's neighbor state, OpenConfig), polled every 2 s.
	switch r.Daemon {
	case "frr":
		args = append(args, "--bgp", "frr", "--bgp-socket", l.FRRDir(r), "--bgp-interval", "2s")
		if vtysh, err := l.bin("vtysh"); err == nil {
			args = append(args, "--vtysh", vtysh)
		}
	case "bird":
		// No BIRD poller in the probe: a BIRD router's probe serves RTT,
		// hops and loss only, and verify reads BIRD's sessions from the
		// neighbors' side.
	case "gobgpd":
		args = append(args, "--bgp", "gobgp", "--gobgp-api", fmt.Sprintf("127.0.0.1:%d", gobgpAPIPort), "--bgp-interval", "2s")
	}
	return l.start(r.Name+"-probe", r.NS, bin, args...)
}
