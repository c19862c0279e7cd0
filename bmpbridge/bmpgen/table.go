package bmpgen

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"
)

// TableConfig describes the synthetic full table one BMP router exports.
type TableConfig struct {
	SysName string
	Peers   int // monitored peers; each sends Routes/Peers routes (at least 1 peer)
	Routes  int // routes in the whole router's export (all peers)
	V6Share float64
	// NewAttrShare is the share of routes whose attribute set differs from
	// every earlier route's: 1.0 is the worst case (each route its own
	// MED, local-pref, aggregator, communities), about 0.35 is what FRR's
	// and BIRD's memory statistics show for a full table.
	NewAttrShare float64
	Seed         uint64
	// OnRoute, when set, is told each route written: its peer, prefix
	// and origin AS (a benchmark builds VRPs for the table from them).
	OnRoute func(peer int, p netip.Prefix, origin uint32)
}

// MaxUpdate is the largest BGP message (RFC 4271 4), what a router packs
// an UPDATE's prefixes into.
const MaxUpdate = 4096

// TablePeer returns the per-peer header WriteTable uses for peer i, for
// callers that look the peer's routes up afterwards.
func TablePeer(i int) Peer {
	return Peer{
		Addr:  peerAddr(i),
		AS:    peerAS(i),
		BGPID: netip.AddrFrom4([4]byte{10, 255, byte(i >> 8), byte(i)}),
		Time:  time.Unix(1_700_000_000, 0),
	}
}

func peerAddr(i int) netip.Addr {
	// 198.18.0.0/15 is set aside for benchmarks (RFC 2544).
	return netip.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i) + 2})
}

func peerNextHop6(i int) netip.Addr {
	a := netip.MustParseAddr("2001:db8::").As16()
	binary.BigEndian.PutUint32(a[12:], uint32(i)+2)
	return netip.AddrFrom16(a)
}

// Tier-1 and large transit ASes first, as upstreams of a real router.
var upstreams = []uint32{174, 3356, 1299, 2914, 6939, 6453, 3257, 6762, 3491, 5511, 701, 7018, 6461, 9002, 4637, 1273}

func peerAS(i int) uint32 {
	if i < len(upstreams) {
		return upstreams[i]
	}
	return 4200000000 + uint32(i)
}

// tableLocalAS is the monitored router's own AS.
const tableLocalAS = 65001

// WriteTable writes Initiation, a Peer Up per peer, Route Monitoring for
// every route (routes that share an attribute set go in one UPDATE, up to
// what fits in 4096 bytes, as a router packs them), End-of-RIB per peer
// and family; it returns the number of BMP messages and routes written.
//
// Every peer announces the same prefixes (distinct within a peer, as
// upstreams of one router send the same table), IPv4 first, then IPv6,
// each attribute set in a run of consecutive prefixes whose length is
// geometric with mean 1/NewAttrShare. A new set draws an AS path of 2-8
// hops (the peer's AS first, the origin from a skewed pool of 70,000
// origins, a fifth of the ASes 4-byte), an origin code, a MED, a
// local-pref, 0-6 communities, large communities on a tenth, and an
// aggregator carrying a serial number, which makes every set differ from
// every earlier one. The stream depends only on c.
func WriteTable(w io.Writer, c TableConfig) (msgs, routes int, err error) {
	if c.Peers < 1 {
		return 0, 0, errors.New("bmpgen: TableConfig.Peers must be at least 1")
	}
	if c.NewAttrShare <= 0 || c.NewAttrShare > 1 {
		return 0, 0, errors.New("bmpgen: TableConfig.NewAttrShare must be in (0, 1]")
	}
	if c.V6Share < 0 || c.V6Share > 1 {
		return 0, 0, errors.New("bmpgen: TableConfig.V6Share must be in [0, 1]")
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	g := &tableGen{w: bw, c: c}
	g.buf = AppendInitiation(g.buf[:0], c.SysName, "meshd bmpgen full table")
	if err := g.emit(); err != nil {
		return g.msgs, g.routes, err
	}
	fams := []uint32{1<<16 | 1, 2<<16 | 1}
	for i := 0; i < c.Peers; i++ {
		p := TablePeer(i)
		g.buf = AppendPeerUp(g.buf[:0], &p, netip.MustParseAddr("198.19.255.1"), 179, uint16(40000+i),
			Open{AS: tableLocalAS, HoldTime: 90, ID: netip.MustParseAddr("198.19.255.1"), Families: fams, FourOctet: true},
			Open{AS: p.AS, HoldTime: 90, ID: p.BGPID, Families: fams, FourOctet: true}, "")
		if err := g.emit(); err != nil {
			return g.msgs, g.routes, err
		}
	}
	for i := 0; i < c.Peers; i++ {
		n := c.Routes / c.Peers
		if i < c.Routes%c.Peers {
			n++
		}
		n6 := int(float64(n)*c.V6Share + 0.5)
		if err := g.peerTable(i, n-n6, false); err != nil {
			return g.msgs, g.routes, err
		}
		if err := g.peerTable(i, n6, true); err != nil {
			return g.msgs, g.routes, err
		}
	}
	return g.msgs, g.routes, bw.Flush()
}

type tableGen struct {
	w      *bufio.Writer
	c      TableConfig
	buf    []byte
	msgs   int
	routes int
	serial uint32 // attribute sets made so far: the aggregator's address
	seen   map[netip.Prefix]struct{}
}

func (g *tableGen) emit() error {
	g.msgs++
	_, err := g.w.Write(g.buf)
	return err
}

// peerTable writes n routes of one family for peer i, then its End-of-RIB.
func (g *tableGen) peerTable(i, n int, v6 bool) error {
	p := TablePeer(i)
	fam := uint64(1)
	if v6 {
		fam = 2
	}
	// The prefixes depend on the seed and family only, so every peer
	// sends the same table; the attributes depend on the peer too.
	pfx := rand.New(rand.NewPCG(g.c.Seed, fam))
	rng := rand.New(rand.NewPCG(g.c.Seed^0x9e3779b97f4a7c15, fam<<32|uint64(i)))
	if g.seen == nil {
		g.seen = make(map[netip.Prefix]struct{}, n)
	}
	clear(g.seen)
	var set Route
	var pending []netip.Prefix
	size := 0 // the UPDATE's length with pending's prefixes
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		set.Prefixes = pending
		g.buf = AppendRouteMonitoring(g.buf[:0], &p, &set)
		g.routes += len(pending)
		pending = pending[:0]
		return g.emit()
	}
	// add puts a prefix in the UPDATE of the current set.
	add := func(pf netip.Prefix) {
		pending = append(pending, pf)
		if g.c.OnRoute != nil {
			g.c.OnRoute(i, pf, set.ASPath[len(set.ASPath)-1])
		}
	}
	for k := 0; k < n; k++ {
		pf := g.prefix(pfx, v6)
		if k == 0 || rng.Float64() < g.c.NewAttrShare {
			if err := flush(); err != nil {
				return err
			}
			set = g.newSet(rng, i, v6)
			set.Prefixes = []netip.Prefix{pf}
			// An MP_REACH_NLRI past 255 bytes takes the extended length:
			// count its extra byte from the start.
			size = len(AppendUpdate(g.buf[:0], &set)) + 1
			add(pf)
			continue
		}
		l := 1 + (pf.Bits()+7)/8
		if size+l > MaxUpdate {
			if err := flush(); err != nil {
				return err
			}
			set.Prefixes = []netip.Prefix{pf}
			size = len(AppendUpdate(g.buf[:0], &set)) + 1
			add(pf)
			continue
		}
		size += l
		add(pf)
	}
	if err := flush(); err != nil {
		return err
	}
	afi := uint16(1)
	if v6 {
		afi = 2
	}
	g.buf = AppendEndOfRIBFamily(g.buf[:0], &p, afi, 1)
	return g.emit()
}

