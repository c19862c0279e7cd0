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
	g1, g2, g3 := s.group([]byte("/n[k=1]")), s.group([]byte("/n[k=2]")), s.group([]byte("/n[k=3]"))
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
			t.Errorf("%s: rests %v (%d leaves), want %v", g.appendPrefix(nil), g.rests, len(g.leaves), w)
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
	if got := s.group([]byte("/n[k=1]")).rests; len(got) != 4 || got[3] != "/state/e" {
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
	if c1, c2 := cap(s.group([]byte("/n[k=1]")).leaves), cap(s.group([]byte("/n[k=2]")).leaves); c2 != c1 || c1 < 9 {
		t.Errorf("second group of a kind has room for %d, the first %d", c2, c1)
	}
	if c := cap(s.group([]byte("/m[k=2]")).leaves); c > 2 {
		t.Errorf("group of another kind started with room for %d", c)
	}
}

func TestLastEntry(t *testing.T) {
	for _, tt := range []struct {
		prefix    string
		prev, key string // the prefix up to the entry before, and the last entry's keys
	}{
		{"", "", ""},
		{"/a[k=1]", "", "[k=1]"},
		{"/a[k=1][j=2]", "", "[k=1][j=2]"},
		{"/a[k=1]/b/c[j=2]", "/a[k=1]", "[j=2]"},
		{"/a[k=1][l=3]/b[j=2][m=4]", "/a[k=1][l=3]", "[j=2][m=4]"},
		{`/a[k=x\]]/b[j=y\][z]`, `/a[k=x\]]`, `[j=y\][z]`},
		{`/a[k=x\\]/b[j=2]`, `/a[k=x\\]`, `[j=2]`},
	} {
		prev, keys := lastEntry([]byte(tt.prefix))
		if tt.prefix[:prev] != tt.prev || tt.prefix[keys:] != tt.key {
			t.Errorf("lastEntry(%s) = %q, %q; want %q, %q", tt.prefix, tt.prefix[:prev], tt.prefix[keys:], tt.prev, tt.key)
		}
	}
}

// A group below another list entry's group holds its prefix through it,
// and keeps finding and listing its leaves after that group is emptied,
// dropped and made again.
func TestLeafStoreNestedGroups(t *testing.T) {
	in := &interner{m: map[string]string{}}
	s := newLeafStore(in, new(atomic.Int64))
	nbr, afi := "/n[a=10.0.0.1]", "/n[a=10.0.0.1]/afis/afi[name=IPV4]"
	s.put([]byte(nbr+"/state/x"), leaf{src: 1})
	s.put([]byte(afi+"/state/y"), leaf{src: 1})
	g := s.group([]byte(afi))
	if g == nil || g.parent != s.group([]byte(nbr)) || g.mid != "/afis/afi" || g.key != "[name=IPV4]" {
		t.Fatalf("afi group %+v: want it below the neighbor's", g)
	}
	for p, want := range map[string]bool{
		"/n[a=10.0.0.1]": true, "/n[a=10.0.0.1]/afis/afi": true, afi + "/state/y": true,
		"/n[a=10.0.0.2]": false, "/n[a=10.0.0.1]/afis/afi[name=IPV6]": false, "/m": false,
	} {
		if _, ok := g.agrees([]byte(p)); ok != want {
			t.Errorf("afi group agrees with %s: %v, want %v", p, ok, want)
		}
	}
	// Another neighbor's AFI-SAFI shares the parts of its prefix.
	s.put([]byte("/n[a=10.0.0.2]/state/x"), leaf{src: 1})
	s.put([]byte("/n[a=10.0.0.2]/afis/afi[name=IPV4]/state/y"), leaf{src: 1})
	g2 := s.group([]byte("/n[a=10.0.0.2]/afis/afi[name=IPV4]"))
	if unsafe.StringData(g2.mid) != unsafe.StringData(g.mid) || unsafe.StringData(g2.key) != unsafe.StringData(g.key) {
		t.Errorf("two neighbors' AFI-SAFI groups hold their own copies of the same parts")
	}
	s.del(nbr + "/state/x")
	if s.group([]byte(nbr)) != nil {
		t.Fatal("emptied neighbor group still there")
	}
	check := func(when string) {
		t.Helper()
		if s.getString(afi+"/state/y") == nil || s.get([]byte(afi+"/state/y"), 0) == nil {
			t.Errorf("%s: afi leaf not found", when)
		}
		var got []string
		s.eachUnder(nbr, func(k string, _ *leaf) { got = append(got, k) })
		sort.Strings(got)
		if want := []string{afi + "/state/y"}; when == "parent dropped" && !slices.Equal(got, want) {
			t.Errorf("%s: eachUnder(%s) = %v, want %v", when, nbr, got, want)
		}
	}
	check("parent dropped")
	s.put([]byte(nbr+"/state/x"), leaf{src: 1})
	check("parent made again")
	if s.group([]byte(afi)).parent == s.group([]byte(nbr)) {
		t.Errorf("the old group was found again") // it was dropped: a new one is made
	}
}

// Two prefixes whose hashes collide each keep their own group.
func TestLeafStoreHashCollision(t *testing.T) {
	s := newLeafStore(&interner{m: map[string]string{}}, new(atomic.Int64))
	a, b := "/n[k=1]", "/n[k=2]"
	s.put([]byte(a+"/x"), leaf{src: 1, ts: 1})
	// While b's group is made, a's group sits where b's hash points too,
	// as it would if the two collided; then it is only at its own.
	ga := s.group([]byte(a))
	s.groups[prefixHash([]byte(b))] = ga
	s.put([]byte(b+"/x"), leaf{src: 1, ts: 2})
	delete(s.groups, prefixHash([]byte(b)))
	if gb := s.group([]byte(b)); gb == nil || gb == ga || s.spill[b] != gb {
		t.Fatalf("b's group %p (a's %p, spilled %p)", gb, ga, s.spill[b])
	}
	for k, ts := range map[string]int64{a + "/x": 1, b + "/x": 2} {
		if l := s.getString(k); l == nil || l.ts != ts {
			t.Errorf("getString(%s) = %+v", k, l)
		}
	}
	n := 0
	s.eachUnder("/", func(string, *leaf) { n++ })
	if n != 2 {
		t.Errorf("eachUnder(/) found %d leaves, want 2", n)
	}
	s.del(b + "/x")
	s.del(a + "/x")
	if s.n != 0 || len(s.spill) != 0 || len(s.groups) != 0 {
		t.Errorf("after deleting both: n %d, spill %v, groups %v", s.n, s.spill, s.groups)
	}
}
