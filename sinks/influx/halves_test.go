package influx

import (
	"strings"
	"testing"

	"github.com/meshd/meshd/sinks/influx/spool"
)

func TestHalves(t *testing.T) {
	for _, tc := range []struct {
		data          string
		first, second string
		ok            bool
	}{
		{"a 1\nb 2\nc 3\nd 4\n", "a 1\nb 2\n", "c 3\nd 4\n", true},
		{"a 1\nb 2\n", "a 1\n", "b 2\n", true},
		{"long line number one\nb\n", "long line number one\n", "b\n", true},
		{"a\nlong line number two\n", "a\n", "long line number two\n", true},
		{"only one line\n", "", "", false},
	} {
		b := spool.Batch{Data: []byte(tc.data), Points: strings.Count(tc.data, "\n")}
		f, s, ok := halves(b)
		if ok != tc.ok || string(f.Data) != tc.first || string(s.Data) != tc.second {
			t.Errorf("halves(%q) = %q, %q, %v; want %q, %q, %v", tc.data, f.Data, s.Data, ok, tc.first, tc.second, tc.ok)
			continue
		}
		if ok && (f.Points != strings.Count(tc.first, "\n") || f.Points+s.Points != b.Points) {
			t.Errorf("halves(%q) points %d + %d of %d", tc.data, f.Points, s.Points, b.Points)
		}
	}
}
