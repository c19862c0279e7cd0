//go:build integration

package netlab_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/clab/netlab"
	"github.com/meshd/meshd/internal/testenv"
)

// envDuration reads a test knob from the environment.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return d
}

// verify runs `meshd-lab verify`'s check and fails the test with its
// report on a mismatch.
func (e *labEnv) verify(t *testing.T, after string, wait time.Duration) {
	t.Helper()
	start := time.Now()
	rep, err := e.lab.Verify(context.Background(), netlab.VerifyOptions{Wait: wait})
	var b bytes.Buffer
	if rep != nil {
		rep.Write(&b)
	}
	took := time.Since(start).Round(100 * time.Millisecond)
	switch {
	case err != nil:
		t.Errorf("verify after %s: %v (%v)\n%s", after, err, took, b.String())
	case len(rep.Mismatches) > 0:
		t.Errorf("verify after %s: meshd disagrees with the routers after %v:\n%s%s", after, took, b.String(), e.trail(rep.Mismatches))
	default:
		t.Logf("verify after %s: agreed in round %d (%v): %d sessions, %d routes, %d checks", after, rep.Round, took, rep.Sessions, rep.Routes, rep.Checks)
	}
}

// TestLabVerify holds meshd to the routers' own view after every fault
// kind, in a random order (seed printed; MESHD_LAB_SEED replays it), then
// after a quiet period (MESHD_LAB_QUIET, default 30 s; make lab-soak: 10m) that must produce
// no session or path-change event. MESHD_LAB_ROUTERS sets the lab's size
// (default 5: gobgpd, FRR, gobgpd, FRR, BIRD, with a chord r1-r3). The
// reset and the hijack are BIRD's (r5).
func TestLabVerify(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MESHD_LAB_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("MESHD_LAB_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("fault order seed %d (replay with MESHD_LAB_SEED=%d)", seed, seed)
	routers := 5
	if s := os.Getenv("MESHD_LAB_ROUTERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 5 {
			t.Fatalf("MESHD_LAB_ROUTERS=%q: want 5 or more (reroute needs the chord r1-r3)", s)
		}
		routers = n
	}
	quiet := envDuration(t, "MESHD_LAB_QUIET", 30*time.Second)
	wait := envDuration(t, "MESHD_LAB_VERIFY_WAIT", 60*time.Second)

	upStart := time.Now()
	e := startLabN(t, routers)
	t.Logf("lab of %d routers up in %v", routers, time.Since(upStart).Round(time.Second))
	// Sessions need a while to come up everywhere; verify compares
	// whatever state they are in, so it agrees only once meshd caught up.
	e.verify(t, "lab up", 2*wait)

	type fault struct {
		name string
		do   func() error
	}
	l := e.lab
	faults := []fault{
		{"delay r1 r2 20ms", func() error { return l.Fault("delay", "r1", "r2", "20ms") }},
		{"loss r2 r3 5%", func() error { return l.Fault("loss", "r2", "r3", "5%") }},
		{"clear r1 r2", func() error { return l.Fault("clear", "r1", "r2", "") }},
		{"down r3 r4", func() error { return l.Fault("down", "r3", "r4", "") }},
		{"up r3 r4", func() error { return l.Fault("up", "r3", "r4", "") }},
		{"reset r5 r4", func() error { return l.Fault("reset", "r5", "r4", "") }},
		{"reroute r1 r3 r2", func() error { return l.Reroute("r1", "r3", "r2", false) }},
		{"unroute r1 r3 r2", func() error { return l.Reroute("r1", "r3", "r2", true) }},
		{"hijack r5 10.200.1.0/25", func() error { return l.Hijack("r5", "10.200.1.0/25") }},
	}
	rng := rand.New(rand.NewPCG(seed, seed>>1|1))
	rng.Shuffle(len(faults), func(i, j int) { faults[i], faults[j] = faults[j], faults[i] })
	// unroute deletes the routes reroute adds: it must come after it.
	var ir, iu int
	for i, f := range faults {
		switch f.name {
		case "reroute r1 r3 r2":
			ir = i
		case "unroute r1 r3 r2":
			iu = i
		}
	}
	if iu < ir {
		faults[ir], faults[iu] = faults[iu], faults[ir]
	}
	var order []string
	for _, f := range faults {
		order = append(order, f.name)
	}
	t.Logf("fault order: %q", order)
	for _, f := range faults {
		if err := f.do(); err != nil {
			t.Fatalf("fault %s: %v", f.name, err)
		}
		e.verify(t, f.name, wait)
	}
	// Undo what the order left in place, so the quiet period is quiet.
	for _, undo := range []func() error{
		func() error { return l.Fault("up", "r3", "r4", "") },
		func() error { return l.Fault("clear", "r1", "r2", "") },
		func() error { return l.Fault("clear", "r2", "r3", "") },
	} {
		if err := undo(); err != nil {
			t.Fatal(err)
		}
	}
	e.verify(t, "undoing the faults", 2*wait)

	// Settle first: verify can agree before BGP has noticed the last fault
	// (a link down and up again within a second may still reset sessions
	// at the hold timer, 9 s), and those resets are real events. A CI run
	// whose order ended with "down r3 r4" saw 4 of them in the quiet
	// minute. The quiet period starts once no session event was written
	// for two hold times.
	const settle = 18 * time.Second
	undone := time.Now()
	testenv.WaitFor(t, 3*time.Minute, "no session event for two hold times", func() bool {
		if time.Since(undone) < settle {
			return false
		}
		return e.influxCount(fmt.Sprintf(`SELECT count("n") FROM "bgp_session_event" WHERE %s`, sinceQ(time.Now().Add(-settle)))) == 0
	})
	e.verify(t, "settling", wait)

	// Quiet: nothing happens, so meshd must report nothing happening.
	start := time.Now()
	t.Logf("quiet for %v", quiet)
	time.Sleep(quiet)
	for _, m := range []string{"bgp_session_event", "bgp_origin_change"} {
		// Every event measurement has n=1.
		q := fmt.Sprintf(`SELECT count("n") FROM %q WHERE %s`, m, sinceQ(start.Add(time.Second)))
		n := e.influxCount(q)
		if n < 0 {
			t.Errorf("InfluxDB did not answer %s", q)
		} else if n != 0 {
			t.Errorf("a quiet lab produced %d %s points in %v", n, m, quiet)
		}
	}
	e.verify(t, fmt.Sprintf("a quiet %v", quiet), wait)
}

