package rpki

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/meshd/meshd/rpki/rtr"
)

func vrp(p string, maxLen uint8, asn uint32) rtr.VRP {
	return rtr.VRP{Prefix: netip.MustParsePrefix(p), MaxLen: maxLen, ASN: asn}
}

// TestValidate holds Validate to RFC 6811's procedure: a route is Valid
// when a covering VRP has its origin and a max length it fits, Invalid
// when VRPs cover it but none matches, NotFound when none covers it.
func TestValidate(t *testing.T) {
	tab := NewTable()
	tab.Apply("c1", rtr.Delta{Reset: true, Announced: []rtr.VRP{
		vrp("192.0.2.0/24", 24, 64500),
		vrp("198.51.100.0/22", 24, 64501),
		vrp("198.51.100.0/24", 24, 64502), // a second VRP covering 198.51.100.0/24
		vrp("203.0.113.0/24", 24, 0),      // AS0: nobody may announce it
		vrp("203.0.113.0/24", 25, 64503),  // ...but a VRP with an AS beside AS0 still makes it valid
		vrp("2001:db8::/32", 48, 64504),
		vrp("10.0.0.0/8", 8, 64505), // max length 8: no more-specific is valid
	}})
	for _, c := range []struct {
		name   string
		prefix string
		origin uint32
		want   State
	}{
		{"exact match", "192.0.2.0/24", 64500, Valid},
		{"other origin", "192.0.2.0/24", 64666, InvalidOrigin},
		{"more specific than max length", "192.0.2.0/25", 64500, InvalidLength},
		{"more specific, other origin", "192.0.2.128/25", 64666, InvalidOrigin},
		{"covered by a shorter VRP within its max length", "198.51.101.0/24", 64501, Valid},
		{"two VRPs cover it, the second matches", "198.51.100.0/24", 64502, Valid},
		{"two VRPs cover it, the first matches", "198.51.100.0/24", 64501, Valid},
		{"two VRPs cover it, neither matches", "198.51.100.0/24", 64666, InvalidOrigin},
		{"the origin's VRP, but too short a max length, beside AS0", "203.0.113.128/26", 64503, InvalidLength},
		{"AS0 VRP beside a VRP of the origin", "203.0.113.0/25", 64503, Valid},
		{"AS0 origin matches nothing", "203.0.113.0/24", 0, InvalidOrigin},
		{"no origin (AS_SET) but covered", "192.0.2.0/24", 0, InvalidOrigin},
		{"not covered", "100.64.0.0/10", 64500, NotFound},
		{"less specific than every VRP", "192.0.0.0/16", 64500, NotFound},
		{"IPv6 within max length", "2001:db8:1::/48", 64504, Valid},
		{"IPv6 past max length", "2001:db8:1:1::/64", 64504, InvalidLength},
		{"IPv6 not covered", "2001:db9::/32", 64504, NotFound},
		{"an IPv4 VRP covers no IPv6 route", "::ffff:192.0.2.0/120", 64500, NotFound},
		{"max length equal to the VRP's length", "10.1.0.0/16", 64505, InvalidLength},
		{"host bits set are masked", "192.0.2.1/24", 64500, Valid},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := tab.Validate(netip.MustParsePrefix(c.prefix), c.origin); got != c.want {
				t.Errorf("Validate(%s, AS%d) = %v, want %v", c.prefix, c.origin, got, c.want)
			}
		})
	}
}

// TestApplyCaches: the table is the union of the caches' sets; a delta
// reports exactly the VRPs that came into the table or left it, and a
// cache's reset takes back only what it gave.
func TestApplyCaches(t *testing.T) {
	tab := NewTable()
	a, b, c := vrp("192.0.2.0/24", 24, 1), vrp("198.51.100.0/24", 24, 2), vrp("203.0.113.0/24", 24, 3)
	steps := []struct {
		cache string
		d     rtr.Delta
		want  []rtr.VRP
		len   int
	}{
		{"c1", rtr.Delta{Reset: true, Announced: []rtr.VRP{a, b}}, []rtr.VRP{a, b}, 2},
		{"c2", rtr.Delta{Reset: true, Announced: []rtr.VRP{b, c}}, []rtr.VRP{c}, 3},
		{"c1", rtr.Delta{Withdrawn: []rtr.VRP{b}}, nil, 3},             // c2 still holds b
		{"c2", rtr.Delta{Withdrawn: []rtr.VRP{b, a}}, []rtr.VRP{b}, 2}, // a was never c2's
		{"c1", rtr.Delta{Announced: []rtr.VRP{a}}, nil, 2},             // held already
		{"c2", rtr.Delta{Reset: true}, []rtr.VRP{c}, 1},                // c2 expired
		{"c1", rtr.Delta{Reset: true, Announced: []rtr.VRP{c}}, []rtr.VRP{a, c}, 1},
	}
	for i, s := range steps {
		got := tab.Apply(s.cache, s.d)
		less := func(x, y rtr.VRP) int { return x.Prefix.Addr().Compare(y.Prefix.Addr()) }
		slices.SortFunc(got, less)
		slices.SortFunc(s.want, less)
		if !slices.Equal(got, s.want) || tab.Len() != s.len {
			t.Errorf("step %d (%s): changed %v, len %d; want %v, %d", i, s.cache, got, tab.Len(), s.want, s.len)
		}
	}
	if tab.Validate(netip.MustParsePrefix("192.0.2.0/24"), 1) != NotFound || tab.Validate(netip.MustParsePrefix("203.0.113.0/24"), 3) != Valid {
		t.Error("after the steps the table does not hold exactly c1's {c}")
	}
}
