package change

import (
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/proto"
)

func TestKeyPathRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		path *gpb.Path
		key  string
	}{
		{"root", &gpb.Path{}, "/"},
		{"neighbor leaf", NeighborPath("default", "10.0.0.1", "state", "session-state"),
			"/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=10.0.0.1]/state/session-state"},
		{"afi-safi", AfiSafiPath("red", "fd00::1", "IPV6_UNICAST", "state", "prefixes", "received"),
			"/network-instances/network-instance[name=red]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=fd00::1]/afi-safis/afi-safi[afi-safi-name=IPV6_UNICAST]/state/prefixes/received"},
		{"odd key values", &gpb.Path{Elem: []*gpb.PathElem{{Name: "a", Key: map[string]string{"p": "10.0.0.0/8", "q": "x=y[z]", "r": `back\slash`, "s": ""}}, {Name: "b"}}},
			`/a[p=10.0.0.0/8][q=x=y[z\]][r=back\\slash][s=]/b`},
		{"three keys", &gpb.Path{Elem: []*gpb.PathElem{{Name: "l", Key: map[string]string{"c": "3", "a": "1", "b": "2"}}}}, "/l[a=1][b=2][c=3]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PathKey(tt.path); got != tt.key {
				t.Fatalf("PathKey = %q, want %q", got, tt.key)
			}
			back, err := KeyPath(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(back, tt.path) {
				t.Fatalf("KeyPath(%q) = %v, want %v", tt.key, back, tt.path)
			}
		})
	}
}

func TestKeyPathErrors(t *testing.T) {
	for _, k := range []string{"", "a/b", "//a", "/a[k", "/a[k=v", "/a[k=v]x", "/a/"} {
		if p, err := KeyPath(k); err == nil {
			t.Errorf("KeyPath(%q) = %v, want an error", k, p)
		}
	}
}

// FuzzKeyPath: any key value survives PathKey then KeyPath, and KeyPath
// never panics on arbitrary input.
func FuzzKeyPath(f *testing.F) {
	f.Add("10.0.0.1", "/a[b=c]/d")
	f.Add(`x]\[=/`, "/")
	f.Fuzz(func(t *testing.T, v, raw string) {
		KeyPath(raw)
		p := &gpb.Path{Elem: []*gpb.PathElem{{Name: "n", Key: map[string]string{"k": v, "j": v + "/"}}, {Name: "leaf"}}}
		back, err := KeyPath(PathKey(p))
		if err != nil {
			t.Fatalf("KeyPath(PathKey(%v)): %v", p, err)
		}
		if !proto.Equal(back, p) {
			t.Fatalf("round trip of %v gave %v", p, back)
		}
	})
}

// The neighbor key builders agree with PathKey of the paths they stand for.
func TestAppendNeighborKeys(t *testing.T) {
	for _, tc := range []struct{ ni, addr string }{
		{"default", "192.0.2.1"},
		{"vrf-a", "2001:db8::1"},
		{"odd]name\\x", "fe80::1%eth0"},
		{"", ""},
	} {
		if got, want := string(AppendNeighborKey(nil, tc.ni, tc.addr)), PathKey(NeighborPath(tc.ni, tc.addr)); got != want {
			t.Errorf("AppendNeighborKey(%q, %q) = %s, want %s", tc.ni, tc.addr, got, want)
		}
		if got, want := string(AppendMeshdNeighborKey([]byte("x"), tc.ni, tc.addr)), "x"+PathKey(MeshdNeighborPath(tc.ni, tc.addr)); got != want {
			t.Errorf("AppendMeshdNeighborKey(%q, %q) = %s, want %s", tc.ni, tc.addr, got, want)
		}
	}
}

func BenchmarkAppendPathKey(b *testing.B) {
	p := NeighborPath("default", "192.0.2.1", "afi-safis")
	p.Elem = append(p.Elem, &gpb.PathElem{Name: "afi-safi", Key: map[string]string{"afi-safi-name": "IPV4_UNICAST"}},
		&gpb.PathElem{Name: "state"}, &gpb.PathElem{Name: "prefixes"}, &gpb.PathElem{Name: "received"})
	buf := make([]byte, 0, 256)
	for b.Loop() {
		buf = AppendPathKey(buf[:0], p)
	}
}
