// Package rib keeps the routes of one BMP-monitored router in memory,
// compactly (interned attribute sets, fixed-size prefix keys), so route
// counts are exact and re-sent routes are recognised as duplicates.
package rib

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/meshd/meshd/bmpbridge/decode"
)

// Interner holds each distinct attribute set once, reference counted,
// as its key bytes (decode.Attrs.Key: the raw attributes) in an arena of
// pointer-free chunks; the decoded set (strings for the route events) is
// kept only in a small cache and read back from the key when needed
// (decode.KeyReader). Sets the fast reader cannot read back are kept
// decoded (pinned). Its index is an open-addressing table of key hashes,
// so a new set costs no Go map insert and a freed one no map delete.
//
// Why: a full table where most routes carry their own attribute set held
// the decoded sets (Attrs, strings, a map entry keyed by a string) at 801
// bytes of heap per route (bench/bmpreplay -new-attr-share 1.0), against
// meshd's aim of 300; see the package report for the figures after.
//
// It is not safe for concurrent use; one router's session owns it.
type Interner struct {
	recs   []rec // by ID; 0 is "no attributes"
	free   []uint32
	index  []uint64 // hash<<32 | ID, 0 empty; a power of two long
	n      int      // live sets
	chunks [][]byte
	live   int // arena bytes of live sets
	dead   int // arena bytes of freed sets
	pinned map[uint32]*decode.Attrs
	cache  [cacheSize]*decode.Attrs // by ID&(cacheSize-1), valid while Slot is the ID
	rd     decode.KeyReader
	seed   maphash.Seed
}

type rec struct {
	hash uint32 // high bits of the key's hash
	off  uint32 // chunk<<chunkBits | offset; pinnedOff for a pinned set
	n    uint32 // key length
	refs uint32
}

// compactMin is the freed arena bytes below which the arena is never
// rewritten; a variable for tests.
var compactMin = 4 * chunkSize

const (
	chunkBits = 20
	chunkSize = 1 << chunkBits
	cacheSize = 1 << 12
	pinnedOff = ^uint32(0) // no arena offset: the last byte of a 4 GiB arena
)

// NewInterner returns an empty interner.
func NewInterner() *Interner {
	return &Interner{recs: []rec{{}}, index: make([]uint64, 1024), pinned: map[uint32]*decode.Attrs{}, seed: maphash.MakeSeed()}
}

func (in *Interner) hash(key string) uint32 {
	h := uint32(maphash.String(in.seed, key) >> 32)
	if h == 0 {
		h = 1 // 0 marks an empty index entry
	}
	return h
}

// key returns the key bytes of a live set that is not pinned.
func (in *Interner) key(id uint32) []byte {
	r := &in.recs[id]
	c := in.chunks[r.off>>chunkBits]
	o := r.off & (chunkSize - 1)
	return c[o : o+r.n]
}

// sameKey tells whether live set id has key k.
func (in *Interner) sameKey(id uint32, k string) bool {
	if in.recs[id].off == pinnedOff {
		return in.pinned[id].Key == k
	}
	return in.recs[id].n == uint32(len(k)) && string(in.key(id)) == k
}

// find returns the ID of the live set with key k, or 0.
func (in *Interner) find(k string, h uint32) uint32 {
	mask := uint64(len(in.index) - 1)
	for i := uint64(h) & mask; ; i = (i + 1) & mask {
		e := in.index[i]
		if e == 0 {
			return 0
		}
		if uint32(e>>32) == h && in.sameKey(uint32(e), k) {
			return uint32(e)
		}
	}
}

func (in *Interner) insertIndex(h, id uint32) {
	mask := uint64(len(in.index) - 1)
	i := uint64(h) & mask
	for in.index[i] != 0 {
		i = (i + 1) & mask
	}
	in.index[i] = uint64(h)<<32 | uint64(id)
}

