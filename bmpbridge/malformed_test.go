package bmpbridge

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/bmpbridge/decode"
)

// TestMalformedLogging: every malformed message is logged with router and
// offset (the first few as warnings, the rest at debug level), and the
// warnings past the first few are summaries, at most one per
// badSummaryEvery, that add up to every message.
func TestMalformedLogging(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		gap       time.Duration // summary clock moved back by this halfway
		warnLines int           // warnings, the end-of-session summary included
	}{
		{"few", 3, 0, 3},
		{"exactly the limit", badLogLimit, 0, badLogLimit},
		{"many, summed at the end", 1000, 0, badLogLimit + 1},
		{"many, a summary due", 1000, badSummaryEvery, badLogLimit + 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			s := &session{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			for i := range tt.n {
				if i == tt.n/2 && tt.gap > 0 {
					s.badSummaryAt = s.badSummaryAt.Add(-tt.gap)
				}
				s.malformed("r1", &decode.Message{Type: "route-monitoring", Offset: int64(100 * i)}, errors.New("truncated NLRI"))
			}
			s.flushBad("r1")
			var warns, debugs, summed int
			for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				switch {
				case strings.Contains(l, "level=DEBUG"):
					debugs++
					if !strings.Contains(l, "router=r1") || !strings.Contains(l, "offset=") {
						t.Errorf("debug line without router or offset: %s", l)
					}
				case strings.Contains(l, "level=WARN"):
					warns++
					var n int
					if i := strings.Index(l, "since_last_warning="); i >= 0 {
						for _, c := range l[i+len("since_last_warning="):] {
							if c < '0' || c > '9' {
								break
							}
							n = n*10 + int(c-'0')
						}
						summed += n
					} else {
						summed++
					}
				}
			}
			if warns != tt.warnLines {
				t.Errorf("%d warnings, want %d:\n%s", warns, tt.warnLines, buf.String())
			}
			if summed != tt.n {
				t.Errorf("warnings account for %d messages, want %d", summed, tt.n)
			}
			if want := max(0, tt.n-badLogLimit); debugs != want {
				t.Errorf("%d debug lines, want %d", debugs, want)
			}
		})
	}
}
