package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

var nsSeq atomic.Uint32

// Netns is a network namespace a test made; it is removed at test cleanup.
type Netns struct {
	Name string
}

// NewNetns creates a network namespace with a name unique to this process
// and brings its loopback up. prefix helps a person read `ip netns`.
func NewNetns(t testing.TB, prefix string) *Netns {
	t.Helper()
	RequireRoot(t)
	Binary(t, "ip")
	name := fmt.Sprintf("mt-%s-%d-%d", prefix, os.Getpid()%100000, nsSeq.Add(1))
	if len(name) > 30 {
		name = name[:30]
	}
	Run(t, "ip", "netns", "add", name)
	ns := &Netns{Name: name}
	t.Cleanup(func() {
		// Kill what still runs inside before the namespace goes, so no
		// daemon outlives the test.
		if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
			for _, pid := range strings.Fields(string(out)) {
				_ = exec.Command("kill", "-9", pid).Run()
			}
		}
		_, _ = Exec("ip", "netns", "del", name)
	})
	ns.Run(t, "ip", "link", "set", "lo", "up")
	return ns
}

// Run runs a command inside the namespace and fails the test if it fails.
func (n *Netns) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	return Run(t, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Command returns a command that runs inside the namespace.
func (n *Netns) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Veth joins two namespaces with a veth pair and gives each end the
// addresses given (CIDR form, IPv4 or IPv6; either list may be empty).
// It returns the interface names on the a and b sides.
func Veth(t testing.TB, a, b *Netns, aAddrs, bAddrs []string) (string, string) {
	t.Helper()
	n := nsSeq.Add(1)
	an, bn := fmt.Sprintf("va%d", n), fmt.Sprintf("vb%d", n)
	Run(t, "ip", "link", "add", an, "netns", a.Name, "type", "veth", "peer", "name", bn, "netns", b.Name)
	for _, addr := range aAddrs {
		a.AddAddr(t, an, addr)
	}
	for _, addr := range bAddrs {
		b.AddAddr(t, bn, addr)
	}
	a.Run(t, "ip", "link", "set", an, "up")
	b.Run(t, "ip", "link", "set", bn, "up")
	return an, bn
}

// AddAddr adds an address (CIDR form) to an interface in the namespace;
// IPv6 addresses skip duplicate address detection so they work at once.
func (n *Netns) AddAddr(t testing.TB, dev, cidr string) {
	t.Helper()
	args := []string{"addr", "add", cidr, "dev", dev}
	if strings.Contains(cidr, ":") {
		args = append(args, "nodad")
	}
	n.Run(t, "ip", args...)
}
