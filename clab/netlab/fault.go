package netlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/meshd/meshd/internal/wire"
)

// FaultKind is one fault `meshd-lab fault` takes: its name, its operands
// and what it does. FaultKinds is the one list the parser, the errors and
// the help text read.
type FaultKind struct {
	Name string
	Args []string // operand names, after the kind
	Help string
}

// FaultKinds are every fault the lab takes, in the order help lists them.
var FaultKinds = []FaultKind{
	{"down", []string{"R1", "R2"}, "take the R1-R2 link down at both ends (BGP notices when its 9 s hold timer expires)"},
	{"up", []string{"R1", "R2"}, "bring the R1-R2 link back up"},
	{"reset", []string{"R1", "R2"}, "reset R1's BGP sessions (IPv4 and IPv6) with R2"},
	{"delay", []string{"R1", "R2", "DELAY"}, "delay frames from R1 to R2 by DELAY (0 to 10s, such as 20ms; 0 removes it)"},
	{"loss", []string{"R1", "R2", "PERCENT"}, "lose PERCENT of the frames from R1 to R2 (0 to 100%, such as 5%)"},
	{"clear", []string{"R1", "R2"}, "remove the delay and loss of frames from R1 to R2"},
	{"reroute", []string{"R1", "R2", "VIA"}, "send R1-R2 traffic through VIA, one hop more (VIA must be linked to both)"},
	{"unroute", []string{"R1", "R2", "VIA"}, "undo reroute R1 R2 VIA"},
	{"hijack", []string{"R", "PREFIX"}, "make router R originate PREFIX"},
	{"invalid", []string{"R"}, "make router R originate the first /25 of its own /24, which its ROA makes RPKI-invalid (by length; labs with --rpki)"},
	{"withdraw", []string{"R", "PREFIX"}, "make router R stop originating PREFIX (undoes hijack and invalid)"},
	{"kill-replica", []string{"N"}, "kill meshd replica N (SIGKILL; labs with --replicas)"},
	{"start-replica", []string{"N"}, "start killed replica N again"},
	{"pause-replica", []string{"N", "DURATION"}, "stop replica N (SIGSTOP) for DURATION, then continue it (0: until resume-replica)"},
	{"resume-replica", []string{"N"}, "continue paused replica N (SIGCONT)"},
	{"partition-replica", []string{"N"}, "cut replica N from etcd (the routers and InfluxDB stay reachable)"},
	{"heal-replica", []string{"N"}, "let replica N reach etcd again"},
}

// MaxPause bounds pause-replica's DURATION: the command waits it out.
const MaxPause = 10 * time.Minute

// FaultNames lists every fault kind, for errors and help.
func FaultNames() string {
	names := make([]string, len(FaultKinds))
	for i, k := range FaultKinds {
		names[i] = k.Name
	}
	return strings.Join(names, ", ")
}

func faultKind(name string) (FaultKind, bool) {
	for _, k := range FaultKinds {
		if k.Name == name {
			return k, true
		}
	}
	return FaultKind{}, false
}

// Fault is one parsed fault.
type Fault struct {
	Kind   string
	A, B   string        // routers; hijack names only A
	Via    string        // reroute, unroute
	Delay  time.Duration // delay
	Loss   float64       // loss, a fraction
	Prefix netip.Prefix  // hijack
	// Replica is the replica a *-replica fault acts on (1-based), and
	// Pause how long pause-replica holds it.
	Replica int
	Pause   time.Duration
}

// IsReplicaFault says whether kind acts on a meshd replica rather than
// on routers.
func IsReplicaFault(kind string) bool { return strings.HasSuffix(kind, "-replica") }

// Usage is the fault's command line with its operands named.
func (k FaultKind) Usage() string {
	return strings.Join(append([]string{k.Name}, k.Args...), " ")
}

// MaxDelay bounds a delay fault: longer would only hold frames the wire
// must buffer, and BGP's hold timer expires at 9 s anyway.
const MaxDelay = 10 * time.Second

