package merge

import (
	"fmt"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

func TestLeafStore(t *testing.T) {
	keys := []string{
		"/meshd/router/state/sys-name",
		"/a[k=1]/state/x",
		"/a[k=1]/state/y",
		"/a[k=1]/b[j=2]/state/x",
		`/a[k=odd\]]/state/x`,
		"/a[k=10]/state/x",
	}
	s := newLeafStore(&interner{m: map[string]string{}}, new(atomic.Int64))
	for i, k := range keys {
		if s.get([]byte(k), 0) != nil {
			t.Fatalf("%s there before put", k)
		}
		s.put([]byte(k), leaf{src: 1, ts: stamp(ts(i))})
	}
	if s.n != len(keys) || s.total.Load() != int64(len(keys)) {
		t.Fatalf("n = %d, total %d, want %d", s.n, s.total.Load(), len(keys))
	}
	for i, k := range keys {
		if l := s.getString(k); l == nil || !l.time().Equal(ts(i)) {
			t.Errorf("getString(%s) = %v", k, l)
		}
	}
	under := func(key string) []string {
		var out []string
		s.eachUnder(key, func(k string, _ *leaf) { out = append(out, k) })
		sort.Strings(out)
		return out
	}
	tests := []struct {
		key  string
		want []string
	}{
		{"/a[k=1]", []string{"/a[k=1]/b[j=2]/state/x", "/a[k=1]/state/x", "/a[k=1]/state/y"}},
		{"/a[k=1]/state", []string{"/a[k=1]/state/x", "/a[k=1]/state/y"}},
		{"/a[k=1]/state/x", []string{"/a[k=1]/state/x"}},
		{`/a[k=odd\]]`, []string{`/a[k=odd\]]/state/x`}},
		{"/meshd", []string{"/meshd/router/state/sys-name"}},
		{"/nothing", nil},
	}
	for _, tt := range tests {
		if got := under(tt.key); !slices.Equal(got, tt.want) {
			t.Errorf("eachUnder(%s) = %v, want %v", tt.key, got, tt.want)
		}
	}
	if got := under("/"); len(got) != len(keys) {
		t.Errorf("eachUnder(/) = %d keys, want %d", len(got), len(keys))
	}
	for _, k := range keys {
		s.del(k)
		s.del(k) // twice: the second is a no-op
	}
	if s.n != 0 || s.total.Load() != 0 || len(s.groups) != 0 {
		t.Errorf("after deleting all: n %d, total %d, groups %d", s.n, s.total.Load(), len(s.groups))
	}
}

func ts(i int) time.Time { return time.Unix(int64(i), 0) }

func TestStamp(t *testing.T) {
	for _, at := range []time.Time{{}, time.Unix(0, 0), time.Unix(1_700_000_000, 123456789), time.Unix(-5, 0)} {
		l := leaf{ts: stamp(at)}
		if got := l.time(); !got.Equal(at) || got.IsZero() != at.IsZero() {
			t.Errorf("stamp(%v) back as %v", at, got)
		}
	}
}

// Groups with the same leaves share one slice of rests, and a put or a
// delete in one group leaves the others' as they were.
func TestLeafStoreShapes(t *testing.T) {
	in := &interner{m: map[string]string{}}
	s := newLeafStore(in, new(atomic.Int64))
	for _, n := range []string{"1", "2", "3"} {
		for _, r := range []string{"/state/b", "/state/a", "/state/c"} {
			s.put([]byte("/n[k="+n+"]"+r), leaf{src: 1})
		}
	}
	g1, g2, g3 := s.groups["/n[k=1]"], s.groups["/n[k=2]"], s.groups["/n[k=3]"]
	if &g1.rests[0] != &g2.rests[0] || &g2.rests[0] != &g3.rests[0] {
		t.Errorf("groups of one shape hold their own rests")
	}
	s.del("/n[k=2]/state/a")
	s.put([]byte("/n[k=3]/state/d"), leaf{src: 1})
	want := map[*leafGroup][]string{
		g1: {"/state/a", "/state/b", "/state/c"},
		g2: {"/state/b", "/state/c"},
		g3: {"/state/a", "/state/b", "/state/c", "/state/d"},
	}
	for g, w := range want {
		if !slices.Equal(g.rests, w) || len(g.leaves) != len(w) {
			t.Errorf("%s: rests %v (%d leaves), want %v", g.prefix, g.rests, len(g.leaves), w)
		}
	}
	if s.getString("/n[k=2]/state/a") != nil || s.getString("/n[k=1]/state/a") == nil || s.getString("/n[k=3]/state/d") == nil {
		t.Errorf("lookups after the changes are wrong")
	}
	// Past the bound, a new shape is kept by its group alone.
	for i := len(in.shapes); i < maxShapes; i++ {
		in.shapes[fmt.Sprint("filler", i)] = nil
	}
	s.put([]byte("/n[k=1]/state/e"), leaf{src: 1})
	if got := s.groups["/n[k=1]"].rests; len(got) != 4 || got[3] != "/state/e" {
		t.Errorf("rests past the bound: %v", got)
	}
	if len(in.shapes) != maxShapes {
		t.Errorf("%d shapes, want the bound %d", len(in.shapes), maxShapes)
	}
}

// Every leaf of a fleet is one of these: a field added in the wrong place
// grows them all.
func TestLeafSize(t *testing.T) {
	if n := unsafe.Sizeof(leaf{}); n != 24 {
		t.Errorf("a leaf is %d bytes, want 24", n)
	}
}

// get takes the last key's group when the key shares its prefix, looks
// the group up when it does not, and never keeps a group that was
// deleted.
func TestLeafStoreLastGroup(t *testing.T) {
	s := newLeafStore(&interner{m: map[string]string{}}, new(atomic.Int64))
	for _, k := range []string{"/n[k=1]/a", "/n[k=1]/b", "/n[k=2]/a"} {
		s.put([]byte(k), leaf{src: 1, ts: int64(len(k))})
	}
	steps := []struct {
		key    string
		shared int
		found  bool
	}{
		{"/n[k=1]/a", 0, true},
		{"/n[k=1]/b", len("/n[k=1]/"), true},
		{"/n[k=1]/c", len("/n[k=1]/"), false},
		{"/n[k=2]/a", len("/n[k="), true}, // same length of prefix, not the same prefix
		{"/n[k=2]/b", len("/n[k=2]"), false},
	}
	for _, st := range steps {
		if l := s.get([]byte(st.key), st.shared); (l != nil) != st.found {
			t.Errorf("get(%s, %d) = %v, want found %v", st.key, st.shared, l, st.found)
		}
	}
	s.get([]byte("/n[k=2]/a"), 0)
	s.del("/n[k=2]/a") // the group goes
	if s.last != nil {
		t.Errorf("deleted group still kept as the last")
	}
	s.put([]byte("/n[k=2]/z"), leaf{src: 1})
	if s.get([]byte("/n[k=2]/z"), len("/n[k=2]/")) == nil || s.get([]byte("/n[k=2]/a"), len("/n[k=2]/")) != nil {
		t.Errorf("group made anew is not the one found")
	}
}

func TestKindOf(t *testing.T) {
	for _, tt := range []struct{ prefix, want string }{
		{"/a[k=1]", "/a[]"},
		{"/a[k=1]/b[i=x][j=y]", "/a[]/b[][]"},
		{`/a[k=odd\]]/b[j=\\]`, "/a[]/b[]"},
		{"/meshd/router", "/meshd/router"},
	} {
		if got := string(kindOf(nil, []byte(tt.prefix))); got != tt.want {
			t.Errorf("kindOf(%s) = %s, want %s", tt.prefix, got, tt.want)
		}
	}
}

// A group starts with the room the biggest group of its kind needed.
func TestLeafStoreSizeHint(t *testing.T) {
	s := newLeafStore(&interner{m: map[string]string{}}, new(atomic.Int64))
	for i := 0; i < 9; i++ {
		s.put([]byte(fmt.Sprintf("/n[k=1]/l%d", i)), leaf{src: 1})
	}
	s.put([]byte("/n[k=2]/l0"), leaf{src: 1})
	s.put([]byte("/m[k=2]/l0"), leaf{src: 1})
	if c1, c2 := cap(s.groups["/n[k=1]"].leaves), cap(s.groups["/n[k=2]"].leaves); c2 != c1 || c1 < 9 {
		t.Errorf("second group of a kind has room for %d, the first %d", c2, c1)
	}
	if c := cap(s.groups["/m[k=2]"].leaves); c > 2 {
		t.Errorf("group of another kind started with room for %d", c)
	}
}
