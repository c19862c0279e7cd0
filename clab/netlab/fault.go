package netlab

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// ErrNoNetem is returned for delay and loss faults on kernels built
// without the netem queueing discipline.
var ErrNoNetem = errors.New("this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM), so delay and loss cannot be injected here")

// Fault injects a fault between two routers: "down", "up", "reset",
// "delay" (arg: e.g. 20ms) or "loss" (arg: e.g. 5%).
func (l *Lab) Fault(kind, a, b, arg string) error {
	lk, ok := l.Topo.LinkBetween(a, b)
	if !ok {
		return fmt.Errorf("no direct link between %s and %s", a, b)
	}
	ra, _ := l.Topo.Router(a)
	rb, _ := l.Topo.Router(b)
	aIf, bIf := lk.AIf, lk.BIf
	if ra.Index != lk.A {
		aIf, bIf = lk.BIf, lk.AIf
	}
	switch kind {
	case "down", "up":
		if err := nsRun(ra.NS, "ip", "link", "set", aIf, kind); err != nil {
			return err
		}
		return nsRun(rb.NS, "ip", "link", "set", bIf, kind)
	case "reset":
		for _, p := range l.Topo.Peers(ra) {
			if p.PeerName != b {
				continue
			}
			if ra.Daemon == "frr" {
				if err := l.vtysh(ra, "clear bgp "+p.PeerAddr.String()); err != nil {
					return err
				}
				continue
			}
			cli, err := l.bin("gobgp")
			if err != nil {
				return err
			}
			if err := nsRun(ra.NS, cli, "-u", "127.0.0.1", "-p", fmt.Sprint(gobgpAPIPort), "neighbor", p.PeerAddr.String(), "reset"); err != nil {
				return err
			}
		}
		return nil
	case "delay", "loss":
		if arg == "" {
			return fmt.Errorf("%s needs a value, e.g. 'meshd lab fault %s %s %s %s'", kind, kind, a, b, map[string]string{"delay": "20ms", "loss": "5%"}[kind])
		}
		args := []string{"tc", "qdisc", "replace", "dev", aIf, "root", "netem", kind, arg}
		if arg == "0" || arg == "0ms" || arg == "0%" {
			args = []string{"tc", "qdisc", "del", "dev", aIf, "root"}
		}
		out, err := exec.Command("ip", append([]string{"netns", "exec", ra.NS}, args...)...).CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "unknown") {
				return ErrNoNetem
			}
			return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	return fmt.Errorf("unknown fault %q: want down, up, reset, delay or loss", kind)
}
