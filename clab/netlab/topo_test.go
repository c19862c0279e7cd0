package netlab

import (
	"strings"
	"testing"
)

// Every size `meshd-lab up --routers N` takes lays out a connected
// partial mesh whose names and addresses Linux and BGP accept.
func TestTopology(t *testing.T) {
	for _, n := range []int{2, 3, 5, 20, 60} {
		topo, err := NewTopology(n)
		if err != nil {
			t.Fatalf("%d routers: %v", n, err)
		}
		if len(topo.Routers) != n {
			t.Fatalf("%d routers: %d laid out", n, len(topo.Routers))
		}
		degree := map[int]int{}
		adj := map[int][]int{}
		seen := map[string]bool{}
		unique := func(kind, v string) {
			if seen[kind+v] {
				t.Errorf("%d routers: %s %s used twice", n, kind, v)
			}
			seen[kind+v] = true
		}
		for _, r := range topo.Routers {
			unique("namespace", r.NS)
			unique("router ID", r.ID)
			unique("mgmt address", r.Mgmt)
			if len(r.NS) > 15 {
				t.Errorf("%d routers: namespace %s longer than a device name may be", n, r.NS)
			}
		}
		for _, l := range topo.Links {
			for _, v := range []string{l.A4.String(), l.B4.String(), l.A6.String(), l.B6.String()} {
				unique("address", v)
			}
			wa, wb := l.WireIfs()
			for _, ifn := range []string{l.AIf, l.BIf, wa, wb} {
				if len(ifn) > 15 { // IFNAMSIZ - 1
					t.Errorf("%d routers: interface name %s too long", n, ifn)
				}
			}
			if l.A == l.B || l.A < 1 || l.B > n || l.B < 1 || l.A > n {
				t.Errorf("%d routers: link %d joins %d and %d", n, l.Index, l.A, l.B)
			}
			degree[l.A]++
			degree[l.B]++
			adj[l.A] = append(adj[l.A], l.B)
			adj[l.B] = append(adj[l.B], l.A)
		}
		for i := 1; i <= n; i++ {
			if lo := min(n-1, 2); degree[i] < lo || degree[i] > 3 {
				t.Errorf("%d routers: r%d has %d links, want %d to 3", n, i, degree[i], lo)
			}
		}
		// Connected: a walk from r1 reaches every router.
		reached := map[int]bool{1: true}
		for todo := []int{1}; len(todo) > 0; todo = todo[1:] {
			for _, j := range adj[todo[0]] {
				if !reached[j] {
					reached[j] = true
					todo = append(todo, j)
				}
			}
		}
		if len(reached) != n {
			t.Errorf("%d routers: %d reachable from r1", n, len(reached))
		}
	}
	for _, n := range []int{1, 61} {
		if _, err := NewTopology(n); err == nil {
			t.Errorf("%d routers accepted", n)
		}
	}
}

// The lab runs all three implementations, and every ring link joins two
// different ones.
func TestDaemons(t *testing.T) {
	topo, err := NewTopology(20)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"gobgpd", "frr", "gobgpd", "frr", "bird", "frr", "gobgpd", "frr", "gobgpd", "bird"}
	for i, w := range want {
		if got := topo.Routers[i].Daemon; got != w {
			t.Errorf("r%d runs %s, want %s", i+1, got, w)
		}
	}
	for _, l := range topo.Links[:19] {
		if a, b := topo.Routers[l.A-1], topo.Routers[l.B-1]; a.Daemon == b.Daemon {
			t.Errorf("ring link %s-%s joins two %s", a.Name, b.Name, a.Daemon)
		}
	}
}

// BIRD's protocol names are symbols made of a session's address.
func TestBirdConfig(t *testing.T) {
	topo, err := NewTopology(4)
	if err != nil {
		t.Fatal(err)
	}
	l := &Lab{Topo: topo, State: State{Dir: "/lab"}}
	r3, _ := topo.Router("r3")
	conf := l.birdConfig(r3)
	for _, want := range []string{
		"router id 10.255.0.3;",
		"local as 4200000003;",
		"route 10.200.3.0/24 blackhole;",
		"route 2001:db8:3::/48 blackhole;",
		`include "/lab/r3-bird/hijack4.conf";`,
		"protocol bgp n_10_100_2_1 from peer {\n  neighbor 10.100.2.1 as 4200000002;\n  source address 10.100.2.2;\n  ipv4 {",
		"protocol bgp n_fd00_100_3__2 from peer {\n  neighbor fd00:100:3::2 as 4200000004;",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("BIRD config lacks %q:\n%s", want, conf)
		}
	}
}
