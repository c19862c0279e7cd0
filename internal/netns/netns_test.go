package netns

import (
	"errors"
	"testing"
)

func TestPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"mlab-r1", "/run/netns/mlab-r1"},
		{"/var/run/netns/x", "/var/run/netns/x"},
		{"/proc/1/ns/net", "/proc/1/ns/net"},
	} {
		if got := Path(tc.in); got != tc.want {
			t.Errorf("Path(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// An empty namespace runs fn where it is and returns its error as is.
func TestDoHere(t *testing.T) {
	sentinel := errors.New("x")
	if err := Do("", func() error { return sentinel }); err != sentinel {
		t.Errorf("Do(\"\") returned %v", err)
	}
}
