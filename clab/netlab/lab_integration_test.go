//go:build integration

package netlab_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/clab/netlab"
	"github.com/meshd/meshd/internal/sessions"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/internal/tools"
)

// labEnv is a running lab and the ways a test reads what meshd saw.
type labEnv struct {
	t   *testing.T
	lab *netlab.Lab
	gc  gpb.GNMIClient
}

// bins holds the binaries every lab test of this process runs: built
// once, as `make build` does, by one go build that links the three at
// once; a build per test cost half a minute of CI.
var bins struct {
	once sync.Once
	dir  string
	out  []byte
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// buildBins builds meshd, meshd-probe and meshd-lab into one folder and
// returns the lab options that run them.
func buildBins(t *testing.T) netlab.Options {
	t.Helper()
	bins.once.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			bins.err = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		if bins.dir, bins.err = os.MkdirTemp("", "meshd-lab-bins-"); bins.err != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", bins.dir+string(filepath.Separator), "./cmd/meshd", "./cmd/meshd-probe", "./cmd/meshd-lab")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(out)))
		bins.out, bins.err = cmd.CombinedOutput()
	})
	if bins.err != nil {
		t.Fatalf("build meshd, meshd-probe, meshd-lab: %v\n%s", bins.err, bins.out)
	}
	return netlab.Options{Meshd: filepath.Join(bins.dir, "meshd"), Probe: filepath.Join(bins.dir, "meshd-probe"),
		Lab: filepath.Join(bins.dir, "meshd-lab"), Bin: tools.Look}
}

