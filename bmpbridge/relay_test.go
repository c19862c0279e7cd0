package bmpbridge

import (
	"encoding/binary"
	"testing"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
)

func TestRelayTags(t *testing.T) {
	tests := []struct {
		name         string
		strs         []string
		router, addr string
		ok           bool
	}{
		{"none", nil, "", "", false},
		{"another string", []string{"FRRouting 8.4"}, "", "", false},
		{"relayed", []string{"x", "meshd-relay router=r1 address=10.0.0.1"}, "r1", "10.0.0.1", true},
		{"no router", []string{"meshd-relay address=10.0.0.1"}, "", "10.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, a, ok := relayed(tt.strs)
			if r != tt.router || a != tt.addr || ok != tt.ok {
				t.Errorf("relayed(%q) = %q, %q, %v; want %q, %q, %v", tt.strs, r, a, ok, tt.router, tt.addr, tt.ok)
			}
		})
	}
}

// FuzzInitiationTLVs: the relay reads a router's first message itself,
// before the decoder; no body may make it panic, and a lone sysName TLV
// gives its value back.
func FuzzInitiationTLVs(f *testing.F) {
	init := bmpgen.AppendInitiation(nil, "r1", "FRRouting")
	f.Add(init[6:])
	f.Add([]byte{0, 2, 0, 9, 'r'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		sys, _ := initiationTLVs(body)
		if len(body) >= 4 && binary.BigEndian.Uint16(body) == 2 {
			// One sysName TLV and nothing after it.
			if l := int(binary.BigEndian.Uint16(body[2:])); len(body) == 4+l && sys == "" && l > 0 {
				t.Errorf("sysName TLV of %d bytes read as empty", l)
			}
		}
	})
}
