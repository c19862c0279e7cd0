package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/meshd/meshd/bmpbridge/bmpgen"
	"github.com/meshd/meshd/internal/testenv"
)

// RPKIScenario is route origin validation on the real `meshd run` with
// every sink on: a BMP router's table validated as it comes against a
// real RTR cache's VRPs (Debian's stayrtr), then the VRPs changed by
// serial deltas of a few sizes and by a whole set withdrawn and given
// back (what a cache's reset or expiry costs), each time timing the
// validation of the affected routes again.
//
// The VRPs are built from the table itself: ValidShare of its routes
// have a VRP of their own prefix and origin, InvalidShare one naming
// another AS, the rest none (the real RPKI covers about half of the
// routes, with a percent or so invalid). A delta of n withdraws n/2
// VRPs of valid routes and adds n/2 for routes that had none: each
// changes its own route's state (one peer: a route per prefix), and
// those of the table's routes under its prefix, which a random table
// has more of than the real one.
type RPKIScenario struct {
	Name                     string
	Routes, Peers            int
	ValidShare, InvalidShare float64
	Deltas                   []int
}

var rpkiScenarios = []RPKIScenario{
	{Name: "1M", Routes: 1_000_000, Peers: 1, ValidShare: 0.55, InvalidShare: 0.01, Deltas: []int{100, 1000, 10000}},
}

// rpkiShort is what CI runs (TestRPKIShort).
var rpkiShort = RPKIScenario{Name: "short", Routes: 20_000, Peers: 1, ValidShare: 0.55, InvalidShare: 0.01, Deltas: []int{100}}

// RPKIPass is one VRP change's figures.
type RPKIPass struct {
	What string
	VRPs int // VRPs that came or went
	// Pass is meshd's own time validating again (its histogram's sum),
	// EndToEnd from the VRP file's write to every expected state change
	// counted (stayrtr reads the file every second: up to 1 s of it is
	// the cache's), CPU meshd's CPU meanwhile. Cache is the part of it
	// until meshd's table held the delta (meshd_rpki_cache_last_sync_seconds):
	// stayrtr reading its file again, the RTR exchange and the table's
	// update; the rest is meshd's queueing and its pass.
	Pass, EndToEnd, CPU, Cache time.Duration
	Revalidated, Changed       float64
}

// RPKIResult is one run's figures.
type RPKIResult struct {
	Routes, VRPs      int
	Valid             int           // routes with a VRP of their own origin
	LoadTime, LoadCPU time.Duration // the table's ingest, validated as it comes
	Passes            []RPKIPass
	RSS, PeakRSS      int64
}

func (r *RPKIResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d routes, %d VRPs: table taken in %v (meshd %.1f CPU s, validating as it came); RSS %.0f MiB (peak %.0f MiB)\n",
		r.Routes, r.VRPs, r.LoadTime.Round(time.Millisecond), r.LoadCPU.Seconds(), float64(r.RSS)/(1<<20), float64(r.PeakRSS)/(1<<20))
	for _, p := range r.Passes {
		fmt.Fprintf(&b, "  %-28s %7d VRPs: %9.0f routes validated again, %7.0f changed state; meshd's pass %v, end to end %v (cache and table %v), meshd CPU %.3f s\n",
			p.What, p.VRPs, p.Revalidated, p.Changed, p.Pass.Round(10*time.Microsecond), p.EndToEnd.Round(time.Millisecond), p.Cache.Round(time.Millisecond), p.CPU.Seconds())
	}
	return b.String()
}

// histogram reads a histogram's count and sum.
func histogram(mfs map[string]*dto.MetricFamily, name string) (count uint64, sum float64) {
	mf := mfs[name]
	if mf == nil {
		return 0, 0
	}
	for _, m := range mf.GetMetric() {
		if h := m.GetHistogram(); h != nil {
			count += h.GetSampleCount()
			sum += h.GetSampleSum()
		}
	}
	return count, sum
}