// removeIndex deletes id's entry, shifting later entries of its probe
// run back (linear probing needs no tombstones).
func (in *Interner) removeIndex(h, id uint32) {
	mask := uint64(len(in.index) - 1)
	i := uint64(h) & mask
	for uint32(in.index[i]) != id {
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; in.index[j] != 0; j = (j + 1) & mask {
		home := (in.index[j] >> 32) & mask
		// Move j into the hole at i unless its home lies in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			in.index[i] = in.index[j]
			i = j
		}
	}
	in.index[i] = 0
}

func (in *Interner) grow() {
	old := in.index
	in.index = make([]uint64, 2*len(old))
	for _, e := range old {
		if e != 0 {
			in.insertIndex(uint32(e>>32), uint32(e))
		}
	}
}

// store copies a key into the arena and returns its offset.
func (in *Interner) store(k string) uint32 {
	n := len(in.chunks)
	if n == 0 || len(in.chunks[n-1])+len(k) > chunkSize {
		in.chunks = append(in.chunks, make([]byte, 0, chunkSize))
		n++
	}
	c := in.chunks[n-1]
	off := uint32(n-1)<<chunkBits | uint32(len(c))
	in.chunks[n-1] = append(c, k...)
	in.live += len(k)
	return off
}

// compact rewrites the live keys into fresh chunks once freed ones take
// more room than they do.
func (in *Interner) compact() {
	old := in.chunks
	in.chunks, in.live, in.dead = nil, 0, 0
	for id := 1; id < len(in.recs); id++ {
		r := &in.recs[id]
		if r.refs == 0 {
			continue
		}
		if r.off == pinnedOff {
			continue
		}
		c := old[r.off>>chunkBits]
		o := r.off & (chunkSize - 1)
		r.off = in.store(string(c[o : o+r.n]))
	}
}

// Lookup returns the interned attribute set with this key, if any; the
// decoder uses it to skip decoding attributes it has seen.
func (in *Interner) Lookup(key []byte) *decode.Attrs {
	if id := in.find(string(key), in.hash(string(key))); id != 0 {
		return in.get(id)
	}
	return nil
}

// Len returns the number of distinct attribute sets held.
func (in *Interner) Len() int { return in.n }

// ArenaBytes returns the bytes the arena's chunks take, for tests and
// benchmarks.
func (in *Interner) ArenaBytes() int { return len(in.chunks) * chunkSize }

// get returns the attribute set of a live ID, reading it back from its
// key unless the cache or the pinned sets have it.
func (in *Interner) get(id uint32) *decode.Attrs {
	if id == 0 {
		return nil
	}
	if a := in.cache[id&(cacheSize-1)]; a != nil && a.Slot == id {
		return a
	}
	if in.recs[id].off == pinnedOff {
		return in.pinned[id]
	}
	a := in.rd.Read(in.key(id))
	if a != nil {
		a.Slot = id
		in.cache[id&(cacheSize-1)] = a
	}
	return a
}

func (in *Interner) ref(a *decode.Attrs) uint32 {
	if a == nil {
		return 0
	}
	// The decoder hands the same *Attrs for every route of a set, so the
	// slot it carries saves hashing the key on nearly every route.
	if id := a.Slot; id != 0 && int(id) < len(in.recs) && in.recs[id].refs > 0 && in.sameKey(id, a.Key) {
		in.recs[id].refs++
		return id
	}
	h := in.hash(a.Key)
	if id := in.find(a.Key, h); id != 0 {
		in.recs[id].refs++
		a.Slot = id
		return id
	}
	var id uint32
	if n := len(in.free); n > 0 {
		id = in.free[n-1]
		in.free = in.free[:n-1]
	} else {
		// IDs share a map value with a route's State (Table): 2^30 live
		// sets would take far more memory than max-routes-per-router
		// allows, so the bound is never reached by a router's input.
		id = uint32(len(in.recs))
		if id > idMask {
			panic("rib: more than 2^30 attribute sets")
		}
		in.recs = append(in.recs, rec{})
	}
	r := rec{hash: h, n: uint32(len(a.Key)), refs: 1}
	if a.FromKey() && len(a.Key) <= chunkSize {
		r.off = in.store(a.Key)
	} else {
		r.off = pinnedOff
		in.pinned[id] = a
	}
	in.recs[id] = r
	in.n++
	if in.n*10 >= len(in.index)*7 {
		in.grow()
	}
	in.insertIndex(h, id)
	a.Slot = id
	in.cache[id&(cacheSize-1)] = a
	return id
}

