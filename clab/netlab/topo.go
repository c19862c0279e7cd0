// Package netlab builds meshd's namespace lab: routers in network
// namespaces joined by veth links, real BGP speakers exporting BMP, a
// management namespace where meshd and InfluxDB run, and the faults an
// operator wants to see meshd catch.
package netlab

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// Prefix starts every namespace and process name the lab makes, so that
// Down can find them even after a crash. It is "mlab-" unless
// MESHD_LAB_PREFIX names another (letters and digits, ending in "-"):
// labs with different prefixes share nothing but the host's loopback
// ports, so a developer's lab can run beside a test run's.
var Prefix = labPrefix(os.Getenv("MESHD_LAB_PREFIX"))

// MgmtNS is the management namespace: meshd, its BMP listener and the
// InfluxDB it writes to live there; routers reach it over a bridge.
var MgmtNS = Prefix + "mgmt"

// WireNS holds the middle of every link, where delay and loss are added.
var WireNS = Prefix + "wire"

// labPrefix checks MESHD_LAB_PREFIX; a bad one falls back to the default
// with a warning rather than naming namespaces Down would not find.
func labPrefix(env string) string {
	const def = "mlab-"
	if env == "" {
		return def
	}
	ok := len(env) >= 2 && len(env) <= 8 && strings.HasSuffix(env, "-")
	for _, c := range env[:len(env)-1] {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			ok = false
		}
	}
	if !ok {
		fmt.Fprintf(os.Stderr, "MESHD_LAB_PREFIX=%q: want 1 to 7 lower-case letters or digits then \"-\"; using %q\n", env, def)
		return def
	}
	return env
}

// Addresses and ports inside the lab. All of them are inside namespaces
// the lab creates.
const (
	MgmtAddr     = "10.77.0.1"
	BMPPort      = 11019
	GNMIPort     = 9339
	HTTPPort     = 9100
	InfluxPort   = 8086
	ProbePort    = 57400
	BaseASN      = 4200000000
	gobgpAPIPort = 50051
	// PeeringPort is where meshd takes BGP from the routers with no BMP
	// (BIRD), as their route collector; MeshdASN is its AS there.
	PeeringPort = 11179
	MeshdASN    = BaseASN + 100
)

// Router is one lab router.
type Router struct {
	Index  int    // 1-based
	Name   string // r1, r2, ...
	NS     string // namespace
	ASN    uint32
	ID     string // BGP router ID
	Mgmt   string // address on the management bridge
	Daemon string // gobgpd, frr or bird
}

// Link is a point-to-point link between two routers.
type Link struct {
	Index  int
	A, B   int // router indexes
	AIf    string
	BIf    string
	A4, B4 netip.Addr
	A6, B6 netip.Addr
}

// WireIfs names the link's two interfaces in the wire namespace: wa faces
// router A, wb router B.
func (l Link) WireIfs() (wa, wb string) {
	return fmt.Sprintf("w%da", l.Index), fmt.Sprintf("w%db", l.Index)
}

// Topology is the lab's routers and links.
type Topology struct {
	Routers []Router
	Links   []Link
}

// NewTopology lays out n routers in a ring with chords every third router,
// a partial mesh where every router has two or three neighbors and some
// pairs have more than one path between them.
func NewTopology(n int) (*Topology, error) {
	if n < 2 || n > 60 {
		return nil, fmt.Errorf("routers: %d: want 2 to 60", n)
	}
	t := &Topology{}
	for i := 1; i <= n; i++ {
		t.Routers = append(t.Routers, Router{
			Index: i, Name: fmt.Sprintf("r%d", i), NS: fmt.Sprintf("%sr%d", Prefix, i),
			ASN: BaseASN + uint32(i), ID: fmt.Sprintf("10.255.0.%d", i),
			Mgmt: fmt.Sprintf("10.77.0.%d", 10+i), Daemon: daemonFor(i),
		})
	}
	add := func(a, b int) {
		k := len(t.Links) + 1
		t.Links = append(t.Links, Link{
			Index: k, A: a, B: b,
			AIf: fmt.Sprintf("l%d-r%d", k, b), BIf: fmt.Sprintf("l%d-r%d", k, a),
			A4: netip.AddrFrom4([4]byte{10, 100, byte(k), 1}), B4: netip.AddrFrom4([4]byte{10, 100, byte(k), 2}),
			A6: netip.MustParseAddr(fmt.Sprintf("fd00:100:%x::1", k)), B6: netip.MustParseAddr(fmt.Sprintf("fd00:100:%x::2", k)),
		})
	}
	for i := 1; i < n; i++ {
		add(i, i+1)
	}
	if n > 2 {
		add(n, 1)
	}
	for i := 1; i+2 <= n && n >= 5; i += 3 {
		add(i, i+2)
	}
	return t, nil
}

// daemonFor puts BIRD on every fifth router, gobgpd on the other odd ones
// and FRR on the other even ones, so ring links join two different
// implementations, as operators run all three. The default 4-router lab
// keeps gobgpd and FRR (its tests and README faults name them); 5 or more
// routers have BIRD too.
func daemonFor(i int) string {
	switch {
	case i%5 == 0:
		return "bird"
	case i%2 == 0:
		return "frr"
	}
	return "gobgpd"
}

// Router returns the router with a name, such as "r2".
func (t *Topology) Router(name string) (Router, bool) {
	for _, r := range t.Routers {
		if r.Name == name {
			return r, true
		}
	}
	return Router{}, false
}

// LinkBetween returns the direct link between two routers.
func (t *Topology) LinkBetween(a, b string) (Link, bool) {
	ra, ok1 := t.Router(a)
	rb, ok2 := t.Router(b)
	if !ok1 || !ok2 {
		return Link{}, false
	}
	for _, l := range t.Links {
		if (l.A == ra.Index && l.B == rb.Index) || (l.A == rb.Index && l.B == ra.Index) {
			return l, true
		}
	}
	return Link{}, false
}

// Peer is one BGP session end as seen from a router.
type Peer struct {
	Router      Router
	LocalAddr   netip.Addr
	PeerAddr    netip.Addr
	PeerASN     uint32
	PeerName    string
	LocalIfName string
}

// Peers lists the sessions of a router, IPv4 and IPv6 on every link.
func (t *Topology) Peers(r Router) []Peer {
	var out []Peer
	for _, l := range t.Links {
		var local, remote Router
		var la4, ra4, la6, ra6 netip.Addr
		var ifn string
		switch r.Index {
		case l.A:
			local, remote = r, t.Routers[l.B-1]
			la4, ra4, la6, ra6, ifn = l.A4, l.B4, l.A6, l.B6, l.AIf
		case l.B:
			local, remote = r, t.Routers[l.A-1]
			la4, ra4, la6, ra6, ifn = l.B4, l.A4, l.B6, l.A6, l.BIf
		default:
			continue
		}
		out = append(out,
			Peer{Router: local, LocalAddr: la4, PeerAddr: ra4, PeerASN: remote.ASN, PeerName: remote.Name, LocalIfName: ifn},
			Peer{Router: local, LocalAddr: la6, PeerAddr: ra6, PeerASN: remote.ASN, PeerName: remote.Name, LocalIfName: ifn})
	}
	return out
}
