package monitor

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	r1a = Place{Router: "r1", NetworkInstance: "default", Neighbor: "10.0.0.2", View: "ADJ_RIB_IN_POST"}
	r1b = Place{Router: "r1", NetworkInstance: "default", Neighbor: "10.0.0.3", View: "ADJ_RIB_IN_POST"}
	r2a = Place{Router: "r2", NetworkInstance: "default", Neighbor: "10.0.1.2", View: "LOC_RIB"}
)

func ann(at Place, prefix string, origin uint32, path string) Route {
	return Route{Place: at, Prefix: netip.MustParsePrefix(prefix), Origin: origin, ASPath: path}
}

func wd(at Place, prefix string) Route {
	return Route{Place: at, Prefix: netip.MustParsePrefix(prefix), Withdraw: true}
}

func invalid(r Route) Route { r.Invalid = true; return r }

// at stamps a route sec seconds after t0.
func at(r Route, sec int) Route {
	r.Time = time.Unix(1_700_000_000, 0).Add(time.Duration(sec) * time.Second)
	return r
}

// step is a route and the transitions it must make: "+kind" opens,
// "-kind" clears.
type step struct {
	r    Route
	want []string
}

func TestObserve(t *testing.T) {
	cfg := Config{
		Prefixes: []Watch{
			{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Description: "web", ASN: []uint32{64500}, MaxLength: 25},
			{Prefix: netip.MustParsePrefix("198.51.100.0/24"), ASN: []uint32{64500}, IgnoreMorespecifics: true, IgnorePeers: []string{"10.0.0.3"}},
		},
		OwnASNs:        []uint32{64500},
		VisibilityLoss: 2,
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"expected origin: nothing", []step{{ann(r1a, "192.0.2.0/24", 64500, "64510 64500"), nil}}},
		{"origin hijack opens once, clears on withdraw", []step{
			{ann(r1a, "192.0.2.0/24", 64666, "64510 64666"), []string{"+origin"}},
			{ann(r1a, "192.0.2.0/24", 64666, "64510 64666"), nil},
			{wd(r1a, "192.0.2.0/24"), []string{"-origin"}},
		}},
		{"origin hijack clears when the expected origin is back", []step{
			{ann(r1a, "192.0.2.0/24", 64666, "64510 64666"), []string{"+origin"}},
			{ann(r1a, "192.0.2.0/24", 64500, "64510 64500"), []string{"-origin"}},
		}},
		{"a more-specific within max-length from the expected origin", []step{{ann(r1a, "192.0.2.0/25", 64500, "64510 64500"), nil}}},
		{"a more-specific past max-length", []step{
			{ann(r1a, "192.0.2.0/26", 64500, "64510 64500"), []string{"+sub-prefix"}},
			{wd(r1a, "192.0.2.0/26"), []string{"-sub-prefix"}},
		}},
		{"a more-specific from another origin", []step{{ann(r2a, "192.0.2.128/25", 64666, "64520 64666"), []string{"+sub-prefix"}}}},
		{"more-specifics ignored", []step{{ann(r1a, "198.51.100.0/25", 64666, "64510 64666"), nil}}},
		{"an ignored peer", []step{{ann(r1b, "198.51.100.0/24", 64666, "64510 64666"), nil}}},
		{"RPKI-invalid", []step{
			{invalid(ann(r1a, "192.0.2.0/24", 64500, "64510 64500")), []string{"+rpki-invalid"}},
			{ann(r1a, "192.0.2.0/24", 64500, "64510 64500"), []string{"-rpki-invalid"}},
		}},
		{"upstream change, and back", []step{
			{ann(r1a, "192.0.2.0/24", 64500, "64510 64500 64500"), nil},
			{ann(r1a, "192.0.2.0/24", 64500, "64999 64500"), []string{"+upstream"}},
			{ann(r1a, "192.0.2.0/24", 64500, "64510 64500"), []string{"-upstream"}},
		}},
		{"upstream changes while learning are not news", []step{
			{at(ann(r1a, "192.0.2.0/24", 64500, "64999 64500"), 0), nil},
			{at(ann(r1a, "192.0.2.0/24", 64500, "64510 64500"), 30), nil},
			{at(ann(r1a, "192.0.2.0/24", 64500, "64999 64500"), 61), []string{"+upstream"}},
			{at(ann(r1a, "192.0.2.0/24", 64500, "64510 64500"), 62), []string{"-upstream"}},
		}},
		{"visibility: K=2 of the places", []step{
			{ann(r1a, "192.0.2.0/24", 64500, "64510 64500"), nil},
			{ann(r1b, "192.0.2.0/24", 64500, "64511 64500"), nil},
			{ann(r2a, "192.0.2.0/24", 64500, "64512 64500"), nil},
			{wd(r1a, "192.0.2.0/24"), nil},
			{wd(r2a, "192.0.2.0/24"), []string{"+visibility"}},
			{wd(r1b, "192.0.2.0/24"), nil},
			{ann(r1a, "192.0.2.0/24", 64500, "64510 64500"), nil},
			{ann(r2a, "192.0.2.0/24", 64500, "64512 64500"), []string{"-visibility"}},
		}},
		{"visibility: places that held it for seconds do not count", []step{
			{at(ann(r1a, "192.0.2.0/24", 64500, "64510 64500"), 0), nil},
			{at(ann(r1b, "192.0.2.0/24", 64500, "64511 64500"), 0), nil},
			{at(ann(r2a, "192.0.2.0/24", 64500, "64512 64500"), 100), nil},
			{at(wd(r2a, "192.0.2.0/24"), 105), nil}, // path hunting: r2a had it 5 s
			{at(wd(r1a, "192.0.2.0/24"), 106), nil},
			{at(wd(r1b, "192.0.2.0/24"), 107), []string{"+visibility"}},
			{at(ann(r1a, "192.0.2.0/24", 64500, "64510 64500"), 120), []string{"-visibility"}},
		}},
		{"own ASN, unwatched prefix", []step{
			{ann(r1a, "203.0.113.0/24", 64500, "64510 64500"), []string{"+unwatched"}},
			{ann(r1a, "203.0.113.0/24", 64500, "64510 64500"), nil},
			{wd(r1a, "203.0.113.0/24"), []string{"-unwatched"}},
		}},
		{"another AS's unwatched prefix: nothing", []step{{ann(r1a, "203.0.113.0/24", 64666, "64510 64666"), nil}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range c.steps {
				var got []string
				for _, tr := range m.Observe(s.r) {
					sign := "-"
					if tr.Open {
						sign = "+"
					}
					got = append(got, sign+string(tr.Kind))
					// An opening says why in its detail, a clearing in its
					// reason.
					if tr.Detail == "" || tr.Open != (tr.Reason == "") {
						t.Errorf("step %d: %s: detail %q, reason %q", i, got[len(got)-1], tr.Detail, tr.Reason)
					}
				}
				if !slices.Equal(got, s.want) {
					t.Errorf("step %d (%s %v): %v, want %v", i, s.r.Prefix, s.r.Place, got, s.want)
				}
			}
		})
	}
}