func (in *Interner) unref(id uint32) {
	if id == 0 {
		return
	}
	r := &in.recs[id]
	r.refs--
	if r.refs > 0 {
		return
	}
	in.removeIndex(r.hash, id)
	if c := in.cache[id&(cacheSize-1)]; c != nil && c.Slot == id {
		in.cache[id&(cacheSize-1)] = nil
	}
	if r.off == pinnedOff {
		delete(in.pinned, id)
	} else {
		in.live -= int(r.n)
		in.dead += int(r.n)
	}
	*r = rec{}
	in.n--
	in.free = append(in.free, id)
	if in.dead > compactMin && in.dead > in.live {
		in.compact()
	}
}

// same tells whether live set cur (0 for none) is a.
func (in *Interner) same(cur uint32, a *decode.Attrs) bool {
	if cur == 0 || a == nil {
		return cur == 0 && a == nil
	}
	if a.Slot == cur && in.cache[cur&(cacheSize-1)] == a {
		return true // the set the slot was made for
	}
	return in.sameKey(cur, a.Key)
}

// ipKey is a compact, pointer-free key for IP (and labeled) unicast
// routes, so a million-route map costs the garbage collector nothing.
type ipKey struct {
	hi, lo uint64
	id     uint32
	bits   uint8
	fam    uint8
}

// v4Key is ipKey for IPv4 unicast, most of a full table: half the map
// slot (16 bytes with the value, against 32), so a 1M-route table takes
// 30 bytes a route less and its map grows with half the copying.
type v4Key struct {
	addr, id uint32
	bits     uint8
}

type strKey struct {
	s   string
	id  uint32
	fam bgp.Family // so Each can name the route's family
}

// family indexes for IP-keyed families.
const (
	famV4 = iota
	famV6
	famV4L
	famV6L
	numIPFams
)

func ipFam(f bgp.Family) (uint8, bool) {
	switch f {
	case bgp.RF_IPv4_UC:
		return famV4, true
	case bgp.RF_IPv6_UC:
		return famV6, true
	case bgp.RF_IPv4_MPLS:
		return famV4L, true
	case bgp.RF_IPv6_MPLS:
		return famV6L, true
	}
	return 0, false
}

// IPRoute tells whether the table keeps a State for the route: IPv4 and
// IPv6 unicast and labeled unicast.
func IPRoute(n *decode.NLRI) bool {
	_, ok := ipFam(n.Family)
	return ok && n.IP.IsValid()
}

// Outcome says what a route did to a table.
type Outcome uint8

// Outcomes of Table.Announce and Table.Withdraw.
const (
	Added     Outcome = iota + 1 // a new route
	Changed                      // the route's attributes changed
	Duplicate                    // identical to what the table holds
	Removed                      // a withdraw removed a route
	Missing                      // a withdraw of a route the table does not hold
)

// Table holds the routes of one peer in one RIB view.
type Table struct {
	in    *Interner
	v4    map[v4Key]uint32
	ip    map[ipKey]uint32 // IP families but IPv4 unicast
	other map[strKey]uint32
	// lens counts routes per prefix length per IP family, so the search
	// for a covering prefix only probes lengths that exist.
	lens    [numIPFams][129]uint32
	ipCount [numIPFams]uint64
	count   map[bgp.Family]uint64 // other families
	ipSeen  uint8                 // IP families that ever had a route
	// states counts the IP routes by State.
	states [numStates]uint64
	// withPathID counts IP routes held under an ADD-PATH path ID: while
	// any is, a search inside a prefix cannot list candidate keys and
	// walks the table instead.
	withPathID uint64
}