// ParseFault reads a fault from its words, as `meshd-lab fault` gets
// them: KIND then the kind's operands. It checks the words only; whether
// the routers and links exist is the topology's to say (CheckFault).
func ParseFault(args []string) (Fault, error) {
	if len(args) == 0 {
		return Fault{}, fmt.Errorf("name a fault: one of %s", FaultNames())
	}
	k, ok := faultKind(args[0])
	if !ok {
		return Fault{}, fmt.Errorf("unknown fault %q: want one of %s", args[0], FaultNames())
	}
	ops := args[1:]
	if len(ops) != len(k.Args) {
		return Fault{}, fmt.Errorf("fault %s: got %d operands, want %d (%s)", k.Name, len(ops), len(k.Args), k.Usage())
	}
	if IsReplicaFault(k.Name) {
		return parseReplicaFault(k, ops)
	}
	f := Fault{Kind: k.Name, A: ops[0]}
	switch k.Name {
	case "hijack", "withdraw":
		p, err := netip.ParsePrefix(ops[1])
		if err != nil {
			return Fault{}, fmt.Errorf("%s %s %q: want a prefix such as 10.200.1.0/25", k.Name, ops[0], ops[1])
		}
		f.Prefix = p
		return f, nil
	case "invalid":
		return f, nil
	}
	f.B = ops[1]
	if f.A == f.B {
		return Fault{}, fmt.Errorf("%s %s %s: name two different routers", k.Name, f.A, f.B)
	}
	switch k.Name {
	case "reroute", "unroute":
		f.Via = ops[2]
		if f.Via == f.A || f.Via == f.B {
			return Fault{}, fmt.Errorf("%s %s %s %s: go through a third router", k.Name, f.A, f.B, f.Via)
		}
	case "delay":
		d, err := parseDelay(ops[2])
		if err != nil {
			return Fault{}, err
		}
		f.Delay = d
	case "loss":
		p, err := parseLoss(ops[2])
		if err != nil {
			return Fault{}, err
		}
		f.Loss = p
	}
	return f, nil
}

func parseReplicaFault(k FaultKind, ops []string) (Fault, error) {
	n, err := strconv.Atoi(ops[0])
	if err != nil || n < 1 || n > MaxReplicas {
		return Fault{}, fmt.Errorf("%s %q: want a replica number, 1 to %d", k.Name, ops[0], MaxReplicas)
	}
	f := Fault{Kind: k.Name, Replica: n}
	if k.Name == "pause-replica" {
		d, err := time.ParseDuration(ops[1])
		if ops[1] == "0" {
			d, err = 0, nil
		}
		switch {
		case err != nil:
			return Fault{}, fmt.Errorf("pause-replica %d %q: want a duration such as 30s (0: until resume-replica)", n, ops[1])
		case d < 0 || d > MaxPause:
			return Fault{}, fmt.Errorf("pause-replica %d %s: want 0 to %v", n, ops[1], MaxPause)
		}
		f.Pause = d
	}
	return f, nil
}

func parseDelay(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("delay %q: want a duration such as 20ms (0 to %v)", s, MaxDelay)
	case d < 0:
		return 0, fmt.Errorf("delay %s: a delay cannot be negative (want 0 to %v, such as 20ms)", s, MaxDelay)
	case d > MaxDelay:
		return 0, fmt.Errorf("delay %s: at most %v", s, MaxDelay)
	}
	return d, nil
}

func parseLoss(s string) (float64, error) {
	p, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	switch {
	case err != nil || p != p: // p != p: NaN
		return 0, fmt.Errorf("loss %q: want a percentage such as 5%%", s)
	case p < 0:
		return 0, fmt.Errorf("loss %s: a loss cannot be negative (want 0 to 100%%, such as 5%%)", s)
	case p > 100:
		return 0, fmt.Errorf("loss %s: at most 100%%", s)
	}
	return p / 100, nil
}

// String names the fault as the lab applies it: the direction for delay
// and loss (they shape frames from A to B only), the link for the rest.
func (f Fault) String() string {
	switch {
	case f.Kind == "pause-replica":
		return fmt.Sprintf("pause-replica %d %v", f.Replica, f.Pause)
	case IsReplicaFault(f.Kind):
		return fmt.Sprintf("%s %d", f.Kind, f.Replica)
	}
	switch f.Kind {
	case "hijack", "withdraw":
		return fmt.Sprintf("%s %s %s", f.Kind, f.A, f.Prefix)
	case "invalid":
		return "invalid " + f.A
	case "delay":
		return fmt.Sprintf("delay %s→%s %v", f.A, f.B, f.Delay)
	case "loss":
		return fmt.Sprintf("loss %s→%s %s%%", f.A, f.B, strconv.FormatFloat(f.Loss*100, 'f', -1, 64))
	case "clear":
		return fmt.Sprintf("clear %s→%s", f.A, f.B)
	case "reroute", "unroute":
		return fmt.Sprintf("%s %s–%s via %s", f.Kind, f.A, f.B, f.Via)
	}
	return fmt.Sprintf("%s %s–%s", f.Kind, f.A, f.B)
}