// TestVisibilityStaysWhereItOpened: a visibility alert is one per watched
// prefix, attributed to the place whose withdrawal crossed K; later
// withdrawals update its detail but not its place, so its clearing names
// the router that holds it (the tree keeps it under that router).
func TestVisibilityStaysWhereItOpened(t *testing.T) {
	m, err := New(Config{Prefixes: []Watch{{Prefix: netip.MustParsePrefix("192.0.2.0/24"), ASN: []uint32{64500}}}, VisibilityLoss: 1})
	if err != nil {
		t.Fatal(err)
	}
	m.Observe(ann(r1a, "192.0.2.0/24", 64500, "64510 64500"))
	m.Observe(ann(r2a, "192.0.2.0/24", 64500, "64512 64500"))
	opened := m.Observe(wd(r1a, "192.0.2.0/24"))
	m.Observe(wd(r2a, "192.0.2.0/24"))
	m.Observe(ann(r2a, "192.0.2.0/24", 64500, "64512 64500"))
	cleared := m.Observe(ann(r1a, "192.0.2.0/24", 64500, "64510 64500"))
	if len(opened) != 1 || len(cleared) != 1 || !opened[0].Open || cleared[0].Open {
		t.Fatalf("opened %+v, cleared %+v", opened, cleared)
	}
	if cleared[0].Place != opened[0].Place {
		t.Errorf("cleared at %v, opened at %v", cleared[0].Place, opened[0].Place)
	}
}

func TestUpstream(t *testing.T) {
	for _, c := range []struct {
		path   string
		origin uint32
		want   uint32
	}{
		{"64510 64500", 64500, 64510},
		{"64510 64500 64500 64500", 64500, 64510},
		{"64500", 64500, 0},
		{"", 0, 0},
		{"64510 {64501,64502}", 0, 0},
		{"64520 64510 64500", 64500, 64510},
	} {
		if got := upstream(c.path, c.origin); got != c.want {
			t.Errorf("upstream(%q, %d) = %d, want %d", c.path, c.origin, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		w    Watch
		want string
	}{
		{Watch{Prefix: netip.MustParsePrefix("192.0.2.1/24"), ASN: []uint32{1}}, "host bits"},
		{Watch{Prefix: netip.MustParsePrefix("192.0.2.0/24")}, "expected origins"},
		{Watch{Prefix: netip.MustParsePrefix("192.0.2.0/24"), ASN: []uint32{1}, MaxLength: 16}, "outside 24-32"},
	} {
		err := (&Config{Prefixes: []Watch{c.w}}).Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.w, err, c.want)
		}
	}
}
