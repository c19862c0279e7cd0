package merge

import (
	"bytes"
	"encoding/binary"
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
type leafStore struct {
	groups map[string]*leafGroup
	// last is the group of the key get was last given (nil if none): the
	// next key, if it shares that group's prefix, is in it too.
	last   *leafGroup
	n      int
	intern *interner     // the core's, shared by its routers
	total  *atomic.Int64 // the core's count of leaves in all routers
}

type leafGroup struct {
	prefix string
	rests  []string // sorted; shared with other groups (see shape): never changed in place
	leaves []leaf   // leaves[i] is the leaf at prefix+rests[i]
}

// interner holds one copy of each distinct leaf key end, and of each
// distinct set of them a group holds.
type interner struct {
	mu     sync.Mutex
	m      map[string]string
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
func (in *interner) grew(prefix string, n int) {
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
	return &leafStore{groups: map[string]*leafGroup{}, intern: intern, total: total}
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
	if g == nil || len(g.prefix) != i || i > shared {
		g = s.groups[string(key[:i])]
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
	return s.groups[prefix].leaf(rest)
}

// inGroupBytes is inGroup with the prefix in a buffer.
func (s *leafStore) inGroupBytes(prefix []byte, rest string) *leaf {
	return s.groups[string(prefix)].leaf(rest)
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
	g := s.groups[string(key[:i])]
	if g == nil {
		g = &leafGroup{prefix: string(key[:i])}
		if n := s.intern.sizeHint(key[:i]); n > 0 {
			g.leaves = make([]leaf, 0, n)
		}
		s.groups[g.prefix] = g
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
		s.intern.grew(g.prefix, cap(leaves))
	}
	g.leaves = slices.Insert(g.leaves, j, l)
	s.n++
	s.total.Add(1)
	return &g.leaves[j]
}

// del removes a leaf by its full key.
func (s *leafStore) del(key string) {
	i := strings.LastIndexByte(key, ']') + 1
	g := s.groups[key[:i]]
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
		delete(s.groups, key[:i])
		if s.last == g {
			s.last = nil
		}
	}
}

// eachUnder calls fn for every leaf whose key is key or below it ("/" is
// everything), skipping whole groups that cannot match; fn must not put
// or delete.
func (s *leafStore) eachUnder(key string, fn func(key string, l *leaf)) {
	all := key == "/"
	for _, g := range s.groups {
		// A group can hold matches only if its prefix and key agree as far
		// as the shorter of the two goes.
		if !all && !strings.HasPrefix(g.prefix, key) && !strings.HasPrefix(key, g.prefix) {
			continue
		}
		for j := range g.leaves {
			k := g.prefix + g.rests[j]
			if all || k == key || strings.HasPrefix(k, key+"/") {
				fn(k, &g.leaves[j])
			}
		}
	}
}
