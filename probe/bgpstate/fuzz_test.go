package bgpstate

import "testing"

// The parsers read whatever vtysh prints; they must never panic and every
// neighbor they return must carry an OpenConfig state.
func FuzzParseFRRNeighbors(f *testing.F) {
	f.Add(readFile(f, "frr-8.4-neighbors.json"))
	f.Add([]byte(`{"default":{"10.0.0.1":{"bgpState":"Established","addressFamilyInfo":{"ipv4Unicast":{}}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ns, _, err := ParseFRRNeighbors(data, "default")
		if err != nil {
			return
		}
		for _, n := range ns {
			if _, ok := frrState[stringsLower(n.State)]; !ok || n.Address == "" {
				t.Fatalf("neighbor %+v", n)
			}
			_ = n.Leaves()
		}
	})
}

func FuzzParseFRRPrefixCounts(f *testing.F) {
	f.Add(readFile(f, "frr-8.4-prefix-counts.json"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, _ := ParseFRRPrefixCounts(data)
		for _, c := range cs {
			if c.AfiSafi == "" || c.Neighbor == "" {
				t.Fatalf("count %+v", c)
			}
		}
	})
}

func stringsLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}