// Check says whether the fault fits this topology: its routers exist
// first, then the links it needs.
// Replica faults are the lab's to check (CheckReplica): the topology
// holds routers only.
func (t *Topology) Check(f Fault) error {
	if IsReplicaFault(f.Kind) {
		return nil
	}
	for _, n := range []string{f.A, f.B, f.Via} {
		if n == "" {
			continue
		}
		if _, ok := t.Router(n); !ok {
			return fmt.Errorf("%s: no router %s (this lab has r1 to r%d)", f, n, len(t.Routers))
		}
	}
	if routerFault(f.Kind) {
		return nil
	}
	if _, ok := t.LinkBetween(f.A, f.B); !ok {
		return fmt.Errorf("%s: no direct link between %s and %s (%s is linked to %s)", f, f.A, f.B, f.A, strings.Join(t.Neighbors(f.A), ", "))
	}
	if f.Via == "" {
		return nil
	}
	_, ok1 := t.LinkBetween(f.A, f.Via)
	_, ok2 := t.LinkBetween(f.Via, f.B)
	if ok1 && ok2 {
		return nil
	}
	if common := t.commonNeighbors(f.A, f.B); len(common) > 0 {
		return fmt.Errorf("%s: %s is not linked to both %s and %s; %s is", f, f.Via, f.A, f.B, strings.Join(common, " and "))
	}
	return fmt.Errorf("%s: no router is linked to both %s and %s (with 5 or more routers, chords make such triangles)", f, f.A, f.B)
}

// Neighbors lists the routers directly linked to a router.
func (t *Topology) Neighbors(name string) []string {
	var out []string
	for _, r := range t.Routers {
		if _, ok := t.LinkBetween(name, r.Name); ok && r.Name != name {
			out = append(out, r.Name)
		}
	}
	return out
}

func (t *Topology) commonNeighbors(a, b string) []string {
	var out []string
	for _, n := range t.Neighbors(a) {
		if _, ok := t.LinkBetween(n, b); ok && n != b {
			out = append(out, n)
		}
	}
	return out
}

// RerouteExample finds a reroute the topology takes: a link a-b and a
// router via linked to both. ok is false when there is none (a ring of 4
// or fewer has no triangle).
func (t *Topology) RerouteExample() (a, b, via string, ok bool) {
	for _, lk := range t.Links {
		a, b = t.Routers[lk.A-1].Name, t.Routers[lk.B-1].Name
		if c := t.commonNeighbors(a, b); len(c) > 0 {
			return a, b, c[0], true
		}
	}
	return "", "", "", false
}

// FaultExamples are command lines, after `meshd-lab fault`, that this
// topology takes: the lab's banner prints them.
func (t *Topology) FaultExamples() []string {
	a, b := t.Routers[t.Links[0].A-1].Name, t.Routers[t.Links[0].B-1].Name
	ex := []string{
		"reset " + a + " " + b, "down " + a + " " + b, "up " + a + " " + b,
		"delay " + a + " " + b + " 20ms", "loss " + a + " " + b + " 5%", "clear " + a + " " + b,
	}
	if x, y, via, ok := t.RerouteExample(); ok {
		ex = append(ex, "reroute "+x+" "+y+" "+via)
	}
	// A more-specific of r1's prefix, from the router farthest along
	// the first three.
	h := t.Routers[min(3, len(t.Routers))-1]
	return append(ex, fmt.Sprintf("hijack %s 10.200.1.0/25", h.Name))
}

// Apply checks a fault against the lab's topology, applies it, and says
// what was done.
// A pause-replica with a duration returns once the replica is continued,
// or early, continuing it, when ctx ends.
func (l *Lab) Apply(ctx context.Context, f Fault) (string, error) {
	if IsReplicaFault(f.Kind) {
		return l.replicaFault(ctx, f)
	}
	if err := l.Topo.Check(f); err != nil {
		return "", err
	}
	var err error
	done := "applied"
	switch f.Kind {
	case "hijack":
		err = l.hijack(f.A, f.Prefix)
		done = fmt.Sprintf("%s originates %s", f.A, f.Prefix)
	case "invalid":
		r, _ := l.Topo.Router(f.A)
		err = l.hijack(f.A, r.InvalidPrefix())
		done = fmt.Sprintf("%s originates %s (undo: withdraw %s %s)", f.A, r.InvalidPrefix(), f.A, r.InvalidPrefix())
	case "withdraw":
		err = l.unhijack(f.A, f.Prefix)
		done = fmt.Sprintf("%s no longer originates %s", f.A, f.Prefix)
	case "reroute", "unroute":
		err = l.reroute(f.A, f.B, f.Via, f.Kind == "unroute")
		if f.Kind == "unroute" {
			done = "direct again"
		}
	case "down", "up":
		err = l.setLink(f.A, f.B, f.Kind)
		done = "link " + f.Kind + " at both ends"
	case "reset":
		var n int
		n, err = l.reset(f.A, f.B)
		done = fmt.Sprintf("%d BGP sessions reset by %s", n, f.A)
	default:
		err = l.impair(f)
		switch {
		case f.Kind == "clear":
			done = "delay and loss removed"
		case f.Kind == "delay" && f.Delay == 0, f.Kind == "loss" && f.Loss == 0:
			done = "applied (removed)"
		}
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", f, err)
	}
	return f.String() + ": " + done, nil
}

