package peering

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func bgpMsg(typ byte, body []byte) []byte {
	b := append(bytes.Repeat([]byte{0xff}, 16), 0, 0, typ)
	b = append(b, body...)
	binary.BigEndian.PutUint16(b[16:], uint16(len(b)))
	return b
}

// The framer keeps OPENs and NOTIFICATIONs whole and skips the rest,
// however the stream is cut into reads.
func TestFramer(t *testing.T) {
	open := bgpMsg(msgOpen, []byte{4, 0xfd, 0xe8, 0, 90, 10, 0, 0, 1, 0})
	update := bgpMsg(msgUpdate, bytes.Repeat([]byte{7}, 300))
	keepalive := bgpMsg(4, nil)
	notif := bgpMsg(msgNotification, []byte{6, 2})
	stream := bytes.Join([][]byte{open, keepalive, update, update, notif}, nil)
	tests := []struct {
		name string
		cut  int // bytes a read
	}{
		{"whole", len(stream)},
		{"a byte a read", 1},
		{"7 bytes a read", 7},
		{"header-sized reads", bgpHeaderLen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f framer
			var got [][]byte
			for p := stream; len(p) > 0; {
				n := min(tt.cut, len(p))
				f.feed(p[:n], func(typ byte, msg []byte) { got = append(got, msg) })
				p = p[n:]
			}
			if len(got) != 2 || !bytes.Equal(got[0], open) || !bytes.Equal(got[1], notif) {
				t.Errorf("kept %d messages %x, want the OPEN and the NOTIFICATION", len(got), got)
			}
		})
	}
}

// A length a BGP header cannot have stops the framer, which reads no
// more of that stream.
func TestFramerBadLength(t *testing.T) {
	var f framer
	bad := append(bytes.Repeat([]byte{0xff}, 16), 0, 5, msgOpen)
	kept := 0
	f.feed(append(bad, bgpMsg(msgOpen, nil)...), func(byte, []byte) { kept++ })
	if !f.bad || kept != 0 {
		t.Errorf("bad %v, kept %d", f.bad, kept)
	}
}

func FuzzFramer(f *testing.F) {
	f.Add(bgpMsg(msgOpen, []byte{4, 0, 1, 0, 90, 1, 2, 3, 4, 0}), 5)
	f.Add(bgpMsg(msgNotification, []byte{6, 4}), 1)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		if cut <= 0 {
			cut = 1
		}
		var f framer
		for p := data; len(p) > 0; {
			n := min(cut, len(p))
			f.feed(p[:n], func(typ byte, msg []byte) {
				if len(msg) < bgpHeaderLen || int(binary.BigEndian.Uint16(msg[16:])) != len(msg) || msg[18] != typ {
					t.Fatalf("kept a message whose length or type is not its header's: %x", msg)
				}
			})
			p = p[n:]
		}
	})
}
