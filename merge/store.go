package merge

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/meshd/meshd/change"
)

// leaf is one value held. It keeps neither its key nor its path (a path
// is a tree of protobuf messages ten times the key's size, and is only
// needed again for a delete or a snapshot, which parse the key back with
// KeyPath); the key is in the leafStore. Its value is read from the Go
// field that holds it, or held here when no field holds it as sent (see
// value.go): 24 bytes a leaf.
type leaf struct {
	ts  int64          // see stamp
	ref unsafe.Pointer // field mode: the Go field; value mode: see setValue
	// lo and hi are 48 bits: a field-mode leaf's enumeration index, a
	// value-mode leaf's number (if it fits) or string length.
	lo  uint32
	hi  uint16
	k   uint8 // the fieldKind (field mode), or the valueKind << 4
	src change.Source
}

// stamp is a time as Unix nanoseconds, a third of a time.Time's size;
// the zero time has its own value.
func stamp(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.UnixNano()
}

func (l *leaf) time() time.Time {
	if l.ts == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, l.ts)
}

// leafStore holds one router's leaves in two levels: by the part of the
// key up to its last list entry (a neighbor, an AFI-SAFI of a neighbor),
// then by the rest. A flat map would hold a 150-250 byte key per leaf,
// nearly all of it the same neighbor prefix; here the prefix is held once
// per entry and the rest ("/state/session-state") once per core. A group
// is two sorted slices, not a map: a neighbor has tens of leaves, which a
// binary search finds as fast as a hash, in half the memory.
//
// Nor is a group's prefix held whole: it is the prefix of the group of
// the list entry above it, if there is one (a neighbor's, for its
// AFI-SAFI's), then the part up to the entry's keys, shared by every
// entry of the list ("/afi-safis/afi-safi"), then the entry's keys
// ("[neighbor-address=10.1.0.1]"). Groups are found by their prefix's
// hash; each a neighbor holds cost 96 bytes and its keys instead of a
// 100-190 byte string each.
type leafStore struct {
	groups map[uint64]*leafGroup // by prefixHash
	// spill holds, by prefix, the groups whose prefix hashes the same as
	// another group's: none, but for a 64-bit collision.
	spill map[string]*leafGroup
	// last is the group of the key get was last given (nil if none): the
	// next key, if it shares that group's prefix, is in it too.
	last   *leafGroup
	n      int
	buf    []byte        // a prefix is built here (eachUnder)
	intern *interner     // the core's, shared by its routers
	total  *atomic.Int64 // the core's count of leaves in all routers
}

type leafGroup struct {
	// The prefix is parent's prefix (none if parent is nil), mid, then key.
	parent *leafGroup
	mid    string   // interned while the interner has room
	key    string   // the last list entry's keys, likewise
	plen   int      // the prefix's length
	rests  []string // sorted; shared with other groups (see shape): never changed in place
	leaves []leaf   // leaves[i] is the leaf at prefix+rests[i]
}

var prefixSeed = maphash.MakeSeed()

func prefixHash(p []byte) uint64 { return maphash.Bytes(prefixSeed, p) }

// view is s as bytes, without a copy, for reading only.
func view(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// is reports whether the group's prefix is p.
func (g *leafGroup) is(p []byte) bool {
	if g == nil || g.plen != len(p) {
		return false
	}
	for ; g != nil; g = g.parent {
		n := len(p) - len(g.key)
		if n < 0 || string(p[n:]) != g.key {
			return false
		}
		p = p[:n]
		n = len(p) - len(g.mid)
		if n < 0 || string(p[n:]) != g.mid {
			return false
		}
		p = p[:n]
	}
	return len(p) == 0
}

// appendPrefix appends the group's prefix to dst.
func (g *leafGroup) appendPrefix(dst []byte) []byte {
	if g.parent != nil {
		dst = g.parent.appendPrefix(dst)
	}
	return append(append(dst, g.mid...), g.key...)
}

// agrees reports whether p and the group's prefix are the same as far
// as the shorter of them goes, without building the prefix; rest is what
// of p is past the prefix.
func (g *leafGroup) agrees(p []byte) (rest []byte, ok bool) {
	if g.parent != nil {
		if p, ok = g.parent.agrees(p); !ok {
			return nil, false
		}
	}
	for _, part := range [2]string{g.mid, g.key} {
		n := min(len(p), len(part))
		if string(p[:n]) != part[:n] {
			return nil, false
		}
		p = p[n:]
	}
	return p, true
}

// group returns the group whose prefix is p, or nil.
func (s *leafStore) group(p []byte) *leafGroup {
	if g := s.groups[prefixHash(p)]; g.is(p) {
		return g
	}
	if len(s.spill) > 0 {
		return s.spill[string(p)]
	}
	return nil
}

// lastEntry returns where a prefix's last list entry's keys begin
// (keys, at its last run of "[k=v]"s) and where the entry before it ends
// (prev, 0 if none). A ']' escaped in a key value does not end the key.
func lastEntry(p []byte) (prev, keys int) {
	inKey, closed := false, -1 // closed: just past the last key's ']'
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case inKey && c == '\\':
			i++
		case inKey && c == ']':
			inKey, closed = false, i+1
		case inKey:
		case c == '[':
			inKey = true
			if closed != i { // not the next key of the same entry
				prev, keys = max(closed, 0), i
			}
		}
	}
	return prev, keys
}