var (
	v4Lens = []int{16, 18, 19, 20, 21, 22, 22, 23, 23, 24, 24, 24, 24, 24, 24, 24}
	v6Lens = []int{29, 32, 32, 36, 40, 44, 48, 48, 48, 48, 48, 48}
)

// prefix draws a global unicast prefix of a realistic length that the
// peer has not announced yet.
func (g *tableGen) prefix(rng *rand.Rand, v6 bool) netip.Prefix {
	for {
		var pf netip.Prefix
		if v6 {
			var a [16]byte
			a[0], a[1] = 0x20, 0x01+byte(rng.IntN(14))
			binary.BigEndian.PutUint64(a[2:10], rng.Uint64())
			pf, _ = netip.AddrFrom16(a).Prefix(v6Lens[rng.IntN(len(v6Lens))])
		} else {
			a := [4]byte{byte(1 + rng.IntN(222)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))}
			if a[0] == 10 || a[0] == 127 {
				continue
			}
			pf, _ = netip.AddrFrom4(a).Prefix(v4Lens[rng.IntN(len(v4Lens))])
		}
		if _, dup := g.seen[pf]; !dup {
			g.seen[pf] = struct{}{}
			return pf
		}
	}
}

// newSet draws an attribute set no earlier route has: its aggregator's
// address is the set's serial number.
func (g *tableGen) newSet(rng *rand.Rand, peer int, v6 bool) Route {
	g.serial++
	hops := 2 + rng.IntN(7)
	path := make([]uint32, 0, hops)
	path = append(path, peerAS(peer))
	for h := 1; h < hops-1; h++ {
		path = append(path, transitAS(rng))
	}
	// Origins are skewed: a few originate many sets.
	origin := uint32(70000 * rng.Float64() * rng.Float64())
	if origin%5 == 0 {
		origin = 4200000000 + origin
	} else {
		origin = 1 + origin%64000
	}
	path = append(path, origin)
	r := Route{ASPath: path, AggregatorAS: origin}
	var agg [4]byte
	binary.BigEndian.PutUint32(agg[:], 0x0a000000+g.serial)
	r.Aggregator = netip.AddrFrom4(agg)
	switch x := rng.IntN(20); {
	case x == 0:
		r.Origin = 2 // INCOMPLETE
	case x == 1:
		r.Origin = 1 // EGP
	}
	r.NextHop = peerAddr(peer)
	if v6 {
		r.NextHop = peerNextHop6(peer)
	}
	med := uint32(rng.IntN(1 << 20))
	r.MED = &med
	lp := uint32(50 + rng.IntN(200))
	r.LocalPref = &lp
	for c := rng.IntN(7); c > 0; c-- {
		r.Communities = append(r.Communities, uint32(uint16(peerAS(peer)))<<16|uint32(rng.IntN(65536)))
	}
	if rng.IntN(10) == 0 {
		r.Large = [][3]uint32{{peerAS(peer), uint32(rng.IntN(1000)), uint32(rng.IntN(1000))}}
	}
	return r
}

func transitAS(rng *rand.Rand) uint32 {
	if rng.IntN(5) == 0 {
		return 4200000000 + uint32(rng.IntN(100000))
	}
	return 1 + uint32(rng.IntN(64000))
}
