package rib

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/meshd/meshd/bmpbridge/decode"
)

func TestStates(t *testing.T) {
	tb := NewTable(NewInterner())
	a1 := &decode.Attrs{Key: "a1", OriginAS: 1}
	a2 := &decode.Attrs{Key: "a2", OriginAS: 2}
	steps := []struct {
		name string
		do   func()
		want [numStates]uint64
	}{
		{"added routes are state 0", func() {
			tb.Announce(nlri("10.0.0.0/8", 0), a1)
			tb.Announce(nlri("10.1.0.0/16", 0), a1)
			tb.Announce(nlri("2001:db8::/32", 0), a1)
		}, [numStates]uint64{3, 0, 0, 0}},
		{"set", func() {
			if was, ok := tb.SetState(nlri("10.0.0.0/8", 0), 2); !ok || was != 0 {
				t.Errorf("SetState: was %d ok %v", was, ok)
			}
			tb.SetState(nlri("2001:db8::/32", 0), 1)
		}, [numStates]uint64{1, 1, 1, 0}},
		{"a changed route keeps its state", func() {
			if o, _ := tb.Announce(nlri("10.0.0.0/8", 0), a2); o != Changed {
				t.Errorf("outcome %v", o)
			}
		}, [numStates]uint64{1, 1, 1, 0}},
		{"missing route", func() {
			if _, ok := tb.SetState(nlri("10.9.0.0/16", 0), 3); ok {
				t.Error("SetState of a route not held: ok")
			}
		}, [numStates]uint64{1, 1, 1, 0}},
		{"withdraw", func() { tb.Withdraw(nlri("10.0.0.0/8", 0)) }, [numStates]uint64{1, 1, 0, 0}},
		{"clear", func() { tb.Clear() }, [numStates]uint64{}},
	}
	for _, s := range steps {
		s.do()
		if got := tb.States(); got != s.want {
			t.Fatalf("%s: states %v, want %v", s.name, got, s.want)
		}
	}
}

// TestWithin holds Within, both listing candidates and walking, to a
// brute-force search over random tables and sets.
func TestWithin(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randPrefix := func(v6 bool, minBits, maxBits int) netip.Prefix {
		l := minBits + rng.IntN(maxBits-minBits+1)
		if v6 {
			var b [16]byte
			b[0], b[1], b[2], b[3], b[4] = 0x20, 0x01, 0x0d, 0xb8, byte(rng.IntN(4))
			b[5] = byte(rng.IntN(256))
			return netip.PrefixFrom(netip.AddrFrom16(b), l).Masked()
		}
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))}), l).Masked()
	}
	cases := []struct {
		name    string
		routes  int
		pathIDs bool
		set     int
		setBits [2]int
	}{
		{"a few narrow prefixes (listed)", 5000, false, 5, [2]int{20, 24}},
		{"wide prefixes (walked)", 5000, false, 5, [2]int{8, 12}},
		{"ADD-PATH table (walked)", 2000, true, 20, [2]int{20, 24}},
		{"empty set", 1000, false, 0, [2]int{24, 24}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := NewTable(NewInterner())
			a := &decode.Attrs{Key: "a", OriginAS: 1}
			held := map[netip.Prefix]bool{}
			for range c.routes {
				p := randPrefix(rng.IntN(4) == 0, 16, 28)
				var id uint32
				if c.pathIDs {
					id = uint32(rng.IntN(3))
				}
				n := nlri(p.String(), id)
				tb.Announce(n, a)
				held[p] = true
			}
			var ps []netip.Prefix
			for range c.set {
				ps = append(ps, randPrefix(rng.IntN(4) == 0, c.setBits[0], c.setBits[1]))
			}
			set := NewPrefixSet(ps...)
			want := map[netip.Prefix]bool{}
			for p := range held {
				for _, q := range ps {
					if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
						want[p] = true
					}
				}
			}
			got := map[netip.Prefix]bool{}
			tb.Within(set, func(n *decode.NLRI, at *decode.Attrs, st State) State {
				if at != a {
					t.Errorf("%s: attributes %v", n.IP, at)
				}
				got[n.IP] = true
				return 1
			})
			for p := range want {
				if !got[p] {
					t.Errorf("%s not visited", p)
				}
			}
			for p := range got {
				if !want[p] {
					t.Errorf("%s visited, not under the set", p)
				}
			}
			if st := tb.States(); st[1] < uint64(len(want)) {
				t.Errorf("states %v after setting %d routes to 1", st, len(want))
			}
			// A second pass sees the states kept.
			tb.Within(set, func(n *decode.NLRI, _ *decode.Attrs, st State) State {
				if st != 1 {
					t.Errorf("%s: state %d, want 1", n.IP, st)
				}
				return st
			})
		})
	}
}

func TestAddOffset(t *testing.T) {
	cases := []struct {
		base string
		i    uint64
		l    int
		want string
	}{
		{"10.0.0.0", 3, 24, "10.0.3.0"},
		{"10.0.0.0", 256, 24, "10.1.0.0"},
		{"10.0.0.0", 1, 32, "10.0.0.1"},
		{"2001:db8::", 1, 48, "2001:db8:1::"},
		{"2001:db8::", 1, 64, "2001:db8:0:1::"},
		{"2001:db8::", 1, 65, "2001:db8:0:0:8000::"},
		{"2001:db8::", 1, 128, "2001:db8::1"},
		{"2001:db8:0:ffff::", 1, 64, "2001:db8:1::"},
	}
	for _, c := range cases {
		if got := addOffset(netip.MustParseAddr(c.base), c.i, c.l); got.String() != c.want {
			t.Errorf("addOffset(%s, %d, /%d) = %s, want %s", c.base, c.i, c.l, got, c.want)
		}
	}
}
