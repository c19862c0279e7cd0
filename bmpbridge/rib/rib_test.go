package rib

import (
	"net/netip"
	"testing"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/meshd/meshd/bmpbridge/decode"
)

func nlri(p string, id uint32) *decode.NLRI {
	pf := netip.MustParsePrefix(p)
	f := bgp.RF_IPv4_UC
	if pf.Addr().Is6() {
		f = bgp.RF_IPv6_UC
	}
	return &decode.NLRI{Family: f, IP: pf, Prefix: p, PathID: id}
}

func TestTableOutcomes(t *testing.T) {
	in := NewInterner()
	tb := NewTable(in)
	a1 := &decode.Attrs{Key: "a1", OriginAS: 1}
	a2 := &decode.Attrs{Key: "a2", OriginAS: 2}
	a1again := &decode.Attrs{Key: "a1", OriginAS: 1} // same set, decoded anew
	vpn := &decode.NLRI{Family: bgp.RF_IPv4_VPN, Prefix: "65000:1:10.0.0.0/8"}
	steps := []struct {
		name string
		do   func() (Outcome, *decode.Attrs)
		want Outcome
		old  *decode.Attrs
	}{
		{"add", func() (Outcome, *decode.Attrs) { return tb.Announce(nlri("10.0.0.0/8", 0), a1) }, Added, nil},
		{"same again", func() (Outcome, *decode.Attrs) { return tb.Announce(nlri("10.0.0.0/8", 0), a1again) }, Duplicate, a1},
		{"other path id", func() (Outcome, *decode.Attrs) { return tb.Announce(nlri("10.0.0.0/8", 5), a1) }, Added, nil},
		{"change", func() (Outcome, *decode.Attrs) { return tb.Announce(nlri("10.0.0.0/8", 0), a2) }, Changed, a1},
		{"v6", func() (Outcome, *decode.Attrs) { return tb.Announce(nlri("2001:db8::/32", 0), a2) }, Added, nil},
		{"vpn", func() (Outcome, *decode.Attrs) { return tb.Announce(vpn, a1) }, Added, nil},
		{"withdraw", func() (Outcome, *decode.Attrs) { return tb.Withdraw(nlri("10.0.0.0/8", 0)) }, Removed, a2},
		{"withdraw again", func() (Outcome, *decode.Attrs) { return tb.Withdraw(nlri("10.0.0.0/8", 0)) }, Missing, nil},
		{"withdraw vpn", func() (Outcome, *decode.Attrs) { return tb.Withdraw(vpn) }, Removed, a1},
	}
	for _, s := range steps {
		o, old := s.do()
		if o != s.want || old != s.old {
			t.Fatalf("%s: got %v %v, want %v %v", s.name, o, old, s.want, s.old)
		}
	}
	if tb.Len() != 2 || tb.Counts()[bgp.RF_IPv4_UC] != 1 || tb.Counts()[bgp.RF_IPv6_UC] != 1 {
		t.Errorf("len %d counts %v", tb.Len(), tb.Counts())
	}
	if in.Len() != 2 {
		t.Errorf("interned sets = %d, want 2", in.Len())
	}
	tb.Clear()
	if in.Len() != 0 || tb.Len() != 0 {
		t.Errorf("after clear: interned %d, routes %d", in.Len(), tb.Len())
	}
}

func TestCovering(t *testing.T) {
	tb := NewTable(NewInterner())
	tb.Announce(nlri("10.0.0.0/8", 0), &decode.Attrs{Key: "x", OriginAS: 1})
	tb.Announce(nlri("10.1.0.0/16", 0), &decode.Attrs{Key: "y", OriginAS: 2})
	tests := []struct {
		p, want string
	}{
		{"10.1.2.0/24", "10.1.0.0/16"},
		{"10.2.0.0/16", "10.0.0.0/8"},
		{"11.0.0.0/24", ""},
		{"10.0.0.0/8", ""},
	}
	for _, tc := range tests {
		p, _, ok := tb.Covering(nlri(tc.p, 0))
		got := ""
		if ok {
			got = p.String()
		}
		if got != tc.want {
			t.Errorf("Covering(%s) = %q, want %q", tc.p, got, tc.want)
		}
	}
}

func BenchmarkAnnounce(b *testing.B) {
	tb := NewTable(NewInterner())
	a := &decode.Attrs{Key: "k"}
	ns := make([]decode.NLRI, 1<<16)
	for i := range ns {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(i >> 8), byte(i), 1, 0}), 24)
		ns[i] = decode.NLRI{Family: bgp.RF_IPv4_UC, IP: p}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tb.Announce(&ns[i&(1<<16-1)], a)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "routes/s")
}
