//go:build integration

package netlab_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/clab/netlab"
	"github.com/meshd/meshd/cluster"
	"github.com/meshd/meshd/gnmiclient"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/sinks/web"
)

// TestLabReplicas: `meshd-lab up --replicas 3` shares the routers among
// three meshd replicas on a real etcd, and after each replica fault the
// lab takes (kill, pause past the lease, cut from etcd) every router is
// owned by exactly one live replica, a replica collects only the routers
// it owns, every session joins BMP, gNMI and the probe (the routers' BMP
// reaches the replicas through a balancer and is relayed to each router's
// owner), and what the fleet view shows, read from a replica no fault
// holds, agrees with every router's own view (verify: gNMI, InfluxDB and
// /api/sessions against FRR's and gobgp's).
func TestLabReplicas(t *testing.T) {
	testenv.RequireRoot(t)
	for _, b := range []string{"gobgpd", "gobgp", "bgpd", "vtysh", "influxd", "ethtool", "etcd"} {
		testenv.Binary(t, b)
	}
	// CI's run: 2 routers (gobgpd, sending through the balancer; FRR,
	// to two replicas), a 2 s lease, a kill and a cut from etcd.
	// MESHD_LAB_REPLICAS_FULL=1 (make lab-cluster): 4 routers, the
	// default lease, a pause too, and verify after every fault.
	full := os.Getenv("MESHD_LAB_REPLICAS_FULL") != ""
	o := buildBins(t)
	o.Routers, o.Replicas, o.LeaseTTL = 2, 3, 2*time.Second
	if full {
		o.Routers, o.LeaseTTL = 4, 0
	}
	l := upLab(t, o, 3*time.Minute)
	all := []int{1, 2, 3}
	verify := func(when string) {
		t.Helper()
		vctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		rep, err := l.Verify(vctx, netlab.VerifyOptions{Wait: 2 * time.Minute})
		if err != nil {
			t.Fatalf("%s: verify: %v", when, err)
		}
		if len(rep.Mismatches) > 0 {
			var b strings.Builder
			rep.Write(&b)
			t.Fatalf("%s: meshd disagrees with the routers:\n%s", when, b.String())
		}
	}
	fault := func(args ...string) {
		t.Helper()
		f, err := netlab.ParseFault(args)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := l.Apply(context.Background(), f)
		if err != nil {
			t.Fatalf("fault %v: %v", args, err)
		}
		t.Log(msg)
	}
	var routers []string
	for _, r := range l.Topo.Routers {
		routers = append(routers, r.Name)
	}
	// settled waits until exactly the live replicas are members and each
	// router has one owner among them, within the bounded load, and each
	// live replica collects exactly the routers it owns.
	settled := func(when string, live ...int) {
		t.Helper()
		var last string
		start := time.Now()
		ok := eventually(90*time.Second, func() bool {
			st, err := l.ClusterStatus(context.Background())
			if err != nil {
				last = err.Error()
				return false
			}
			last = ownership(st)
			var members []string
			for _, m := range st.Members {
				members = append(members, m.Name)
			}
			var want []string
			for _, n := range live {
				want = append(want, netlab.ReplicaName(n))
			}
			if !slices.Equal(members, want) || st.Orphans != 0 || len(st.Owners) != len(routers) {
				return false
			}
			bound := cluster.Capacity(len(routers), len(live), cluster.DefaultLoadFactor)
			owned := map[string][]string{}
			for _, ow := range st.Owners {
				if !slices.Contains(want, ow.Owner) {
					return false
				}
				owned[ow.Owner] = append(owned[ow.Owner], ow.Target)
			}
			for _, n := range live {
				name := netlab.ReplicaName(n)
				if len(owned[name]) > bound {
					t.Errorf("%s: %s owns %d routers, above the bound %d: %s", when, name, len(owned[name]), bound, last)
				}
				collecting, err := collects(l, n)
				if err != nil {
					last += "; " + err.Error()
					return false
				}
				slices.Sort(owned[name])
				if !slices.Equal(collecting, owned[name]) {
					last += fmt.Sprintf("; %s collects %v, owns %v", name, collecting, owned[name])
					return false
				}
			}
			// The joined record: BMP (through the balancer, to any
			// replica), gNMI and the probe on every session, read from
			// one replica for the whole fleet.
			rows, unreachable, err := l.Sessions(context.Background())
			if err != nil || unreachable != "" || len(rows) == 0 {
				last += fmt.Sprintf("; fleet sessions: %d rows, unreachable %q, %v", len(rows), unreachable, err)
				return false
			}
			for _, r := range rows {
				if r.Sources != "bmp,gnmi,probe" {
					last += fmt.Sprintf("; %s %s joins %q", r.Router, r.Neighbor, r.Sources)
					return false
				}
			}
			// The same on every live replica's gNMI target, for every
			// router, whichever replica owns it.
			for _, n := range live {
				got, err := gnmiSources(n)
				if err != nil {
					last += fmt.Sprintf("; %s gNMI: %v", netlab.ReplicaName(n), err)
					return false
				}
				if len(got) != len(rows) {
					last += fmt.Sprintf("; %s gNMI has sources of %d sessions, the fleet %d", netlab.ReplicaName(n), len(got), len(rows))
					return false
				}
				for k, src := range got {
					if src != "bmp,gnmi,probe" {
						last += fmt.Sprintf("; %s gNMI: %s joins %q", netlab.ReplicaName(n), k, src)
						return false
					}
				}
				// And on every live replica's status page, the fleet's
				// sessions, joined, each replica's tagged with it.
				page, err := pageFleet(n)
				if err != nil || len(page.Unreachable) > 0 || len(page.Rows) != len(rows) {
					last += fmt.Sprintf("; %s's status page: %d rows of %d, unreachable %v, %v", netlab.ReplicaName(n), len(page.Rows), len(rows), page.Unreachable, err)
					return false
				}
				for _, r := range page.Rows {
					if r.Sources != "bmp,gnmi,probe" {
						last += fmt.Sprintf("; %s's status page: %s %s joins %q", netlab.ReplicaName(n), r.Router, r.Neighbor, r.Sources)
						return false
					}
				}
			}
			return true
		})
		if !ok {
			t.Fatalf("%s: ownership did not settle on replicas %v in 90 s: %s", when, live, last)
		}
		t.Logf("%s: settled in %.1f s: %s", when, time.Since(start).Seconds(), last)
	}

	settled("up", all...)
	verify("up")

	// Kill the owner of the FRR router, which sends its BMP to two
	// replicas: its gNMI moves, and its BMP with it, from a standby or a
	// new session.
	k := ownerOf(t, l, "r2")
	fault("kill-replica", strconv.Itoa(k))
	settled(fmt.Sprintf("replica %d killed", k), without(all, k)...)
	verify(fmt.Sprintf("replica %d killed", k))
	fault("start-replica", strconv.Itoa(k))
	settled(fmt.Sprintf("replica %d started again", k), all...)

	if full {
		// Paused past its lease: the others take its routers; once
		// continued, it collects nothing it no longer owns, then rejoins.
		p := ownerOf(t, l, "r2")
		lease := cmp.Or(o.LeaseTTL, cluster.DefaultLeaseTTL)
		fault("pause-replica", strconv.Itoa(p), (lease + 4*time.Second).String())
		settled(fmt.Sprintf("replica %d paused and continued", p), all...)
		verify(fmt.Sprintf("replica %d paused and continued", p))
	}

	c := ownerOf(t, l, "r1")
	fault("partition-replica", strconv.Itoa(c))
	settled(fmt.Sprintf("replica %d cut from etcd", c), without(all, c)...)
	if got, err := collects(l, c); err != nil || len(got) != 0 {
		t.Errorf("replica %d, cut from etcd, still collects %v (%v)", c, got, err)
	}
	if full {
		verify(fmt.Sprintf("replica %d cut from etcd", c))
	}
	fault("heal-replica", strconv.Itoa(c))
	settled(fmt.Sprintf("replica %d healed", c), all...)
}