// newGroup makes the group for prefix p and adds it.
func (s *leafStore) newGroup(p []byte) *leafGroup {
	g := &leafGroup{plen: len(p)}
	prev, keys := lastEntry(p)
	from := 0
	if prev > 0 {
		if g.parent = s.group(p[:prev]); g.parent != nil {
			from = prev
		}
	}
	g.mid = s.intern.part(p[from:keys])
	g.key = s.intern.part(p[keys:])
	if n := s.intern.sizeHint(p); n > 0 {
		g.leaves = make([]leaf, 0, n)
	}
	if h := prefixHash(p); s.groups[h] == nil {
		s.groups[h] = g
	} else {
		if s.spill == nil {
			s.spill = map[string]*leafGroup{}
		}
		s.spill[string(p)] = g
	}
	return g
}

// dropGroup removes an emptied group whose prefix is p.
func (s *leafStore) dropGroup(g *leafGroup, p string) {
	if h := prefixHash(view(p)); s.groups[h] == g {
		delete(s.groups, h)
	} else {
		delete(s.spill, p)
	}
	if s.last == g {
		s.last = nil
	}
	// A group below may still name it as its parent, for its prefix:
	// keep only that.
	g.rests, g.leaves = nil, nil
}

// interner holds one copy of each distinct leaf key end, and of each
// distinct set of them a group holds.
type interner struct {
	mu     sync.Mutex
	m      map[string]string
	parts  map[string]string // of group prefixes, up to maxShapes
	shapes map[string][]string
	buf    []byte
	// sizes is, by group kind (a prefix without its key values), the
	// room the biggest group of the kind needed: a new group starts with
	// it, instead of growing a few leaves at a time through the sync and
	// leaving each smaller slice behind as garbage.
	sizes map[string]int
}

// maxShapes bounds the sets of rests shared. Groups of a kind fill in the
// same order as their router sends them, so a fleet has tens of shapes;
// past the bound (a source sending each neighbor's leaves in a new order)
// groups keep their own.
const maxShapes = 1 << 14

func (in *interner) get(b []byte) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	s, ok := in.m[string(b)]
	if !ok {
		s = string(b)
		in.m[s] = s
	}
	return s
}