// Fault injects a fault between two routers (see FaultKinds); arg is the
// delay, the loss or reroute's VIA where the kind takes one.
func (l *Lab) Fault(kind, a, b, arg string) error {
	args := []string{kind, a, b}
	if arg != "" {
		args = append(args, arg)
	}
	f, err := ParseFault(args)
	if err != nil {
		return err
	}
	_, err = l.Apply(context.Background(), f)
	return err
}

// ends returns the link between a and b, the two routers, and each
// one's interface on it.
func (l *Lab) ends(a, b string) (lk Link, ra, rb Router, aIf, bIf string, err error) {
	lk, ok := l.Topo.LinkBetween(a, b)
	if !ok {
		return lk, ra, rb, "", "", fmt.Errorf("no direct link between %s and %s", a, b)
	}
	ra, _ = l.Topo.Router(a)
	rb, _ = l.Topo.Router(b)
	aIf, bIf = lk.AIf, lk.BIf
	if ra.Index != lk.A {
		aIf, bIf = lk.BIf, lk.AIf
	}
	return lk, ra, rb, aIf, bIf, nil
}

// setLink takes a link down or up at both ends. Up also puts back the
// link's addresses and routes: a lab made before keep_addr_on_down was
// set lost its IPv6 addresses on down, and the kernel re-adds the
// connected routes without their quickack.
func (l *Lab) setLink(a, b, state string) error {
	lk, ra, rb, aIf, bIf, err := l.ends(a, b)
	if err != nil {
		return err
	}
	if err := nsRun(ra.NS, "ip", "link", "set", aIf, state); err != nil {
		return err
	}
	if err := nsRun(rb.NS, "ip", "link", "set", bIf, state); err != nil {
		return err
	}
	if state != "up" {
		return nil
	}
	return runSteps(l.linkAddrs(lk))
}

