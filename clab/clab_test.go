package clab

import (
	"bufio"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// No container engine runs where meshd is tested, so the containerlab
// twin is checked by reading it: structure, names, and addresses that
// agree between the topology, the routers' configs and meshd's config.

type topoFile struct {
	Name string `yaml:"name"`
	Mgmt struct {
		Subnet string `yaml:"ipv4-subnet"`
	} `yaml:"mgmt"`
	Topology struct {
		Nodes map[string]struct {
			Kind          string   `yaml:"kind"`
			Image         string   `yaml:"image"`
			MgmtIPv4      string   `yaml:"mgmt-ipv4"`
			StartupConfig string   `yaml:"startup-config"`
			Binds         []string `yaml:"binds"`
			NetworkMode   string   `yaml:"network-mode"`
			Cmd           string   `yaml:"cmd"`
		} `yaml:"nodes"`
		Links []struct {
			Endpoints []string `yaml:"endpoints"`
		} `yaml:"links"`
	} `yaml:"topology"`
}

type meshdFile struct {
	BMP struct {
		Listen []string `yaml:"listen"`
	} `yaml:"bmp"`
	Influx struct {
		URL string `yaml:"url"`
	} `yaml:"influxdb"`
	Targets map[string]struct {
		Address string `yaml:"address"`
	} `yaml:"targets"`
}

// router is what a router's startup config says.
type router struct {
	asn       uint32
	ifaces    map[string]netip.Prefix // interface -> address
	neighbors map[netip.Addr]uint32   // neighbor -> peer AS
	bmp       string                  // host:port of the BMP collector
}

var (
	frrAddr  = regexp.MustCompile(`^interface (\S+)$|^ ip address (\S+)$`)
	frrASN   = regexp.MustCompile(`^router bgp (\d+)$`)
	frrNbr   = regexp.MustCompile(`^ neighbor (\S+) remote-as (\d+)$`)
	frrBMP   = regexp.MustCompile(`^  bmp connect (\S+) port (\d+)`)
	srlAddr  = regexp.MustCompile(`^set / interface ethernet-(\d+)/(\d+) subinterface 0 ipv4 address (\S+)$`)
	srlASN   = regexp.MustCompile(`autonomous-system (\d+)$`)
	srlNbr   = regexp.MustCompile(`protocols bgp neighbor (\S+) peer-as (\d+)`)
	clabLink = regexp.MustCompile(`^([a-z0-9]+):(\S+)$`)
)

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		out = append(out, s.Text())
	}
	return out
}

func atou32(t *testing.T, s string) uint32 {
	t.Helper()
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(v)
}

func parseFRR(t *testing.T, path string) router {
	r := router{ifaces: map[string]netip.Prefix{}, neighbors: map[netip.Addr]uint32{}}
	iface := ""
	for _, l := range readLines(t, path) {
		if m := frrAddr.FindStringSubmatch(l); m != nil {
			if m[1] != "" {
				iface = m[1]
			} else {
				r.ifaces[iface] = netip.MustParsePrefix(m[2])
			}
		}
		if m := frrASN.FindStringSubmatch(l); m != nil {
			r.asn = atou32(t, m[1])
		}
		if m := frrNbr.FindStringSubmatch(l); m != nil {
			r.neighbors[netip.MustParseAddr(m[1])] = atou32(t, m[2])
		}
		if m := frrBMP.FindStringSubmatch(l); m != nil {
			r.bmp = m[1] + ":" + m[2]
		}
	}
	return r
}

func parseSRL(t *testing.T, path string) router {
	r := router{ifaces: map[string]netip.Prefix{}, neighbors: map[netip.Addr]uint32{}}
	for _, l := range readLines(t, path) {
		if m := srlAddr.FindStringSubmatch(l); m != nil {
			r.ifaces["e"+m[1]+"-"+m[2]] = netip.MustParsePrefix(m[3])
		}
		if m := srlASN.FindStringSubmatch(l); m != nil {
			r.asn = atou32(t, m[1])
		}
		if m := srlNbr.FindStringSubmatch(l); m != nil {
			r.neighbors[netip.MustParseAddr(m[1])] = atou32(t, m[2])
		}
	}
	return r
}