// part returns the shared copy of a part of a group prefix, or a copy of
// its own once maxShapes parts are held (a fleet's neighbor keys, past
// the first few thousand).
func (in *interner) part(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if s, ok := in.parts[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(in.parts) < maxShapes {
		if in.parts == nil {
			in.parts = map[string]string{}
		}
		in.parts[s] = s
	}
	return s
}

// shape returns the one shared copy of the sorted set of rests that old
// is with rest inserted at j (insert) or with old[j] removed. Groups of a
// kind hold the same set (every neighbor has the same state leaves), so
// sharing it saves a string header a leaf: 16 bytes of the ~60 a leaf
// costs in the store.
func (in *interner) shape(old []string, j int, rest string, insert bool) []string {
	n := len(old) - 1
	if insert {
		n = len(old) + 1
	}
	// at is the new set's i-th rest, read from old: the set is only made
	// when its shape is not held yet.
	at := func(i int) string {
		switch {
		case i < j:
			return old[i]
		case insert && i == j:
			return rest
		case insert:
			return old[i-1]
		}
		return old[i+1]
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	b := in.buf[:0]
	for i := 0; i < n; i++ {
		r := at(i)
		b = binary.AppendUvarint(b, uint64(len(r)))
		b = append(b, r...)
	}
	in.buf = b
	if sh, ok := in.shapes[string(b)]; ok {
		return sh
	}
	rests := make([]string, n)
	for i := range rests {
		rests[i] = at(i)
	}
	if len(in.shapes) >= maxShapes {
		return rests
	}
	if in.shapes == nil {
		in.shapes = map[string][]string{}
	}
	in.shapes[string(b)] = rests
	return rests
}

// kindOf appends prefix without its key values ("/a[k=1]/b[j=x\\]]" is
// "/a[]/b[]") to dst.
func kindOf[T string | []byte](dst []byte, prefix T) []byte {
	inKey := false
	for i := 0; i < len(prefix); i++ {
		switch c := prefix[i]; {
		case inKey && c == '\\':
			i++
		case inKey && c == ']':
			inKey = false
			dst = append(dst, '[', ']')
		case inKey:
		case c == '[':
			inKey = true
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// sizeHint returns the room a new group of prefix's kind starts with.
func (in *interner) sizeHint(prefix []byte) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.buf = kindOf(in.buf[:0], prefix)
	return in.sizes[string(in.buf)]
}

// grew records that a group of prefix's kind needed room for n leaves.
func (in *interner) grew(prefix []byte, n int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.buf = kindOf(in.buf[:0], prefix)
	if n > in.sizes[string(in.buf)] && (len(in.sizes) < maxShapes || in.sizes[string(in.buf)] > 0) {
		if in.sizes == nil {
			in.sizes = map[string]int{}
		}
		in.sizes[string(in.buf)] = n
	}
}

func newLeafStore(intern *interner, total *atomic.Int64) *leafStore {
	return &leafStore{groups: map[uint64]*leafGroup{}, intern: intern, total: total}
}

// splitKey returns where a key's rest begins: after its last ']', which
// always closes a list key (an escaped ']' in a key value is followed by
// the one that closes it).
func splitKey(key []byte) int { return bytes.LastIndexByte(key, ']') + 1 }

func (g *leafGroup) find(rest string) (int, bool) { return slices.BinarySearch(g.rests, rest) }

// get looks a leaf up without allocating (the conversions are in a map
// index and in comparisons, which the compiler does without a copy). The
// pointer is good until the next put or del on the store. The key's first
// shared bytes are those of the key get was last given.
func (s *leafStore) get(key []byte, shared int) *leaf {
	i := splitKey(key)
	g := s.last
	if g == nil || g.plen != i || i > shared {
		g = s.group(key[:i])
		s.last = g
	}
	if g == nil {
		return nil
	}
	rest := key[i:]
	lo, hi := 0, len(g.rests)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if g.rests[m] < string(rest) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(g.rests) && g.rests[lo] == string(rest) {
		return &g.leaves[lo]
	}
	return nil
}

func (s *leafStore) getString(key string) *leaf {
	i := strings.LastIndexByte(key, ']') + 1
	return s.inGroup(key[:i], key[i:])
}

// inGroup looks a leaf up by its group's prefix and the rest of its key.
func (s *leafStore) inGroup(prefix, rest string) *leaf {
	return s.group(view(prefix)).leaf(rest)
}

// inGroupBytes is inGroup with the prefix in a buffer.
func (s *leafStore) inGroupBytes(prefix []byte, rest string) *leaf {
	return s.group(prefix).leaf(rest)
}

// leaf returns the group's leaf at rest, or nil; a nil group has none.
func (g *leafGroup) leaf(rest string) *leaf {
	if g == nil {
		return nil
	}
	if j, ok := g.find(rest); ok {
		return &g.leaves[j]
	}
	return nil
}

// put adds a leaf that is not there yet and returns where it is held.
func (s *leafStore) put(key []byte, l leaf) *leaf {
	i := splitKey(key)
	g := s.group(key[:i])
	if g == nil {
		g = s.newGroup(key[:i])
	}
	s.last = g
	rest := s.intern.get(key[i:])
	j, _ := g.find(rest)
	g.rests = s.intern.shape(g.rests, j, rest, true)
	if len(g.leaves) == cap(g.leaves) {
		// Grow by a few, not by doubling (as append and slices.Grow do):
		// groups stop growing once a neighbor has synced, and doubling
		// would leave up to half of every group unused.
		leaves := make([]leaf, len(g.leaves), len(g.leaves)+2)
		copy(leaves, g.leaves)
		g.leaves = leaves
		s.intern.grew(key[:i], cap(leaves))
	}
	g.leaves = slices.Insert(g.leaves, j, l)
	s.n++
	s.total.Add(1)
	return &g.leaves[j]
}

// del removes a leaf by its full key.
func (s *leafStore) del(key string) {
	i := strings.LastIndexByte(key, ']') + 1
	g := s.group(view(key[:i]))
	if g == nil {
		return
	}
	j, ok := g.find(key[i:])
	if !ok {
		return
	}
	g.rests = s.intern.shape(g.rests, j, "", false)
	g.leaves = slices.Delete(g.leaves, j, j+1)
	s.n--
	s.total.Add(-1)
	if len(g.leaves) == 0 {
		s.dropGroup(g, key[:i])
	}
}

// eachUnder calls fn for every leaf whose key is key or below it ("/" is
// everything), skipping whole groups that cannot match; fn must not put
// or delete.
func (s *leafStore) eachUnder(key string, fn func(key string, l *leaf)) {
	all, below := key == "/", key+"/"
	each := func(g *leafGroup) {
		// A group can hold matches only if its prefix and key agree as far
		// as the shorter of the two goes.
		if _, ok := g.agrees(view(key)); !all && !ok {
			return
		}
		s.buf = g.appendPrefix(s.buf[:0])
		prefix := s.buf
		for j := range g.leaves {
			k := string(prefix) + g.rests[j]
			if all || k == key || strings.HasPrefix(k, below) {
				fn(k, &g.leaves[j])
			}
		}
	}
	for _, g := range s.groups {
		each(g)
	}
	for _, g := range s.spill {
		each(g)
	}
}
