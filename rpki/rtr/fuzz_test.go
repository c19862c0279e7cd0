package rtr

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net/netip"
	"testing"

	gortr "github.com/osrg/gobgp/v4/pkg/packet/rtr"
)

// FuzzPDUs feeds a stream of bytes to the client as a cache's answer:
// whatever it holds, the client returns an error or takes it, and never
// panics.
func FuzzPDUs(f *testing.F) {
	add := func(b []byte, _ error) []byte { return b }
	f.Add(append(append(add(gortr.NewRTRCacheResponse(1).Serialize()),
		add(gortr.NewRTRIPPrefix(netip.MustParseAddr("2001:db8::"), 32, 48, 64500, gortr.ANNOUNCEMENT).Serialize())...),
		add(gortr.NewRTREndOfData(1, 7).Serialize())...))
	f.Add(add(gortr.NewRTRErrorReport(gortr.UNSUPPORTED_PROTOCOL_VERSION, []byte{1, 2}, []byte("no")).Serialize()))
	f.Add(add(gortr.NewRTRCacheReset().Serialize()))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := New(Config{Addr: "fuzz"}, slog.New(slog.NewTextHandler(io.Discard, nil)), func(Delta) {})
		pdus := make(chan pduOrErr)
		go read(bufio.NewReader(bytes.NewReader(data)), pdus)
		var pend *pending
		failed := false
		for p := range pdus {
			if failed || p.err != nil {
				failed = true
				continue // drain
			}
			if _, err := c.handle(p.b, &pend, func() error { return nil }); err != nil {
				failed = true
			}
		}
	})
}
