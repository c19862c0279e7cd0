package e2e

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// soakRow is one row of the soak: its name (a sub-benchmark's) and how it
// runs at the full size or the short one.
type soakRow struct {
	name string
	run  func(tb testing.TB, bins binaries, full bool, dur time.Duration) (*SoakRow, error)
}

// Loads: the full soak's are issue 17's; the short ones are what CI's
// 2-core machine carries beside the other tests.
var (
	soakFullLoad  = SoakLoad{Targets: 100, Neighbors: 100, PointsPerSec: 20000}
	soakShortLoad = SoakLoad{Targets: 20, Neighbors: 20, PointsPerSec: 2000}

	stormFull  = BMPStorm{Sessions: 8, Messages: 2_000_000, Over: 30 * time.Second, FlapRoutes: 1000}
	stormShort = BMPStorm{Sessions: 8, Messages: 100_000, Over: 15 * time.Second, FlapRoutes: 100}
	fuzzFull   = BMPFuzz{Sessions: 4, Messages: 10_000_000, ControlRoutes: 200_000, Seed: 1, BreakEvery: 50_000}
	fuzzShort  = BMPFuzz{Sessions: 4, Messages: 100_000, ControlRoutes: 20_000, Seed: 1, BreakEvery: 10_000}
)

func gnmiRow(name string, f Fault) soakRow {
	return soakRow{name, func(tb testing.TB, bins binaries, full bool, dur time.Duration) (*SoakRow, error) {
		load := soakShortLoad
		if full {
			load = soakFullLoad
			if n, err := strconv.Atoi(os.Getenv("MESHD_SOAK_RATE")); err == nil && n > 0 {
				load.PointsPerSec = n
			}
		}
		return runSoak(tb, bins, f, load, dur)
	}}
}

// soakRows are the soak's faults in the order they run.
var soakRows = []soakRow{
	gnmiRow("influx-down", FaultInfluxDown),
	gnmiRow("influx-slow", FaultInfluxSlow),
	gnmiRow("slow-subscriber", FaultSlowSubscriber),
	gnmiRow("clock-step", FaultClockStep),
	gnmiRow("gnmi-garbage", FaultGNMIGarbage),
	gnmiRow("disk", FaultDisk),
	gnmiRow("kill-9", FaultKill),
	{"bmp-storm", func(tb testing.TB, bins binaries, full bool, _ time.Duration) (*SoakRow, error) {
		if full {
			return runBMPStorm(tb, bins, stormFull)
		}
		return runBMPStorm(tb, bins, stormShort)
	}},
	{"bmp-fuzz", func(tb testing.TB, bins binaries, full bool, _ time.Duration) (*SoakRow, error) {
		if full {
			fz := fuzzFull
			// MESHD_SOAK_FUZZ sets the fuzzed messages, to profile a
			// shorter run.
			if n, err := strconv.Atoi(os.Getenv("MESHD_SOAK_FUZZ")); err == nil && n > 0 {
				fz.Messages = n
			}
			return runBMPFuzz(tb, bins, fz)
		}
		return runBMPFuzz(tb, bins, fuzzShort)
	}},
}

// BenchmarkSoak is the full soak (make soak): each InfluxDB or process
// fault for 5 minutes (MESHD_SOAK_FAULT overrides) at 20k points/s
// (MESHD_SOAK_RATE overrides), the
// BMP storm and the fuzzer at issue 17's sizes; a row that loses a point,
// or whose meshd dropped one, fails.
func BenchmarkSoak(b *testing.B) {
	bins, err := build(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	dur := 5 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("MESHD_SOAK_FAULT")); err == nil {
		dur = d
	}
	var rows []*SoakRow
	for _, r := range soakRows {
		b.Run(r.name, func(b *testing.B) {
			for range b.N {
				row, err := r.run(b, bins, true, dur)
				if row != nil {
					rows = append(rows, row)
					fmt.Print(SoakTable([]*SoakRow{row}))
				}
				if err != nil {
					b.Fatal(err)
				}
				checkSoakRow(b, row)
			}
		})
	}
	if len(rows) > 0 {
		fmt.Print("\n== soak\n" + SoakTable(rows))
	}
}

