package merge

import (
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"
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
		if s.get([]byte(k)) != nil {
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
