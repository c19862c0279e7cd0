//go:build integration

package netlab_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/clab/netlab"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/internal/tools"
)

// faultLab is the default 4-router lab (`make lab`: a ring, no chords)
// and the meshd-lab binary that runs it, for `meshd-lab fault` itself.
type faultLab struct {
	*labEnv
	bin, dir string
}

func startDefaultLab(t *testing.T) *faultLab {
	t.Helper()
	testenv.RequireRoot(t)
	for _, b := range []string{"gobgpd", "gobgp", "bgpd", "vtysh", "influxd", "ethtool"} {
		testenv.Binary(t, b)
	}
	o := buildBins(t)
	o.Routers = 4
	l := upLab(t, o, 2*time.Minute)
	return &faultLab{labEnv: &labEnv{t: t, lab: l}, bin: o.Lab, dir: l.State.Dir}
}

// fault runs `meshd-lab fault` as an operator would and returns what it
// printed.
func (e *faultLab) fault(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(e.bin, append([]string{"fault", "--dir", e.dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("meshd-lab fault %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func nsOutput(t *testing.T, ns string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...).Output()
	if err != nil {
		t.Fatalf("in %s: %s: %v", ns, strings.Join(args, " "), err)
	}
	return out
}

// gobgpCounts is what gobgpd itself says of one neighbor (`gobgp
// neighbor ADDR -j`): its session state and, per AFI-SAFI, the prefixes
// received (before import policy) and accepted.
type gobgpCounts struct {
	state    int // gobgp's PeerState_SessionState: 6 is ESTABLISHED
	received map[string]uint64
	accepted map[string]uint64
}

func gobgpNeighbor(t *testing.T, r netlab.Router, addr string) gobgpCounts {
	t.Helper()
	cli, err := tools.Look("gobgp")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		State struct {
			SessionState int `json:"session_state"`
		} `json:"state"`
		AfiSafis []struct {
			State struct {
				Family struct {
					Afi  int `json:"afi"`
					Safi int `json:"safi"`
				} `json:"family"`
				Received uint64 `json:"received"`
				Accepted uint64 `json:"accepted"`
			} `json:"state"`
		} `json:"afi_safis"`
	}
	out := nsOutput(t, r.NS, cli, "-u", "127.0.0.1", "-p", "50051", "neighbor", addr, "-j")
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("gobgp neighbor %s -j on %s: %v: %s", addr, r.Name, err, out)
	}
	c := gobgpCounts{state: p.State.SessionState, received: map[string]uint64{}, accepted: map[string]uint64{}}
	for _, af := range p.AfiSafis {
		name := map[[2]int]string{{1, 1}: "IPV4_UNICAST", {2, 1}: "IPV6_UNICAST"}[[2]int{af.State.Family.Afi, af.State.Family.Safi}]
		if name == "" {
			t.Fatalf("gobgp on %s: unexpected family %+v", r.Name, af.State.Family)
		}
		c.received[name] = af.State.Received
		c.accepted[name] = af.State.Accepted
	}
	return c
}

// frrState is FRR's own bgpState of one neighbor (`show bgp vrf all
// neighbors json`), such as "Established".
func (e *faultLab) frrState(t *testing.T, r netlab.Router, addr string) string {
	t.Helper()
	st, _ := e.frrNeighbor(t, r, addr)
	return st
}

// frrNeighbor is FRR's own view of one neighbor: its bgpState and, per
// AFI-SAFI, the prefixes it accepted (post-policy).
func (e *faultLab) frrNeighbor(t *testing.T, r netlab.Router, addr string) (string, map[string]uint64) {
	t.Helper()
	out := nsOutput(t, r.NS, "vtysh", "--vty_socket", e.lab.FRRDir(r), "-d", "bgpd", "-c", "show bgp vrf all neighbors json")
	var vrfs map[string]map[string]json.RawMessage
	if err := json.Unmarshal(out, &vrfs); err != nil {
		t.Fatalf("vtysh on %s: %v: %s", r.Name, err, out)
	}
	var n struct {
		BgpState          string `json:"bgpState"`
		AddressFamilyInfo map[string]struct {
			AcceptedPrefixCounter uint64 `json:"acceptedPrefixCounter"`
		} `json:"addressFamilyInfo"`
	}
	if raw, ok := vrfs["default"][addr]; ok {
		if err := json.Unmarshal(raw, &n); err != nil {
			t.Fatalf("vtysh on %s: neighbor %s: %v", r.Name, addr, err)
		}
	}
	acc := map[string]uint64{}
	for k, af := range n.AddressFamilyInfo {
		name := map[string]string{"ipv4Unicast": "IPV4_UNICAST", "ipv6Unicast": "IPV6_UNICAST"}[k]
		if name == "" {
			t.Fatalf("vtysh on %s: unexpected family %s", r.Name, k)
		}
		acc[name] = af.AcceptedPrefixCounter
	}
	return n.BgpState, acc
}

// TestLabDefaultFaults runs the default lab (`make lab`, 4 routers) and
// checks meshd and the faults against the routers' own view: gobgpd's
// prefix counts, and IPv6 sessions that come back after `fault down`
// then `fault up`.
func TestLabDefaultFaults(t *testing.T) {
	e := startDefaultLab(t)
	testenv.WaitFor(t, 90*time.Second, "16 sessions ESTABLISHED in meshd", func() bool {
		up := 0
		for _, r := range e.rows() {
			if r.State == "ESTABLISHED" {
				up++
			}
		}
		return up == 16
	})

	t.Run("prefixes", func(t *testing.T) {
		// meshd's received is gobgp's accepted (post-policy) and its
		// received-pre-policy gobgp's received, per AFI-SAFI; the table's
		// total is the accepted ones only. Polled: routes and BMP take a
		// moment to settle after the sessions come up.
		var diffs []string
		deadline := time.Now().Add(60 * time.Second)
		for {
			diffs = diffs[:0]
			rows := e.rows()
			for _, name := range []string{"r1", "r3"} { // the gobgpd routers
				r, _ := e.lab.Topo.Router(name)
				for _, p := range e.lab.Topo.Peers(r) {
					addr := p.PeerAddr.String()
					g := gobgpNeighbor(t, r, addr)
					row := rows[name+" "+addr]
					var total uint64
					for afi, acc := range g.accepted {
						total += acc
						c := row.AfiSafis[afi]
						if c.Received == nil || *c.Received != acc {
							diffs = append(diffs, fmt.Sprintf("%s %s %s: meshd received %v, gobgp accepted %d", name, addr, afi, ptr(c.Received), acc))
						}
						if c.ReceivedPrePolicy == nil || *c.ReceivedPrePolicy != g.received[afi] {
							diffs = append(diffs, fmt.Sprintf("%s %s %s: meshd received-pre-policy %v, gobgp received %d", name, addr, afi, ptr(c.ReceivedPrePolicy), g.received[afi]))
						}
					}
					if row.Prefixes != total {
						diffs = append(diffs, fmt.Sprintf("%s %s: meshd prefixes_received %d, gobgp accepted %d in all", name, addr, row.Prefixes, total))
					}
				}
			}
			// FRR's own accepted count is meshd's received; FRR keeps no
			// pre-policy count without soft-reconfiguration inbound.
			for _, name := range []string{"r2", "r4"} {
				r, _ := e.lab.Topo.Router(name)
				for _, p := range e.lab.Topo.Peers(r) {
					addr := p.PeerAddr.String()
					_, acc := e.frrNeighbor(t, r, addr)
					row := rows[name+" "+addr]
					var total uint64
					for afi, n := range acc {
						total += n
						if c := row.AfiSafis[afi]; c.Received == nil || *c.Received != n {
							diffs = append(diffs, fmt.Sprintf("%s %s %s: meshd received %v, FRR acceptedPrefixCounter %d", name, addr, afi, ptr(c.Received), n))
						}
					}
					if row.Prefixes != total {
						diffs = append(diffs, fmt.Sprintf("%s %s: meshd prefixes_received %d, FRR accepted %d in all", name, addr, row.Prefixes, total))
					}
				}
			}
			if len(diffs) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if len(diffs) > 0 {
			t.Errorf("meshd disagrees with the routers:\n%s", strings.Join(diffs, "\n"))
		}
		r1, _ := e.lab.Topo.Router("r1")
		g := gobgpNeighbor(t, r1, "10.100.1.2")
		t.Logf("r1 10.100.1.2: gobgp received %v accepted %v; meshd %s", g.received, g.accepted, mustJSON(e.rows()["r1 10.100.1.2"].AfiSafis))
	})

	t.Run("messages", func(t *testing.T) {
		for _, tt := range []struct{ args, want string }{
			{"delay r1 r2 20ms", "delay r1→r2 20ms: applied"},
			{"clear r1 r2", "clear r1→r2: delay and loss removed"},
		} {
			if got := e.fault(t, strings.Fields(tt.args)...); got != tt.want {
				t.Errorf("meshd-lab fault %s printed %q, want %q", tt.args, got, tt.want)
			}
		}
		out, err := exec.Command(e.bin, "fault", "--dir", e.dir, "delay", "r1", "r99", "10ms").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "no router r99") {
			t.Errorf("fault delay r1 r99: %v: %s", err, out)
		}
	})

	t.Run("down-up", func(t *testing.T) {
		r3, _ := e.lab.Topo.Router("r3")
		r4, _ := e.lab.Topo.Router("r4")
		lk, _ := e.lab.Topo.LinkBetween("r3", "r4")
		r3v6, r4v6 := lk.A6.String(), lk.B6.String()
		r3v4, r4v4 := lk.A4.String(), lk.B4.String()
		if got := e.fault(t, "down", "r3", "r4"); got != "down r3–r4: link down at both ends" {
			t.Errorf("fault down printed %q", got)
		}
		// gobgpd on r3 loses the sessions when the hold timer (9 s) expires.
		testenv.WaitFor(t, 20*time.Second, "gobgpd on r3 sees both r4 sessions down", func() bool {
			return gobgpNeighbor(t, r3, r4v6).state != 6 && gobgpNeighbor(t, r3, r4v4).state != 6
		})
		// The kernel's own view: the link's IPv6 address outlives the down.
		for _, x := range []struct {
			r    netlab.Router
			dev  string
			addr string
		}{{r3, lk.AIf, r3v6}, {r4, lk.BIf, r4v6}} {
			if out := nsOutput(t, x.r.NS, "ip", "-6", "addr", "show", "dev", x.dev); !strings.Contains(string(out), x.addr+"/64") {
				t.Errorf("%s %s lost %s on link down:\n%s", x.r.Name, x.dev, x.addr, out)
			}
		}
		if got := e.fault(t, "up", "r3", "r4"); got != "up r3–r4: link up at both ends" {
			t.Errorf("fault up printed %q", got)
		}
		testenv.WaitFor(t, 60*time.Second, "r3-r4 sessions Established again on both routers (gobgp on r3, vtysh on r4)", func() bool {
			return gobgpNeighbor(t, r3, r4v6).state == 6 && gobgpNeighbor(t, r3, r4v4).state == 6 &&
				e.frrState(t, r4, r3v6) == "Established" && e.frrState(t, r4, r3v4) == "Established"
		})
		testenv.WaitFor(t, 10*time.Second, "meshd shows the r3-r4 sessions ESTABLISHED", func() bool {
			rows := e.rows()
			for _, k := range []string{"r3 " + r4v6, "r3 " + r4v4, "r4 " + r3v6, "r4 " + r3v4} {
				if rows[k].State != "ESTABLISHED" {
					return false
				}
			}
			return true
		})
		// The link's routes keep their quick ACKs after the kernel put
		// its own back on up.
		for _, x := range []struct {
			r   netlab.Router
			fam string
		}{{r3, "-4"}, {r3, "-6"}, {r4, "-4"}, {r4, "-6"}} {
			dev := lk.AIf
			if x.r.Name == "r4" {
				dev = lk.BIf
			}
			out := nsOutput(t, x.r.NS, "ip", x.fam, "route", "show", "dev", dev, "proto", "kernel")
			lines := slices.DeleteFunc(strings.Split(strings.TrimSpace(string(out)), "\n"), func(s string) bool { return strings.HasPrefix(s, "fe80") })
			for _, l := range lines {
				if !strings.Contains(l, "quickack 1") {
					t.Errorf("%s %s route without quickack after up: %s", x.r.Name, dev, l)
				}
			}
		}
	})
}

func ptr(p *uint64) any {
	if p == nil {
		return "none"
	}
	return *p
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
