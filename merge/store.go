package merge

import (
	"bytes"
	"strings"
	"sync"
)

// leafStore holds one router's leaves in two levels: by the part of the
// key up to its last list entry (a neighbor, an AFI-SAFI of a neighbor),
// then by the rest. A flat map would hold a 150-250 byte key per leaf,
// nearly all of it the same neighbor prefix; here the prefix is held once
// per entry and the rest ("/state/session-state") once per core.
type leafStore struct {
	groups map[string]*leafGroup
	n      int
	intern *interner // the core's, shared by its routers
}

// interner holds one copy of each distinct leaf key end.
type interner struct {
	mu sync.Mutex
	m  map[string]string
}

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

type leafGroup struct {
	prefix string
	leaves map[string]*leaf
}

func newLeafStore(intern *interner) *leafStore {
	return &leafStore{groups: map[string]*leafGroup{}, intern: intern}
}

// splitKey returns where a key's rest begins: after its last ']', which
// always closes a list key (an escaped ']' in a key value is followed by
// the one that closes it).
func splitKey(key []byte) int { return bytes.LastIndexByte(key, ']') + 1 }

// get looks a leaf up without allocating.
func (s *leafStore) get(key []byte) *leaf {
	i := splitKey(key)
	g := s.groups[string(key[:i])]
	if g == nil {
		return nil
	}
	return g.leaves[string(key[i:])]
}

func (s *leafStore) getString(key string) *leaf {
	i := strings.LastIndexByte(key, ']') + 1
	g := s.groups[key[:i]]
	if g == nil {
		return nil
	}
	return g.leaves[key[i:]]
}

// inGroup looks a leaf up by its group's prefix and the rest of its key.
func (s *leafStore) inGroup(prefix, rest string) *leaf {
	g := s.groups[prefix]
	if g == nil {
		return nil
	}
	return g.leaves[rest]
}

// put adds a leaf that is not there yet.
func (s *leafStore) put(key []byte, l *leaf) {
	i := splitKey(key)
	g := s.groups[string(key[:i])]
	if g == nil {
		g = &leafGroup{prefix: string(key[:i]), leaves: make(map[string]*leaf, 4)}
		s.groups[g.prefix] = g
	}
	g.leaves[s.intern.get(key[i:])] = l
	s.n++
}

// del removes a leaf by its full key.
func (s *leafStore) del(key string) {
	i := strings.LastIndexByte(key, ']') + 1
	g := s.groups[key[:i]]
	if g == nil {
		return
	}
	if _, ok := g.leaves[key[i:]]; !ok {
		return
	}
	delete(g.leaves, key[i:])
	s.n--
	if len(g.leaves) == 0 {
		delete(s.groups, key[:i])
	}
}

// each calls fn for every leaf with its full key, built for the call.
func (s *leafStore) each(fn func(key string, l *leaf)) {
	for _, g := range s.groups {
		for rest, l := range g.leaves {
			fn(g.prefix+rest, l)
		}
	}
}

// eachUnder calls fn for every leaf whose key is key or below it ("/" is
// everything), skipping whole groups that cannot match.
func (s *leafStore) eachUnder(key string, fn func(key string, l *leaf)) {
	all := key == "/"
	for _, g := range s.groups {
		// A group can hold matches only if its prefix and key agree as far
		// as the shorter of the two goes.
		if !all && !strings.HasPrefix(g.prefix, key) && !strings.HasPrefix(key, g.prefix) {
			continue
		}
		for rest, l := range g.leaves {
			k := g.prefix + rest
			if all || k == key || strings.HasPrefix(k, key+"/") {
				fn(k, l)
			}
		}
	}
}
