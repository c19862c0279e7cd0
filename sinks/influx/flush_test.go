package influx

import "testing"

func TestWholeLines(t *testing.T) {
	b := []byte("a 1\nbb 2\nccc 3\n")
	for _, tc := range []struct {
		limit, want int
	}{
		{100, 15}, // all of it
		{15, 15},
		{14, 9}, // two lines
		{9, 9},
		{8, 4},
		{4, 4},
		{3, 4}, // shorter than the first line: the first line anyway
		{1, 4},
	} {
		if got := wholeLines(b, tc.limit); got != tc.want {
			t.Errorf("wholeLines(limit %d) = %d, want %d", tc.limit, got, tc.want)
		}
	}
	if got := wholeLines([]byte("no newline"), 3); got != 10 {
		t.Errorf("without a newline: %d, want the whole buffer", got)
	}
}