// State is a 2-bit tag the table keeps per IP route for its owner: the
// bridge keeps a route's RPKI origin validation state in it. It is held
// in the top bits of the attribute set's ID, so it costs no memory.
type State uint8

const (
	numStates  = 4
	stateShift = 30
	idMask     = 1<<stateShift - 1
)

// split splits a map value into the attribute set's ID and the state.
func split(v uint32) (id uint32, st State) { return v & idMask, State(v >> stateShift) }

func join(id uint32, st State) uint32 { return id | uint32(st)<<stateShift }

var ipFamilies = [numIPFams]bgp.Family{bgp.RF_IPv4_UC, bgp.RF_IPv6_UC, bgp.RF_IPv4_MPLS, bgp.RF_IPv6_MPLS}

// NewTable returns an empty table interning attributes in in.
func NewTable(in *Interner) *Table {
	return &Table{in: in, v4: map[v4Key]uint32{}, ip: map[ipKey]uint32{}, other: map[strKey]uint32{}, count: map[bgp.Family]uint64{}}
}

func keyOf(fam uint8, p netip.Prefix, id uint32) ipKey {
	a := p.Addr().As16()
	return ipKey{hi: binary.BigEndian.Uint64(a[:8]), lo: binary.BigEndian.Uint64(a[8:]), id: id, bits: uint8(p.Bits()), fam: fam}
}

func v4KeyOf(p netip.Prefix, id uint32) v4Key {
	a := p.Addr().As4()
	return v4Key{addr: binary.BigEndian.Uint32(a[:]), id: id, bits: uint8(p.Bits())}
}

// lookup finds an IP route's map value (attribute set ID and State).
func (t *Table) lookup(fam uint8, p netip.Prefix, id uint32) (uint32, bool) {
	if fam == famV4 && p.Addr().Is4() {
		cur, ok := t.v4[v4KeyOf(p, id)]
		return cur, ok
	}
	cur, ok := t.ip[keyOf(fam, p, id)]
	return cur, ok
}

// Announce records a route and reports what changed; old is the previous
// attribute set for Changed and Duplicate. A new IP route's State is 0;
// a changed one keeps its State until SetState.
func (t *Table) Announce(n *decode.NLRI, a *decode.Attrs) (o Outcome, old *decode.Attrs) {
	if fam, ok := ipFam(n.Family); ok && n.IP.IsValid() {
		if fam == famV4 && n.IP.Addr().Is4() {
			k := v4KeyOf(n.IP, n.PathID)
			if cur, ok := t.v4[k]; ok {
				return t.replace(cur, a, func(v uint32) { t.v4[k] = v })
			}
			t.v4[k] = t.in.ref(a)
			t.added(fam, n)
			return Added, nil
		}
		k := keyOf(fam, n.IP, n.PathID)
		if cur, ok := t.ip[k]; ok {
			return t.replace(cur, a, func(v uint32) { t.ip[k] = v })
		}
		t.ip[k] = t.in.ref(a)
		t.added(fam, n)
		return Added, nil
	}
	k := strKey{s: n.Prefix, id: n.PathID, fam: n.Family}
	if cur, ok := t.other[k]; ok {
		return t.replace(cur, a, func(v uint32) { t.other[k] = v })
	}
	t.other[strKey{s: clone(n.Prefix), id: n.PathID, fam: n.Family}] = t.in.ref(a)
	t.count[n.Family]++
	return Added, nil
}

func (t *Table) added(fam uint8, n *decode.NLRI) {
	t.lens[fam][n.IP.Bits()]++
	t.ipCount[fam]++
	t.ipSeen |= 1 << fam
	t.states[0]++
	if n.PathID != 0 {
		t.withPathID++
	}
}