// upLab brings a lab up in a test folder within timeout, and down at
// the test's end.
func upLab(t *testing.T, o netlab.Options, timeout time.Duration) *netlab.Lab {
	t.Helper()
	o.Dir = t.TempDir()
	if d := os.Getenv("MESHD_LAB_KEEP"); d != "" {
		// The lab's files (meshd's log among them) kept for a look after.
		o.Dir = filepath.Join(d, t.Name())
		_ = os.RemoveAll(o.Dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	l, err := netlab.Up(ctx, o)
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		if err := netlab.Down(o.Dir, nil); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return l
}

func startLab(t *testing.T) *labEnv {
	t.Helper()
	// Five routers: the ring plus a chord r1-r3, so r2 can be an extra
	// hop; with the RPKI cache, and meshd watching the routers' prefixes.
	return startLabWith(t, 5, true)
}

func startLabN(t *testing.T, routers int) *labEnv {
	t.Helper()
	return startLabWith(t, routers, false)
}

func startLabWith(t *testing.T, routers int, rpki bool) *labEnv {
	t.Helper()
	testenv.RequireRoot(t)
	bins := []string{"gobgpd", "gobgp", "bgpd", "vtysh", "bird", "birdc", "influxd", "ethtool"}
	if rpki {
		bins = append(bins, "stayrtr")
	}
	for _, b := range bins {
		testenv.Binary(t, b)
	}
	o := buildBins(t)
	o.Routers, o.RPKI = routers, rpki
	l := upLab(t, o, 2*time.Minute+time.Duration(routers)*5*time.Second)
	conn, err := netlab.NSConn(netlab.MgmtNS, fmt.Sprintf("127.0.0.1:%d", netlab.GNMIPort))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &labEnv{t: t, lab: l, gc: gpb.NewGNMIClient(conn)}
}

func (e *labEnv) rows() map[string]sessions.Row {
	c := netlab.NSHTTPClient(netlab.MgmtNS)
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/api/sessions", netlab.HTTPPort))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var rows []sessions.Row
	if json.NewDecoder(resp.Body).Decode(&rows) != nil {
		return nil
	}
	out := map[string]sessions.Row{}
	for _, r := range rows {
		out[r.Router+" "+r.Neighbor] = r
	}
	return out
}

// influxRows returns the rows of a query's first series set.
func (e *labEnv) influxRows(q string) ([][]any, bool) {
	c := netlab.NSHTTPClient(netlab.MgmtNS)
	resp, err := c.Get(fmt.Sprintf("http://%s:%d/query?db=meshd&q=%s", netlab.MgmtAddr, netlab.InfluxPort, url.QueryEscape(q)))
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	var res struct {
		Results []struct {
			Series []struct {
				Values [][]any `json:"values"`
			} `json:"series"`
			Error string `json:"error"`
		} `json:"results"`
	}
	if json.NewDecoder(resp.Body).Decode(&res) != nil || len(res.Results) == 0 {
		return nil, false
	}
	if res.Results[0].Error != "" {
		e.t.Fatalf("InfluxQL %q: %s", q, res.Results[0].Error)
	}
	var rows [][]any
	for _, s := range res.Results[0].Series {
		rows = append(rows, s.Values...)
	}
	return rows, true
}

// influxCount counts points of a query's first field since t0.
func (e *labEnv) influxCount(q string) int {
	rows, ok := e.influxRows(q)
	if !ok {
		return -1
	}
	n := 0
	for _, v := range rows {
		if len(v) > 1 {
			if f, ok := v[1].(float64); ok {
				n += int(f)
			}
		}
	}
	return n
}

// rttSample is one RTT sample of the probe's as InfluxDB holds it.
type rttSample struct {
	at  int64 // when the probe took it (last_sample_ns), Unix ns
	rtt float64
}

// influxRTTs returns every RTT sample of a router towards a neighbor, in
// the order they were taken, each once: the sink writes a sample's
// rtt_us with its last_sample_ns, and again in each of its snapshots.
func (e *labEnv) influxRTTs(router, nbr string) []rttSample {
	rows, _ := e.influxRows(fmt.Sprintf(`SELECT "rtt_us", "last_sample_ns" FROM "bgp_keepalive" WHERE "router" = '%s' AND "neighbor" = '%s'`, router, nbr))
	var out []rttSample
	seen := map[int64]bool{}
	for _, v := range rows {
		if len(v) < 3 {
			continue
		}
		rtt, ok1 := v[1].(float64)
		at, ok2 := v[2].(float64)
		if ok1 && ok2 && !seen[int64(at)] {
			seen[int64(at)] = true
			out = append(out, rttSample{at: int64(at), rtt: rtt})
		}
	}
	slices.SortFunc(out, func(a, b rttSample) int { return cmp.Compare(a.at, b.at) })
	return out
}

// gnmiSession reads a neighbor's session-state and established-transitions
// from meshd's own gNMI target.
func (e *labEnv) gnmiSession(router, nbr string) (state string, transitions uint64, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := e.gc.Get(ctx, &gpb.GetRequest{
		Prefix: &gpb.Path{Target: router},
		Path: []*gpb.Path{
			change.NeighborPath("default", nbr, "state", "session-state"),
			change.NeighborPath("default", nbr, "state", "established-transitions"),
		},
		Encoding: gpb.Encoding_PROTO,
	})
	if err != nil {
		return "", 0, false
	}
	for _, n := range resp.GetNotification() {
		for _, u := range n.GetUpdate() {
			p := append(append([]*gpb.PathElem{}, n.GetPrefix().GetElem()...), u.GetPath().GetElem()...)
			switch p[len(p)-1].GetName() {
			case "session-state":
				state, ok = u.GetVal().GetStringVal(), true
			case "established-transitions":
				transitions = u.GetVal().GetUintVal()
			}
		}
	}
	return state, transitions, ok
}

// sinceQ is the InfluxQL time bound for events after start: routers stamp
// BMP messages themselves, some only to the second, so a second of slack.
func sinceQ(start time.Time) string {
	return fmt.Sprintf("time > %d", start.Add(-time.Second).UnixNano())
}

// detectHops is how many processes, each woken in turn, carry a fault to
// what a test reads: the router's daemon, meshd reading the BMP or gNMI
// stream and applying it, the sink, and the answer to the test's query.
const detectHops = 4

// waitDetect polls cond every 20 ms from start, when the fault was asked
// for, and returns how long it took to hold. The requirement is limit
// (issue 8: within 2 s, a probe fault within one keepalive interval +
// 2 s, a link within its hold time + 2 s), for a machine that runs the
// lab's processes when they wake. A loaded one wakes each of them late,
// and the test's own polls as much: they run at the lab's priority. So
// the bound is limit, plus how long the fault's own command took (it
// took effect somewhere before applied, when the call returned; a loaded
// run's reset command took 2.4 s), plus detectHops times the worst
// lateness of a poll (its sleep and query beyond the 20 ms), both
// measured meanwhile; a quiet machine adds a few tens of ms. Polling
// goes on past the bound, to report how late a miss was.
func waitDetect(t *testing.T, limit time.Duration, what string, start, applied time.Time, cond func() bool) time.Duration {
	t.Helper()
	const poll = 20 * time.Millisecond
	var worst time.Duration
	for {
		t0 := time.Now()
		ok := cond()
		d := time.Since(start)
		call := applied.Sub(start)
		bound := limit + call + detectHops*worst
		if ok {
			t.Logf("detected %s after %v (bound %v: %v + the fault's command %v + %d × worst poll lateness %v)", what, d.Round(time.Millisecond),
				bound.Round(time.Millisecond), limit, call.Round(time.Millisecond), detectHops, worst.Round(time.Millisecond))
			if d > bound {
				t.Errorf("%s detected after %v, want within %v", what, d.Round(time.Millisecond), bound.Round(time.Millisecond))
			}
			return d
		}
		if d > bound+time.Minute {
			t.Errorf("%s not detected within %v (bound %v)", what, d.Round(time.Millisecond), bound.Round(time.Millisecond))
			return d
		}
		time.Sleep(poll)
		worst = max(worst, time.Since(t0)-poll)
	}
}

func TestLab(t *testing.T) {
	e := startLab(t)
	const r1r2 = "r1 10.100.1.2"

	// Every session of the 6 links is up (IPv4 and IPv6, both ends), with
	// probe RTT.
	// BIRD (r5) has no BMP and no poller in the probe: meshd knows its
	// end of a session from the probe alone, so with no session-state.
	// The other session ends are gobgpd's and FRR's.
	want := 0
	for _, r := range e.lab.Topo.Routers {
		if r.Daemon != "bird" {
			want += len(e.lab.Topo.Peers(r))
		}
	}
	testenv.WaitFor(t, 90*time.Second, fmt.Sprintf("%d sessions ESTABLISHED with probe RTT in meshd", want), func() bool {
		rows := e.rows()
		up := 0
		for _, r := range rows {
			if r.State == "ESTABLISHED" && r.RTTus > 0 {
				up++
			}
		}
		return up == want
	})
	// Each session is seen by all three sources: the router's BMP export,
	// its gNMI view (the probe's --bgp) and the probe's RTT.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var partial []string
		for k, r := range e.rows() {
			sources := "bmp,gnmi,probe"
			if rt, _ := e.lab.Topo.Router(r.Router); rt.Daemon == "bird" {
				sources = "probe"
				if r.Neighbor == netlab.MgmtAddr {
					// Its session with meshd's peering source, told
					// to the bridge as BMP.
					sources = "bmp"
				}
			}
			if r.Sources != sources {
				partial = append(partial, k+" ("+r.Sources+")")
			}
		}
		if len(partial) == 0 {
			break
		}
		if time.Now().After(deadline) {
			slices.Sort(partial)
			t.Fatalf("sessions not seen by all of BMP, gNMI and the probe: %s", strings.Join(partial, "; "))
		}
	}

	// BIRD has no BMP: its routes come over its BGP session with meshd's
	// peering source, which joins its record as a session of its own.
	t.Run("bird peering", func(t *testing.T) {
		for _, rt := range e.lab.Topo.Routers {
			if rt.Daemon != "bird" {
				continue
			}
			key := rt.Name + " " + netlab.MgmtAddr
			var exported, held int
			testenv.WaitFor(t, 30*time.Second, key+": meshd holds what BIRD exports to it", func() bool {
				row, ok := e.rows()[key]
				if !ok || row.State != "ESTABLISHED" {
					return false
				}
				out, err := e.lab.Birdc(rt, "show", "route", "export", "meshd", "count")
				if err != nil {
					return false
				}
				// Two channels (IPv4, IPv6): the last line is their total.
				m := regexp.MustCompile(`(?:^|\n)(?:Total: )?(\d+) of \d+ routes[^\n]*\s*$`).FindSubmatch(out)
				if m == nil {
					return false
				}
				exported, _ = strconv.Atoi(string(m[1]))
				held = 0
				for _, c := range row.AfiSafis {
					if c.Sent != nil {
						held += int(*c.Sent)
					}
				}
				return exported > 0 && held == exported
			})
			t.Logf("%s: BIRD exports %d routes to meshd, meshd holds %d", rt.Name, exported, held)
		}
	})

	// The status page, in a real Chromium, lists every session meshd's
	// table has.
	page := openPage(t, e)
	nRows := len(e.rows())
	page.waitPage(t, 30*time.Second, fmt.Sprintf("%d sessions listed", nRows),
		fmt.Sprintf(`document.getElementById("sessions").dataset.sessions === "%d" && document.querySelectorAll("tr.session").length === %d`, nRows, nRows))
	const r1r2ID = "r1|default|10.100.1.2"

	// 30 s is three hold times; make lab-soak holds a lab quiet for 10
	// minutes (MESHD_LAB_QUIET, as TestLabVerify's quiet period).
	t.Run("quiet", func(t *testing.T) {
		quiet := envDuration(t, "MESHD_LAB_QUIET", 30*time.Second)
		start := time.Now()
		time.Sleep(quiet)
		q := `SELECT count("n") FROM "bgp_session_event" WHERE ` + sinceQ(start.Add(time.Second))
		if n := e.influxCount(q); n != 0 {
			t.Errorf("a quiet lab produced %d session or path-change events in %v", n, quiet)
		}
		// No alert, from the lab's start: every route is as its watch
		// and its ROA expect.
		if n := e.influxCount(`SELECT count("n") FROM "meshd_alert"`); n != 0 {
			t.Errorf("a quiet lab produced %d alert events since it started", n)
		}
		if as, ok := e.gnmiAlerts(); !ok || len(as) != 0 {
			t.Errorf("open alerts on the gNMI target of a quiet lab: %v (read: %v)", as, ok)
		}
	})

	// When the reset subtest reset r1-r2: the delay's baseline leaves out
	// the samples of the session's first seconds after it.
	var resetAt time.Time
	page.watchRow(t, r1r2ID)
	meshdHealth := sampleHealth(e, r1r2)
	t.Run("reset", func(t *testing.T) {
		before := e.rows()[r1r2].Transitions
		_, gBefore, ok := e.gnmiSession("r1", "10.100.1.2")
		if !ok {
			t.Fatal("meshd's gNMI target has no session-state for r1 10.100.1.2")
		}
		start := time.Now()
		resetAt = start
		if err := e.lab.Fault("reset", "r1", "r2", ""); err != nil {
			t.Fatal(err)
		}
		applied := time.Now()
		waitDetect(t, 2*time.Second, "reset r1 r2 in meshd's state", start, applied, func() bool {
			r := e.rows()[r1r2]
			return r.State != "ESTABLISHED" || r.Transitions > before
		})
		waitDetect(t, 2*time.Second, "reset r1 r2 on meshd's gNMI target", start, applied, func() bool {
			st, tr, ok := e.gnmiSession("r1", "10.100.1.2")
			return ok && (st != "ESTABLISHED" || tr > gBefore)
		})
		q := `SELECT count("n") FROM "bgp_session_event" WHERE "router" = 'r1' AND "neighbor" = '10.100.1.2' AND "event" = 'peer_down' AND ` + sinceQ(start)
		waitDetect(t, 3*time.Second, "reset r1 r2 as a peer_down in InfluxDB", start, applied, func() bool { return e.influxCount(q) > 0 })
	})

	// The page's row turned DOWN and back, each within 2 s of meshd's
	// own table, and its timeline tells the reset.
	t.Run("page reset", func(t *testing.T) {
		defer func() { meshdHealth.stop(); <-meshdHealth.done }()
		testenv.WaitFor(t, 90*time.Second, "r1 10.100.1.2 DOWN and back in meshd's table", func() bool {
			_, back := downAndBack(meshdHealth.changes())
			return !back.IsZero()
		})
		testenv.WaitFor(t, 30*time.Second, "r1 10.100.1.2 DOWN and back on the page", func() bool {
			_, back := downAndBack(page.rowLog(t, r1r2ID))
			return !back.IsZero()
		})
		checkDownAndBack(t, meshdHealth.changes(), page.rowLog(t, r1r2ID))
		page.waitPage(t, 10*time.Second, "the reset in the event timeline",
			`[...document.querySelectorAll("#timeline li.peer_down")].some((li) => li.textContent.includes("r1 10.100.1.2"))`)
		page.shot(t, fleetShot)
	})

	t.Run("delay", func(t *testing.T) {
		testenv.WaitFor(t, 60*time.Second, "r1 10.100.1.2 re-established after the reset", func() bool {
			r := e.rows()[r1r2]
			return r.State == "ESTABLISHED" && r.RTTus > 0
		})
		// The RTT samples of r1's keepalives towards r2 that InfluxDB
		// has (the probe's rtt-last, one per keepalive, 3 s apart), taken
		// in [from, to).
		samples := func(from, to time.Time) []float64 {
			var out []float64
			for _, s := range e.influxRTTs("r1", "10.100.1.2") {
				if s.at >= from.UnixNano() && s.at < to.UnixNano() {
					out = append(out, s.rtt)
				}
			}
			return out
		}
		forever := time.Now().Add(time.Hour)
		// The baseline is the path's samples before the delay and after
		// it is cleared, minBaseline of them at least: a BGP reset does
		// not change the path, so the samples of the session before the
		// reset count too, and the lab's load may change while the test
		// runs, which the samples after the delay catch. A CI run that
		// took the baseline from the least of a few samples of a session
		// just re-established, on a machine building meanwhile, put it
		// at 438 µs, the path's under 200 µs, and failed. The session's
		// first 10 s after the reset are left out: it was exchanging
		// routes, not settled.
		var before []float64
		testenv.WaitFor(t, 2*time.Minute, fmt.Sprintf("%d RTT samples of r1 10.100.1.2 in InfluxDB", minBaseline), func() bool {
			now := time.Now()
			if resetAt.IsZero() {
				before = samples(time.Time{}, now)
			} else {
				before = append(samples(time.Time{}, resetAt), samples(resetAt.Add(10*time.Second), now)...)
			}
			return len(before) >= minBaseline
		})
		before = before[len(before)-minBaseline:]
		start := time.Now()
		// Frames from r2 to r1 carry r2's ACKs of r1's keepalives.
		if err := e.lab.Fault("delay", "r2", "r1", "20ms"); err != nil {
			t.Fatal(err)
		}
		applied := time.Now() // the delay holds from here on at the latest
		cleared := false
		clear := func() {
			if !cleared {
				cleared = true
				if err := e.lab.Fault("clear", "r2", "r1", ""); err != nil {
					t.Errorf("clear the delay: %v", err)
				}
			}
		}
		t.Cleanup(clear)
		waitDetect(t, 3*time.Second+2*time.Second, "delay r2 r1 20ms in the probe's RTT", start, applied, func() bool {
			r := e.rows()[r1r2]
			return r.RTTus > 15000
		})
		b, err := newDelayBounds(20000, before)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("baseline before the delay %v µs: %s", before, b)
		// Delayed samples, one keepalive apart, until the two least agree
		// within the baseline's spread: a least seen twice is the path's
		// RTT, not a delayed ACK of the peer's or a slow moment of the
		// user-space wire on a busy machine (a CI run saw five samples in
		// a row 0.5-10 ms late). At most 20 samples, so a wrong RTT still
		// fails. The first sample after the delay was set may straddle it
		// (a CI run saw 17.7 ms for 20 ms): it is not taken.
		var delayed []float64
		for deadline := time.Now().Add(20 * 5 * time.Second); ; time.Sleep(500 * time.Millisecond) {
			if all := samples(applied, forever); len(all) > 1 {
				delayed = all[1:min(len(all), 21)]
			}
			if b.confirmed(delayed) || len(delayed) >= 20 || time.Now().After(deadline) {
				break
			}
		}
		// The baseline's second half: samples after the delay is cleared.
		clear()
		end := time.Now()
		var after []float64
		testenv.WaitFor(t, 2*time.Minute, "10 RTT samples of r1 10.100.1.2 after the delay was cleared", func() bool {
			if all := samples(end, forever); len(all) > 1 {
				after = all[1:] // the first may straddle the clear
			}
			return len(after) >= 10
		})
		b, err = newDelayBounds(20000, append(before, after...))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("RTT samples under the delay %v µs; baseline after it %v µs; %s", delayed, after, b)
		if len(delayed) < b.MinDelayedSize {
			t.Fatalf("%d RTT samples in InfluxDB under the delay, want at least %d", len(delayed), b.MinDelayedSize)
		}
		if err := b.check(delayed); err != nil {
			t.Error(err)
		}
	})

	// The session's page plots the delay as a step in its RTT.
	t.Run("page delay", func(t *testing.T) {
		eval[bool](t, page, fmt.Sprintf(`(location.hash = "#/session/" + encodeURIComponent(%q), true)`, r1r2ID))
		page.waitPage(t, 30*time.Second, "the session's RTT plot", `document.querySelectorAll("#p-rtt .uplot").length === 1`)
		// Samples under 5 ms, then one over 15 ms: the 20 ms step.
		page.waitPage(t, 30*time.Second, "a step of 20 ms in the plotted RTT", `(() => {
			if (!series) return false;
			const r = series.rtt.filter((v) => v !== null);
			const i = r.findIndex((v) => v > 15);
			return i > 0 && r.slice(0, i).some((v) => v < 5);
		})()`)
		page.shot(t, sessionShot)
		eval[bool](t, page, `(location.hash = "#/", true)`)
	})

	t.Run("down", func(t *testing.T) {
		start := time.Now()
		if err := e.lab.Fault("down", "r3", "r4", ""); err != nil {
			t.Fatal(err)
		}
		applied := time.Now()
		t.Cleanup(func() { _ = e.lab.Fault("up", "r3", "r4", "") })
		// BGP notices a dead link when the 9 s hold timer expires.
		waitDetect(t, 9*time.Second+2*time.Second, "link r3-r4 down in meshd's state", start, applied, func() bool {
			return e.rows()["r3 10.100.3.2"].State != "ESTABLISHED"
		})
		q := `SELECT count("n") FROM "bgp_session_event" WHERE "router" = 'r3' AND "event" = 'peer_down' AND ` + sinceQ(start)
		waitDetect(t, 9*time.Second+3*time.Second, "link r3-r4 down as a peer_down in InfluxDB", start, applied, func() bool { return e.influxCount(q) > 0 })
	})

	t.Run("loss", func(t *testing.T) {
		const r1r5 = "r1 10.100.5.1"
		before := e.rows()[r1r5].Losses
		start := time.Now()
		// All of r5's frames to r1 lost: r1's keepalives go unacknowledged
		// and are retransmitted. Cleared once seen, well inside the hold time.
		if err := e.lab.Fault("loss", "r5", "r1", "100%"); err != nil {
			t.Fatal(err)
		}
		applied := time.Now()
		defer func() { _ = e.lab.Fault("clear", "r5", "r1", "") }()
		waitDetect(t, 3*time.Second+2*time.Second, "loss r5 r1 as probe loss", start, applied, func() bool {
			return e.rows()[r1r5].Losses > before
		})
		q := fmt.Sprintf(`SELECT max("loss") FROM "bgp_keepalive" WHERE "router" = 'r1' AND "neighbor" = '10.100.5.1' AND "loss" > %d AND `, before) + sinceQ(start)
		// Liveness: the sink flushes every second, a loaded machine later.
		testenv.WaitFor(t, 30*time.Second, "loss r5 r1 in InfluxDB", func() bool { return e.influxCount(q) > 0 })
	})

	t.Run("reroute", func(t *testing.T) {
		const r1r3 = "r1 10.100.6.2"
		if h := e.rows()[r1r3].Hops; h != 0 {
			t.Fatalf("r1-r3 hops %d before the reroute, want 0", h)
		}
		start := time.Now()
		if err := e.lab.Reroute("r1", "r3", "r2", false); err != nil {
			t.Fatal(err)
		}
		applied := time.Now()
		defer func() { _ = e.lab.Reroute("r1", "r3", "r2", true) }()
		waitDetect(t, 3*time.Second+2*time.Second, "reroute r1 r3 via r2 as one hop more", start, applied, func() bool {
			r := e.rows()[r1r3]
			return r.Hops == 1 && r.Health == "DEGRADED"
		})
		q := `SELECT count("n") FROM "bgp_session_event" WHERE "router" = 'r1' AND "neighbor" = '10.100.6.2' AND "event" = 'hop_change' AND ` + sinceQ(start)
		waitDetect(t, 3*time.Second+3*time.Second, "reroute as a hop_change event in InfluxDB", start, applied, func() bool { return e.influxCount(q) > 0 })
	})

	t.Run("hijack", func(t *testing.T) {
		start := time.Now()
		if err := e.lab.Hijack("r3", "10.200.1.0/25"); err != nil {
			t.Fatal(err)
		}
		applied := time.Now()
		// FRR stamps route monitoring with the route's own age, so the
		// event is found by its prefix, not by time (the lab's database is
		// new, and nothing else announces this prefix).
		q := `SELECT count("prefix") FROM "bgp_origin_change" WHERE "prefix" = '10.200.1.0/25'`
		waitDetect(t, 2*time.Second, "a more-specific of r1's prefix from r3 as an origin change in InfluxDB", start, applied, func() bool { return e.influxCount(q) > 0 })
	})

	alertSteps(t, e, page)
}