// checkSoakRow fails a row that lost a point, counted points from
// nowhere, or whose meshd dropped anything.
func checkSoakRow(tb testing.TB, r *SoakRow) {
	tb.Helper()
	if r.Expected == 0 {
		tb.Errorf("%s: no point expected: the load did not run", r.Fault)
	}
	if r.Lost != 0 {
		tb.Errorf("%s: %d of %d points lost (%d found in InfluxDB)", r.Fault, r.Lost, r.Expected, r.Found)
	}
	if r.Found > r.Expected {
		tb.Errorf("%s: %d points found, %d expected: points the sources did not send", r.Fault, r.Found, r.Expected)
	}
	if r.MeshdDropped != 0 {
		tb.Errorf("%s: meshd's counters say it dropped %.0f", r.Fault, r.MeshdDropped)
	}
	if r.SpoolPeak > r.SpoolBound {
		tb.Errorf("%s: spool peak %d bytes over its bound %d", r.Fault, r.SpoolPeak, r.SpoolBound)
	}
	// Fuzzed messages carry fuzzed timestamps, so the fuzz row holds
	// events of one series that share one: each must still be a point.
	if r.Overwritten != 0 {
		tb.Errorf("%s: %d points overwrote another of their series and time in InfluxDB", r.Fault, r.Overwritten)
	}
	if r.Failed != "" {
		tb.Errorf("%s: %s", r.Fault, r.Failed)
	}
}

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		line, id string
	}{
		{`bgp_neighbor,neighbor=10.0.0.1,router=r1 updates_rx=5i 1700000000000000001`,
			"bgp_neighbor\x00neighbor=10.0.0.1\x00router=r1\x001700000000000000001"},
		// Escaped comma, space and equals sign in tag values; a tag with
		// an empty value is not stored by InfluxDB, so not in the id.
		{`bmp_route,rib=a\,b,router=r\ 1,x\=y=1 prefix="10.0.0.0/8 x" 5`,
			"bmp_route\x00rib=a,b\x00router=r 1\x00x=y=1\x005"},
		{`meshd_router,router=r1 n=1i 7`, "meshd_router\x00router=r1\x007"},
	} {
		meas, tags, ts, err := parseLine(tc.line)
		if err != nil {
			t.Errorf("parseLine(%q): %v", tc.line, err)
			continue
		}
		if got := pointID(meas, tags, ts); got != tc.id {
			t.Errorf("parseLine(%q): id %q, want %q", tc.line, got, tc.id)
		}
	}
	if _, _, _, err := parseLine("no_timestamp"); err == nil {
		t.Error("parseLine of a line without fields and time: no error")
	}
}

func TestDuplicated(t *testing.T) {
	p := &influxProxy{lines: map[string]int64{}, lastAck: map[string]time.Time{}, acked: map[int64]int64{}}
	p.trackKeys()
	p.record([]byte("m,t=1 f=1i 10\nm,t=1 f=1i 11\nm,t=2 f=1i 10\n"), time.Now())
	p.record([]byte("m,t=1 f=1i 10\n"), time.Now()) // the same line again: a re-send
	p.record([]byte("m,t=1 f=2i 11\n"), time.Now()) // another line on a stored point
	dup, over := p.duplicated()
	if dup != 2 || over != 1 {
		t.Errorf("duplicated() = %d, %d; want 2 duplicates, 1 overwritten", dup, over)
	}
}

func TestMessageBounds(t *testing.T) {
	one := []byte{3, 0, 0, 0, 6, 4}
	two := append(append([]byte{}, one...), one...)
	if b, err := messageBounds(two); err != nil || len(b) != 3 || b[1] != 6 || b[2] != 12 {
		t.Errorf("messageBounds(two messages) = %v, %v", b, err)
	}
	for _, bad := range [][]byte{{3, 0, 0}, {3, 0, 0, 0, 5, 4}, {3, 0, 0, 0, 9, 4}} {
		if _, err := messageBounds(bad); err == nil {
			t.Errorf("messageBounds(%v): no error", bad)
		}
	}
}