func TestContainerlabTwinIsConsistent(t *testing.T) {
	var topo topoFile
	b, err := os.ReadFile("meshd.clab.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &topo); err != nil {
		t.Fatalf("meshd.clab.yml: %v", err)
	}
	subnet := netip.MustParsePrefix(topo.Mgmt.Subnet)
	for _, want := range []string{"srl1", "srl2", "frr1", "frr2", "meshd", "influxdb", "chronograf"} {
		if _, ok := topo.Topology.Nodes[want]; !ok {
			t.Errorf("node %s missing", want)
		}
	}

	routers := map[string]router{}
	mgmt := map[string]netip.Addr{}
	for name, n := range topo.Topology.Nodes {
		if n.MgmtIPv4 != "" {
			a := netip.MustParseAddr(n.MgmtIPv4)
			if !subnet.Contains(a) {
				t.Errorf("%s: mgmt-ipv4 %s outside %s", name, a, subnet)
			}
			mgmt[name] = a
		}
		if n.StartupConfig != "" {
			if _, err := os.Stat(n.StartupConfig); err != nil {
				t.Errorf("%s: startup-config: %v", name, err)
			}
			if n.Kind == "nokia_srlinux" {
				routers[name] = parseSRL(t, n.StartupConfig)
			}
		}
		for _, bind := range n.Binds {
			src := strings.SplitN(bind, ":", 2)[0]
			if strings.Contains(src, "/") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("%s: bind %s: %v", name, src, err)
				}
			}
			if strings.HasSuffix(bind, ":/etc/frr/frr.conf") {
				routers[name] = parseFRR(t, src)
			}
		}
		if strings.HasPrefix(n.NetworkMode, "container:") {
			if _, ok := topo.Topology.Nodes[strings.TrimPrefix(n.NetworkMode, "container:")]; !ok {
				t.Errorf("%s: network-mode names a missing node", name)
			}
		}
	}
	if len(routers) != 4 {
		t.Fatalf("parsed %d router configs, want 4", len(routers))
	}

	// Every link joins two existing interfaces in one /30; every BGP
	// neighbor is the far end of a link, with the AS that router has.
	linked := 0
	for _, l := range topo.Topology.Links {
		if len(l.Endpoints) != 2 {
			t.Fatalf("link %v: want 2 endpoints", l.Endpoints)
		}
		var ends [2]netip.Prefix
		var names [2]string
		for i, ep := range l.Endpoints {
			m := clabLink.FindStringSubmatch(ep)
			if m == nil {
				t.Fatalf("endpoint %q is not node:interface", ep)
			}
			r, ok := routers[m[1]]
			if !ok {
				t.Fatalf("endpoint %q: no router %s", ep, m[1])
			}
			p, ok := r.ifaces[m[2]]
			if !ok {
				t.Fatalf("endpoint %q: interface has no address in %s's config", ep, m[1])
			}
			ends[i], names[i] = p, m[1]
		}
		if ends[0].Masked() != ends[1].Masked() {
			t.Errorf("link %v: %s and %s are not in one subnet", l.Endpoints, ends[0], ends[1])
			continue
		}
		for i := 0; i < 2; i++ {
			a, b := routers[names[i]], routers[names[1-i]]
			if as, ok := a.neighbors[ends[1-i].Addr()]; !ok || as != b.asn {
				t.Errorf("%s: neighbor %s (%s) peer-as %d, want %d", names[i], ends[1-i].Addr(), names[1-i], as, b.asn)
			} else {
				linked++
			}
		}
	}
	total := 0
	for _, r := range routers {
		total += len(r.neighbors)
	}
	if linked != total {
		t.Errorf("%d of %d BGP neighbors match a link", linked, total)
	}

	// meshd's config points at the nodes' management addresses.
	var mc meshdFile
	b, err = os.ReadFile(filepath.Join("configs", "meshd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &mc); err != nil {
		t.Fatalf("configs/meshd.yaml: %v", err)
	}
	for name, tg := range mc.Targets {
		host, _, _ := strings.Cut(tg.Address, ":")
		if a, ok := mgmt[name]; !ok || a.String() != host {
			t.Errorf("target %s address %s, node's mgmt-ipv4 %s", name, tg.Address, mgmt[name])
		}
	}
	for _, n := range []string{"srl1", "srl2", "frr1", "frr2"} {
		if _, ok := mc.Targets[n]; !ok {
			t.Errorf("meshd.yaml has no gNMI target %s", n)
		}
	}
	_, bmpPort, _ := strings.Cut(mc.BMP.Listen[0], ":")
	for _, n := range []string{"frr1", "frr2"} {
		want := mgmt["meshd"].String() + ":" + bmpPort
		if routers[n].bmp != want {
			t.Errorf("%s exports BMP to %q, meshd listens on %s", n, routers[n].bmp, want)
		}
	}
	if !strings.Contains(mc.Influx.URL, mgmt["influxdb"].String()+":8086") {
		t.Errorf("influxdb url %s does not point at the influxdb node %s", mc.Influx.URL, mgmt["influxdb"])
	}
}