// trail is what meshd has of the first few mismatched routes, for a
// failure to be diagnosed from the test's output alone (a CI run's lab is
// gone by the time anyone looks): every bmp_route point of the route in
// InfluxDB, the route in meshd's own RIB (its gNMI target), the session's
// events, and meshd's warnings about the router.
func (e *labEnv) trail(ms []netlab.Mismatch) string {
	var b strings.Builder
	seen := map[string]bool{}
	for _, m := range ms {
		if m.Prefix == "" || len(seen) == 3 {
			continue
		}
		// A route's AFISAFI is "IPV4_UNICAST ADJ_RIB_IN_POST".
		af, rib, _ := strings.Cut(m.AFISAFI, " ")
		k := m.Router + " " + m.Neighbor + " " + m.Prefix
		if seen[k] || rib == "" {
			continue
		}
		seen[k] = true
		fmt.Fprintf(&b, "trail of %s %s %s:\n", k, af, rib)
		rows, _ := e.influxRows(fmt.Sprintf(`SELECT "action", "rib", "origin_as", "as_path" FROM "bmp_route" WHERE "router" = '%s' AND "neighbor" = '%s' AND "prefix" = '%s'`, m.Router, m.Neighbor, m.Prefix))
		for _, r := range rows {
			fmt.Fprintf(&b, "  bmp_route %v\n", r)
		}
		afi := strings.ToLower(strings.TrimSuffix(af, "_UNICAST"))
		table := fmt.Sprintf("neighbors/neighbor[neighbor-address=%s]/%s", m.Neighbor, strings.ReplaceAll(strings.ToLower(rib), "_", "-"))
		if rib == "LOC_RIB" {
			table = "loc-rib"
		}
		p := fmt.Sprintf("/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/rib/afi-safis/afi-safi[afi-safi-name=%s]/%s-unicast/%s/routes/route[prefix=%s]",
			af, afi, table, m.Prefix)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := e.gc.Get(ctx, &gpb.GetRequest{Prefix: &gpb.Path{Target: m.Router}, Path: []*gpb.Path{change.MustPath(p)}, Encoding: gpb.Encoding_JSON_IETF})
		cancel()
		switch {
		case err != nil:
			fmt.Fprintf(&b, "  meshd's RIB: %v\n", err)
		case len(resp.GetNotification()) == 0 || len(resp.Notification[0].Update) == 0:
			fmt.Fprintf(&b, "  meshd's RIB: not held\n")
		default:
			var leaves []string
			for _, u := range resp.Notification[0].Update {
				el := u.Path.GetElem()
				leaves = append(leaves, el[len(el)-1].GetName()+"="+prototext.MarshalOptions{}.Format(u.Val))
			}
			fmt.Fprintf(&b, "  meshd's RIB: held, %s\n", strings.Join(leaves, " "))
		}
	}
	if len(seen) == 0 {
		return ""
	}
	done, routers := map[string]bool{}, map[string]bool{}
	for _, m := range ms {
		k := m.Router + " " + m.Neighbor
		if m.Prefix == "" || done[k] {
			continue
		}
		done[k], routers[m.Router] = true, true
		rows, _ := e.influxRows(fmt.Sprintf(`SELECT "n", "event", "source", "reason" FROM "bgp_session_event" WHERE "router" = '%s' AND "neighbor" = '%s'`, m.Router, m.Neighbor))
		fmt.Fprintf(&b, "session events of %s:\n", k)
		for _, r := range rows {
			fmt.Fprintf(&b, "  %v\n", r)
		}
	}
	// meshd's log, read once: the warnings about each router concerned.
	f, err := os.Open(filepath.Join(e.lab.State.Dir, "meshd.log"))
	if err != nil {
		fmt.Fprintf(&b, "meshd's log: %v\n", err)
		return b.String()
	}
	defer f.Close()
	warn := map[string][]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, "level=INFO") || strings.Contains(l, "alert ") {
			continue
		}
		for r := range routers {
			if strings.Contains(l+" ", "router="+r+" ") {
				warn[r] = append(warn[r], l)
			}
		}
	}
	for r := range routers {
		lines := warn[r]
		if len(lines) > 20 {
			lines = lines[len(lines)-20:]
		}
		fmt.Fprintf(&b, "meshd's warnings about %s (last %d):\n  %s\n", r, len(lines), strings.Join(lines, "\n  "))
	}
	return b.String()
}