func clone(s string) string { return string([]byte(s)) }

func (t *Table) replace(v uint32, a *decode.Attrs, set func(uint32)) (Outcome, *decode.Attrs) {
	cur, st := split(v)
	if t.in.same(cur, a) {
		if a != nil && a.FromKey() {
			return Duplicate, a // the same set: no need to read it back
		}
		return Duplicate, t.in.get(cur)
	}
	old := t.in.get(cur)
	id := t.in.ref(a)
	t.in.unref(cur)
	set(join(id, st))
	return Changed, old
}

// SetState sets an IP route's State and returns the one it had; ok is
// false when the table does not hold the route (or it is not IP).
func (t *Table) SetState(n *decode.NLRI, st State) (was State, ok bool) {
	fam, isIP := ipFam(n.Family)
	if !isIP || !n.IP.IsValid() {
		return 0, false
	}
	if fam == famV4 && n.IP.Addr().Is4() {
		k := v4KeyOf(n.IP, n.PathID)
		v, ok := t.v4[k]
		if !ok {
			return 0, false
		}
		t.v4[k] = t.restate(v, st)
		return State(v >> stateShift), true
	}
	k := keyOf(fam, n.IP, n.PathID)
	v, ok := t.ip[k]
	if !ok {
		return 0, false
	}
	t.ip[k] = t.restate(v, st)
	return State(v >> stateShift), true
}

func (t *Table) restate(v uint32, st State) uint32 {
	id, was := split(v)
	t.states[was]--
	t.states[st&(numStates-1)]++
	return join(id, st&(numStates-1))
}

// States returns how many IP routes the table holds in each State.
func (t *Table) States() [numStates]uint64 { return t.states }

// Has reports whether the table holds the route.
func (t *Table) Has(n *decode.NLRI) bool {
	if fam, ok := ipFam(n.Family); ok && n.IP.IsValid() {
		_, ok := t.lookup(fam, n.IP, n.PathID)
		return ok
	}
	_, ok := t.other[strKey{s: n.Prefix, id: n.PathID, fam: n.Family}]
	return ok
}

// Withdraw removes a route; old is the attribute set it had and st its
// State.
func (t *Table) Withdraw(n *decode.NLRI) (o Outcome, old *decode.Attrs, st State) {
	if fam, ok := ipFam(n.Family); ok && n.IP.IsValid() {
		v, ok := t.lookup(fam, n.IP, n.PathID)
		if !ok {
			return Missing, nil, 0
		}
		cur, st := split(v)
		old = t.in.get(cur)
		if fam == famV4 && n.IP.Addr().Is4() {
			delete(t.v4, v4KeyOf(n.IP, n.PathID))
		} else {
			delete(t.ip, keyOf(fam, n.IP, n.PathID))
		}
		t.in.unref(cur)
		t.lens[fam][n.IP.Bits()]--
		t.ipCount[fam]--
		t.states[st]--
		if n.PathID != 0 {
			t.withPathID--
		}
		return Removed, old, st
	}
	k := strKey{s: n.Prefix, id: n.PathID, fam: n.Family}
	cur, ok := t.other[k]
	if !ok {
		return Missing, nil, 0
	}
	old = t.in.get(cur)
	delete(t.other, k)
	t.in.unref(cur)
	t.count[n.Family]--
	return Removed, old, 0
}