// ownerOf is the replica that owns router, by `meshd cluster status`.
func ownerOf(t *testing.T, l *netlab.Lab, router string) int {
	t.Helper()
	st, err := l.ClusterStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range st.Owners {
		if o.Target == router {
			for n := 1; n <= l.State.Replicas; n++ {
				if netlab.ReplicaName(n) == o.Owner {
					return n
				}
			}
		}
	}
	t.Fatalf("no owner of %s: %s", router, ownership(st))
	return 0
}

func without(all []int, n int) []int {
	return slices.DeleteFunc(slices.Clone(all), func(x int) bool { return x == n })
}

// gnmiSources reads every session's verdict sources from replica n's gNMI
// target, for the whole fleet (target *), keyed "router neighbor".
func gnmiSources(n int) (map[string]string, error) {
	conn, err := netlab.NSConn(netlab.MgmtNS, fmt.Sprintf("%s:%d", netlab.ReplicaAddr(n), netlab.GNMIPort))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := gpb.NewGNMIClient(conn).Get(ctx, &gpb.GetRequest{Prefix: &gpb.Path{Target: "*"},
		Path: []*gpb.Path{change.MeshdNeighborPath("*", "*", "verdict", "state", "sources")}, Encoding: gpb.Encoding_PROTO})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, nt := range resp.GetNotification() {
		for _, u := range nt.GetUpdate() {
			var nb string
			for _, e := range append(nt.GetPrefix().GetElem(), u.GetPath().GetElem()...) {
				if e.GetName() == "neighbor" {
					nb = e.GetKey()["neighbor-address"]
				}
			}
			var src []string
			for _, e := range u.GetVal().GetLeaflistVal().GetElement() {
				src = append(src, e.GetStringVal())
			}
			out[nt.GetPrefix().GetTarget()+" "+nb] = strings.Join(src, ",")
		}
	}
	return out, nil
}

// pageFleet reads replica n's status page's fleet.
func pageFleet(n int) (web.Fleet, error) {
	var f web.Fleet
	c := netlab.NSHTTPClient(netlab.MgmtNS)
	resp, err := c.Get(fmt.Sprintf("http://%s:%d/api/status/fleet", netlab.ReplicaAddr(n), netlab.HTTPPort))
	if err != nil {
		return f, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return f, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return f, json.NewDecoder(resp.Body).Decode(&f)
}

// collects lists the routers replica n has a gNMI session with, from its
// /api/gnmi/targets.
func collects(l *netlab.Lab, n int) ([]string, error) {
	c := netlab.NSHTTPClient(netlab.MgmtNS)
	c.Timeout = 5 * time.Second
	resp, err := c.Get(fmt.Sprintf("http://%s:%d/api/gnmi/targets", netlab.ReplicaAddr(n), netlab.HTTPPort))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var ts []gnmiclient.TargetStatus
	if err := json.NewDecoder(resp.Body).Decode(&ts); err != nil {
		return nil, err
	}
	out := []string{}
	for _, t := range ts {
		out = append(out, t.Name)
	}
	slices.Sort(out)
	return out, nil
}

func ownership(st *cluster.Status) string {
	s := fmt.Sprintf("%d members:", len(st.Members))
	for _, o := range st.Owners {
		s += fmt.Sprintf(" %s→%s", o.Target, o.Owner)
	}
	return s
}

// eventually polls cond every half second (each poll runs a process)
// until it holds or d passes.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(500 * time.Millisecond)
	}
}