func runRPKI(tb testing.TB, bins binaries, sc RPKIScenario) (*RPKIResult, error) {
	dir := tb.TempDir()
	in := testenv.StartInfluxd(tb)

	type route struct {
		p      netip.Prefix
		origin uint32
	}
	var routes []route
	table := filepath.Join(dir, "table.bin")
	msgs, n, err := writeTable(table, bmpgen.TableConfig{SysName: "rpki-router", Peers: sc.Peers, Routes: sc.Routes, V6Share: 0.15,
		NewAttrShare: 0.35, Seed: 7, OnRoute: func(peer int, p netip.Prefix, origin uint32) {
			if peer == 0 {
				routes = append(routes, route{p, origin})
			}
		}})
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(7, 11))
	var roas []testenv.ROA
	var validAt, noneAt []int // indexes in roas, and in routes
	for i, r := range routes {
		switch x := rng.Float64(); {
		case x < sc.ValidShare:
			validAt = append(validAt, len(roas))
			roas = append(roas, testenv.ROA{Prefix: r.p.String(), MaxLength: r.p.Bits(), ASN: r.origin})
		case x < sc.ValidShare+sc.InvalidShare:
			roas = append(roas, testenv.ROA{Prefix: r.p.String(), MaxLength: r.p.Bits(), ASN: r.origin%64000 + 1})
		default:
			noneAt = append(noneAt, i)
		}
	}
	cache := testenv.StartStayRTR(tb, 2, roas)
	res := &RPKIResult{Routes: n, VRPs: len(roas)}

	cfg := filepath.Join(dir, "meshd.yaml")
	conf := meshdConfig(Scenario{}, "", in.URL, dir) + fmt.Sprintf("rpki:\n  caches: [%q]\n", cache.Addr)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	m, err := startMeshd(bins.meshd, cfg, filepath.Join(dir, "meshd.log"))
	if err != nil {
		return nil, err
	}
	defer m.stop()
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", portHTTP)
	held := 0
	if err := waitFor(5*time.Minute, 100*time.Millisecond, func() (bool, error) {
		mfs, err := scrape(metricsURL)
		held = int(sum(mfs, "meshd_rpki_vrps"))
		return err == nil && held == len(roas), m.exited()
	}); err != nil {
		log, _ := os.ReadFile(m.logPath)
		return nil, fmt.Errorf("meshd did not hold the cache's %d VRPs (%d): %w; meshd's log ends:\n%s", len(roas), held, err, tail(log, 3000))
	}

	cpu0, _ := procCPU(m.pid())
	start := time.Now()
	_, conn, err := sendTable(table, fmt.Sprintf("127.0.0.1:%d", portBMP))
	if err != nil {
		return nil, err
	}
	defer conn.Close() // a router's session stays: closing it withdraws the table
	if err := waitFor(20*time.Minute, 100*time.Millisecond, func() (bool, error) {
		mfs, err := scrape(metricsURL)
		return err == nil && int(sum(mfs, "meshd_bmp_messages_total")) >= msgs, m.exited()
	}); err != nil {
		return nil, fmt.Errorf("the bridge did not take the table: %w", err)
	}
	res.LoadTime = time.Since(start)
	cpu1, _ := procCPU(m.pid())
	res.LoadCPU = cpu1 - cpu0

	// pass writes vrps and waits for want state changes.
	pass := func(what string, vrps []testenv.ROA, changedVRPs int, want float64) error {
		before, err := scrape(metricsURL)
		if err != nil {
			return err
		}
		c0, s0 := histogram(before, "meshd_bmp_rpki_revalidation_seconds")
		rv0, ch0 := sum(before, "meshd_bmp_rpki_revalidated_routes_total"), sum(before, "meshd_bmp_rpki_state_changes_total")
		cpu0, _ := procCPU(m.pid())
		t0 := time.Now()
		cache.Write(vrps)
		var after map[string]*dto.MetricFamily
		if err := waitFor(2*time.Minute, 20*time.Millisecond, func() (bool, error) {
			mfs, err := scrape(metricsURL)
			if err != nil {
				return false, err
			}
			after = mfs
			c, _ := histogram(mfs, "meshd_bmp_rpki_revalidation_seconds")
			return c > c0 && sum(mfs, "meshd_bmp_rpki_state_changes_total")-ch0 >= want, m.exited()
		}); err != nil {
			log, _ := os.ReadFile(m.logPath)
			c, _ := histogram(after, "meshd_bmp_rpki_revalidation_seconds")
			return fmt.Errorf("%s: %w (passes %d→%d, state changes %.0f of %.0f, VRPs held %.0f of %d); meshd's log ends:\n%s", what, err, c0, c,
				sum(after, "meshd_bmp_rpki_state_changes_total")-ch0, want, sum(after, "meshd_rpki_vrps"), len(vrps), tail(log, 3000))
		}
		p := RPKIPass{What: what, VRPs: changedVRPs, EndToEnd: time.Since(t0)}
		if synced := sum(after, "meshd_rpki_cache_last_sync_seconds"); synced > 0 {
			p.Cache = time.Unix(0, int64(synced*1e9)).Sub(t0)
		}
		cpu1, _ := procCPU(m.pid())
		p.CPU = cpu1 - cpu0
		_, s1 := histogram(after, "meshd_bmp_rpki_revalidation_seconds")
		p.Pass = time.Duration((s1 - s0) * float64(time.Second))
		p.Revalidated = sum(after, "meshd_bmp_rpki_revalidated_routes_total") - rv0
		p.Changed = sum(after, "meshd_bmp_rpki_state_changes_total") - ch0
		res.Passes = append(res.Passes, p)
		return nil
	}
	// Each delta starts from the whole set again.
	for _, d := range sc.Deltas {
		half := d / 2
		if half > len(validAt) || half > len(noneAt) {
			return nil, fmt.Errorf("delta %d: the table has %d valid and %d uncovered routes", d, len(validAt), len(noneAt))
		}
		drop := map[int]bool{}
		for _, i := range validAt[:half] {
			drop[i] = true
		}
		var next []testenv.ROA
		for i, r := range roas {
			if !drop[i] {
				next = append(next, r)
			}
		}
		for _, i := range noneAt[:half] {
			r := routes[i]
			next = append(next, testenv.ROA{Prefix: r.p.String(), MaxLength: r.p.Bits(), ASN: r.origin})
		}
		if err := pass(fmt.Sprintf("serial delta of %d", 2*half), next, 2*half, float64(2*half)); err != nil {
			return nil, err
		}
		if err := pass("back", roas, 2*half, float64(2*half)); err != nil {
			return nil, err
		}
	}
	// A whole set changed, as a cache's reset or a wrong ROA file would:
	// every VRP names another AS (stayrtr refuses an empty file), then
	// back. Every valid route's state changes at least (an invalid one's
	// VRP names another AS either way).
	moved := make([]testenv.ROA, len(roas))
	for i, r := range roas {
		r.ASN = r.ASN%64000 + 7
		moved[i] = r
	}
	if err := pass("every VRP to another AS", moved, 2*len(roas), float64(len(validAt))); err != nil {
		return nil, err
	}
	if err := pass("every VRP back", roas, 2*len(roas), float64(len(validAt))); err != nil {
		return nil, err
	}
	res.Valid = len(validAt)
	res.RSS, res.PeakRSS, _ = procMem(m.pid())
	return res, m.exited()
}