// LongestCovering finds the longest prefix in the table that covers the
// IP route n, n's own prefix included when orEqual, held under path ID 0
// or any of ids (a table of an ADD-PATH session keys routes by path ID,
// which differ between tables). It appends the attribute sets held for
// that prefix to out and returns its length, or -1 when there is none;
// minBits bounds the search, so a caller that already has a covering
// prefix of length L passes L and finds only as long or longer ones.
func (t *Table) LongestCovering(n *decode.NLRI, ids []uint32, orEqual bool, minBits int, out []*decode.Attrs) (int, []*decode.Attrs) {
	fam, ok := ipFam(n.Family)
	if !ok || !n.IP.IsValid() {
		return -1, out
	}
	top := n.IP.Bits()
	if !orEqual {
		top--
	}
	for l := top; l >= max(minBits, 0); l-- {
		if t.lens[fam][l] == 0 {
			continue
		}
		p, err := n.IP.Addr().Prefix(l)
		if err != nil {
			continue
		}
		found := false
		if v, ok := t.lookup(fam, p, 0); ok {
			out, found = append(out, t.in.get(v&idMask)), true
		}
		for _, pid := range ids {
			if pid == 0 {
				continue
			}
			if v, ok := t.lookup(fam, p, pid); ok {
				out, found = append(out, t.in.get(v&idMask)), true
			}
		}
		if found {
			return l, out
		}
	}
	return -1, out
}

// Len returns the number of routes in the table.
func (t *Table) Len() int { return len(t.v4) + len(t.ip) + len(t.other) }

// Counts returns the routes per family; families that had routes stay
// listed with 0.
func (t *Table) Counts() map[bgp.Family]uint64 {
	out := make(map[bgp.Family]uint64, len(t.count)+numIPFams)
	for f, n := range t.count {
		out[f] = n
	}
	for i, n := range t.ipCount {
		if n > 0 || t.ipSeen&(1<<i) != 0 {
			out[ipFamilies[i]] = n
		}
	}
	return out
}

// Each calls f for every route in the table, in no particular order,
// with the attribute set and State it holds (0 for a route not IP). The
// table must not change meanwhile.
// A Peer Down ends a peer's Adj-RIB-In, so the bridge walks it to write
// each route's withdrawal; without that, a route store that keeps the
// last action per route would show them announced for good.
func (t *Table) Each(f func(n *decode.NLRI, a *decode.Attrs, st State)) {
	var n decode.NLRI
	for k, id := range t.v4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], k.addr)
		n = decode.NLRI{AfiSafi: decode.AfiSafiName(bgp.RF_IPv4_UC), Family: bgp.RF_IPv4_UC, PathID: k.id, IP: netip.PrefixFrom(netip.AddrFrom4(b), int(k.bits))}
		f(&n, t.in.get(id&idMask), State(id>>stateShift))
	}
	for k, id := range t.ip {
		fam := ipFamilies[k.fam]
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], k.hi)
		binary.BigEndian.PutUint64(b[8:], k.lo)
		addr := netip.AddrFrom16(b)
		if fam == bgp.RF_IPv4_UC || fam == bgp.RF_IPv4_MPLS {
			addr = addr.Unmap()
		}
		n = decode.NLRI{AfiSafi: decode.AfiSafiName(fam), Family: fam, PathID: k.id, IP: netip.PrefixFrom(addr, int(k.bits))}
		f(&n, t.in.get(id&idMask), State(id>>stateShift))
	}
	for k, id := range t.other {
		n = decode.NLRI{AfiSafi: decode.AfiSafiName(k.fam), Family: k.fam, Prefix: k.s, PathID: k.id}
		f(&n, t.in.get(id), 0)
	}
}

// Clear drops every route, releasing its attributes.
func (t *Table) Clear() {
	for _, v := range t.v4 {
		t.in.unref(v & idMask)
	}
	for _, v := range t.ip {
		t.in.unref(v & idMask)
	}
	for _, id := range t.other {
		t.in.unref(id)
	}
	clear(t.v4)
	clear(t.ip)
	clear(t.other)
	t.lens = [numIPFams][129]uint32{}
	t.ipCount = [numIPFams]uint64{}
	t.states = [numStates]uint64{}
	t.withPathID = 0
	for f := range t.count {
		t.count[f] = 0
	}
}