func (l *Lab) reset(a, b string) (int, error) {
	ra, _ := l.Topo.Router(a)
	n := 0
	for _, p := range l.Topo.Peers(ra) {
		if p.PeerName != b {
			continue
		}
		if ra.Daemon == "bird" {
			if err := l.birdReset(ra, p.PeerAddr); err != nil {
				return n, err
			}
			n++
			continue
		}
		if ra.Daemon == "frr" {
			if err := l.vtysh(ra, "clear bgp "+p.PeerAddr.String()); err != nil {
				return n, err
			}
			n++
			continue
		}
		cli, err := l.bin("gobgp")
		if err != nil {
			return n, err
		}
		if err := nsRun(ra.NS, cli, "-u", "127.0.0.1", "-p", fmt.Sprint(gobgpAPIPort), "neighbor", p.PeerAddr.String(), "reset"); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// impair sets delay, loss or neither on frames from f.A to f.B, like
// netem on A's egress would.
func (l *Lab) impair(f Fault) error {
	lk, _, _, _, _, err := l.ends(f.A, f.B)
	if err != nil {
		return err
	}
	all, err := l.loadImpairments()
	if err != nil {
		return err
	}
	imp := all[lk.Index][f.A]
	switch f.Kind {
	case "clear":
		imp = wire.Impairment{}
	case "delay":
		imp.Delay = f.Delay
	case "loss":
		imp.Loss = f.Loss
	default:
		return errors.New("not a delay, loss or clear fault")
	}
	return l.setImpairment(lk, f.A, imp)
}

// Hijack makes router r originate prefix (a prefix it does not own, or a
// more-specific of another router's), as a hijack or a leak would.
func (l *Lab) Hijack(name, prefix string) error {
	f, err := ParseFault([]string{"hijack", name, prefix})
	if err != nil {
		return err
	}
	_, err = l.Apply(context.Background(), f)
	return err
}

// routerFault tells the faults that name one router, not a link.
func routerFault(kind string) bool {
	return kind == "hijack" || kind == "invalid" || kind == "withdraw"
}

// unhijack makes router name stop originating p.
func (l *Lab) unhijack(name string, p netip.Prefix) error {
	r, _ := l.Topo.Router(name)
	af := "ipv4"
	if p.Addr().Is6() {
		af = "ipv6"
	}
	switch r.Daemon {
	case "bird":
		return l.birdUnhijack(r, p)
	case "frr":
		return nsRun(r.NS, "vtysh", "--vty_socket", l.FRRDir(r), "-d", "bgpd", "-c", "configure terminal",
			"-c", fmt.Sprintf("router bgp %d", r.ASN), "-c", "address-family "+af+" unicast", "-c", "no network "+p.String())
	}
	cli, err := l.bin("gobgp")
	if err != nil {
		return err
	}
	return nsRun(r.NS, cli, "-u", "127.0.0.1", "-p", fmt.Sprint(gobgpAPIPort), "global", "rib", "del", p.String(), "-a", af)
}

func (l *Lab) hijack(name string, p netip.Prefix) error {
	r, _ := l.Topo.Router(name)
	if r.Daemon == "bird" {
		return l.birdHijack(r, p)
	}
	if r.Daemon == "frr" {
		af := "ipv4"
		if p.Addr().Is6() {
			af = "ipv6"
		}
		return nsRun(r.NS, "vtysh", "--vty_socket", l.FRRDir(r), "-d", "bgpd", "-c", "configure terminal",
			"-c", fmt.Sprintf("router bgp %d", r.ASN), "-c", "address-family "+af+" unicast", "-c", "network "+p.String())
	}
	cli, err := l.bin("gobgp")
	if err != nil {
		return err
	}
	fam := "ipv4"
	if p.Addr().Is6() {
		fam = "ipv6"
	}
	return nsRun(r.NS, cli, "-u", "127.0.0.1", "-p", fmt.Sprint(gobgpAPIPort), "global", "rib", "add", p.String(), "-a", fam)
}

// Reroute sends the traffic between a and b's link addresses through via,
// an extra hop, with host routes on all three (and back with undo).
// via must be linked to both.
func (l *Lab) Reroute(a, b, via string, undo bool) error {
	kind := "reroute"
	if undo {
		kind = "unroute"
	}
	f, err := ParseFault([]string{kind, a, b, via})
	if err != nil {
		return err
	}
	_, err = l.Apply(context.Background(), f)
	return err
}

func (l *Lab) reroute(a, b, via string, undo bool) error {
	ab, _ := l.Topo.LinkBetween(a, b)
	av, _ := l.Topo.LinkBetween(a, via)
	vb, _ := l.Topo.LinkBetween(via, b)
	ra, _ := l.Topo.Router(a)
	rb, _ := l.Topo.Router(b)
	rv, _ := l.Topo.Router(via)
	// end returns router r's addresses on link lk.
	end := func(lk Link, r Router) (v4, v6 netip.Addr) {
		if lk.A == r.Index {
			return lk.A4, lk.A6
		}
		return lk.B4, lk.B6
	}
	a4, a6 := end(ab, ra)
	b4, b6 := end(ab, rb)
	va4, va6 := end(av, rv) // via, on the a side
	vb4, vb6 := end(vb, rv) // via, on the b side
	aV4, aV6 := end(av, ra) // a, towards via
	bV4, bV6 := end(vb, rb) // b, towards via
	verb := "replace"
	if undo {
		verb = "del"
	}
	routes := []struct {
		ns      string
		dst, gw netip.Addr
	}{
		{ra.NS, b4, va4}, {ra.NS, b6, va6},
		{rb.NS, a4, vb4}, {rb.NS, a6, vb6},
		{rv.NS, b4, bV4}, {rv.NS, b6, bV6},
		{rv.NS, a4, aV4}, {rv.NS, a6, aV6},
	}
	for _, r := range routes {
		fam, plen := "-4", "/32"
		if r.dst.Is6() {
			fam, plen = "-6", "/128"
		}
		args := []string{fam, "route", verb, r.dst.String() + plen}
		if !undo {
			args = append(args, "via", r.gw.String())
		}
		if err := nsRun(r.ns, "ip", args...); err != nil {
			return err
		}
	}
	return nil
}
