package netlab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/meshd/meshd/internal/wire"
)

// Options configure a lab.
type Options struct {
	Routers int
	// Replicas, when not 0, runs meshd in cluster mode: etcd and this
	// many replicas, each in a namespace of its own (replicas.go), with
	// etcd leases of LeaseTTL (0: meshd's default).
	Replicas int
	LeaseTTL time.Duration
	// RPKI runs an RPKI cache (stayrtr) with VRPs for the routers'
	// prefixes, and gives meshd the caches and a monitor: section
	// watching every router's prefixes (rpki.go).
	RPKI bool
	Dir  string // state, configs and logs
	// Meshd is the collector (meshd) run in the management namespace,
	// Probe the agent (meshd-probe) run in each router's namespace, and
	// Lab the binary with the lab's own daemons (meshd-lab: wire and
	// forward). Empty Lab is the running executable; empty Meshd and
	// Probe are the binaries of those names beside it (`make build` puts
	// all three in bin/).
	Meshd, Probe, Lab string
	// Bin finds a tool (gobgpd, gobgp, influxd, ...).
	Bin func(name string) (string, error)
	// Progress receives one line per step.
	Progress io.Writer
}

// State is what Up leaves on disk so that Status, Fault and Down work from
// another process, and Down works after a crash.
type State struct {
	Dir        string         `json:"dir"`
	Routers    int            `json:"routers"`
	Namespaces []string       `json:"namespaces"`
	PIDs       map[string]int `json:"pids"`
	// Started holds each process's start time (clock ticks after boot,
	// from /proc): a PID in a state file that outlived a reboot or the
	// process may have been reused, and Down must not signal a stranger.
	Started map[string]uint64 `json:"started,omitempty"`
	Addrs   map[string]string `json:"addrs"`
	// Replicas is how many meshd replicas share the lab's routers (0:
	// one meshd, not clustered), and Faulted the ones a fault has
	// killed, paused or cut from etcd, with what was done.
	Replicas int               `json:"replicas,omitempty"`
	LeaseTTL time.Duration     `json:"lease_ttl,omitempty"`
	Faulted  map[string]string `json:"faulted,omitempty"`
	// RPKI: the lab runs an RPKI cache and meshd watches its prefixes.
	RPKI bool `json:"rpki,omitempty"`
}

// Lab is a running lab.
type Lab struct {
	Topo  *Topology
	State State
	opts  Options
}

func (o *Options) progress(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

func run(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func nsRun(ns string, name string, args ...string) error {
	return run("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// Up builds the lab and starts everything in it. On error, what was
// built is torn down again.
func Up(ctx context.Context, o Options) (l *Lab, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the namespace lab needs root (network namespaces, veth links): run it with sudo")
	}
	topo, err := NewTopology(o.Routers)
	if err != nil {
		return nil, err
	}
	if o.Replicas < 0 || o.Replicas > MaxReplicas {
		return nil, fmt.Errorf("replicas: %d: want 0 (one meshd, not clustered) to %d", o.Replicas, MaxReplicas)
	}
	if o.RPKI && o.Replicas > 0 {
		return nil, errors.New("rpki: the lab's RPKI cache and alerts are for one meshd, not --replicas yet")
	}
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	// Find the three binaries before anything is built, so a missing one
	// is named up front, not after half a lab.
	if o.Meshd, err = o.binary("meshd", o.Meshd); err != nil {
		return nil, err
	}
	if o.Probe, err = o.binary("meshd-probe", o.Probe); err != nil {
		return nil, err
	}
	if o.Lab, err = o.binary("meshd-lab", o.Lab); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(o.Dir, stateFile)); err == nil {
		return nil, fmt.Errorf("a lab is already up (state in %s): run 'meshd-lab down' first", o.Dir)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	l = &Lab{Topo: topo, opts: o, State: State{Dir: o.Dir, Routers: o.Routers, Replicas: o.Replicas, LeaseTTL: o.LeaseTTL, RPKI: o.RPKI, PIDs: map[string]int{}, Addrs: map[string]string{}}}
	defer func() {
		if err != nil {
			_ = Down(o.Dir, o.Progress)
		}
	}()
	// Remove leftovers of a crashed lab before building anew.
	_ = cleanNamespaces()

	o.progress("creating %d router namespaces and the management namespace", len(topo.Routers))
	if err := l.addNS(MgmtNS); err != nil {
		return l, err
	}
	if err := l.addNS(WireNS); err != nil {
		return l, err
	}
	if err := nsRun(MgmtNS, "ip", "link", "add", "br0", "type", "bridge"); err != nil {
		return l, err
	}
	if err := nsRun(MgmtNS, "ip", "addr", "add", MgmtAddr+"/24", "dev", "br0"); err != nil {
		return l, err
	}
	if err := nsRun(MgmtNS, "ip", "link", "set", "br0", "up"); err != nil {
		return l, err
	}
	for _, r := range topo.Routers {
		if err := l.addRouter(r); err != nil {
			return l, err
		}
	}
	for n := 1; n <= o.Replicas; n++ {
		if err := l.addReplicaNS(n); err != nil {
			return l, err
		}
	}
	o.progress("linking routers: %d veth links, IPv4 and IPv6", len(topo.Links))
	for _, lk := range topo.Links {
		if err := l.addLink(lk); err != nil {
			return l, err
		}
	}
	if err := l.save(); err != nil {
		return l, err
	}
	if err := l.startWire(); err != nil {
		return l, err
	}

	o.progress("starting InfluxDB 1.8 in %s on %s:%d", MgmtNS, MgmtAddr, InfluxPort)
	if err := l.startInflux(); err != nil {
		return l, err
	}
	for _, r := range topo.Routers {
		if err := l.startProbe(r); err != nil {
			return l, err
		}
	}
	o.progress("started a keepalive probe in every router namespace (gNMI on :%d)", ProbePort)
	if o.Replicas > 0 {
		o.progress("starting etcd in %s on %s:%d", MgmtNS, EtcdAddr, EtcdPort)
		if err := l.startEtcd(); err != nil {
			return l, err
		}
		o.progress("starting %d meshd replicas in namespaces %s to %s (%s to %s; BMP :%d, gNMI target :%d, HTTP :%d)",
			o.Replicas, ReplicaNS(1), ReplicaNS(o.Replicas), ReplicaAddr(1), ReplicaAddr(o.Replicas), BMPPort, GNMIPort, HTTPPort)
		if err := l.startReplicas(); err != nil {
			return l, err
		}
		o.progress("starting the routers' BMP balancer on %s:%d (each connection to a live replica in turn)", BalancerAddr, BMPPort)
		if err := l.startBalancer(); err != nil {
			return l, err
		}
	} else {
		if o.RPKI {
			o.progress("starting an RPKI cache (stayrtr) in %s on 127.0.0.1:%d, with a VRP for each router's prefixes (%s)", MgmtNS, RTRPort, l.ROAFile())
			if err := l.startRTR(); err != nil {
				return l, err
			}
		}
		o.progress("starting meshd in %s (BMP %s:%d, gNMI target :%d, HTTP :%d)", MgmtNS, MgmtAddr, BMPPort, GNMIPort, HTTPPort)
		if err := l.startMeshd(); err != nil {
			return l, err
		}
	}
	for _, r := range topo.Routers {
		o.progress("starting %s on %s (AS %d)", r.Daemon, r.Name, r.ASN)
		start := l.startGobgpd
		switch r.Daemon {
		case "frr":
			start = l.startFRR
		case "bird":
			start = l.startBIRD
		}
		if err := start(ctx, r); err != nil {
			return l, err
		}
	}
	return l, l.save()
}

func (l *Lab) addNS(name string) error {
	if err := run("ip", "netns", "add", name); err != nil {
		return err
	}
	l.State.Namespaces = append(l.State.Namespaces, name)
	return nsRun(name, "ip", "link", "set", "lo", "up")
}

func (l *Lab) addRouter(r Router) error {
	if err := l.addNS(r.NS); err != nil {
		return err
	}
	// The management link: one end in the router, the other on br0.
	rIf, mIf := "mgmt0", "m-"+r.Name
	if err := run("ip", "link", "add", rIf, "netns", r.NS, "type", "veth", "peer", "name", mIf, "netns", MgmtNS); err != nil {
		return err
	}
	steps := [][]string{
		{r.NS, "ip", "addr", "add", r.Mgmt + "/24", "dev", rIf},
		{r.NS, "ip", "addr", "add", r.ID + "/32", "dev", "lo"},
		{r.NS, "ip", "link", "set", rIf, "up"},
		{MgmtNS, "ip", "link", "set", mIf, "master", "br0"},
		{MgmtNS, "ip", "link", "set", mIf, "up"},
		{r.NS, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{r.NS, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"},
	}
	for _, s := range steps {
		if err := nsRun(s[0], s[1], s[2:]...); err != nil {
			return err
		}
	}
	return nil
}

// addLink joins two routers through the wire namespace: each router's end
// is a veth whose peer sits in WireNS, where `meshd-lab wire` bridges the
// two in user space and adds the delay and loss faults ask for (this
// kernel family has no netem).
func (l *Lab) addLink(lk Link) error {
	a, b := l.Topo.Routers[lk.A-1], l.Topo.Routers[lk.B-1]
	wa, wb := lk.WireIfs()
	if err := run("ip", "link", "add", lk.AIf, "netns", a.NS, "type", "veth", "peer", "name", wa, "netns", WireNS); err != nil {
		return err
	}
	if err := run("ip", "link", "add", lk.BIf, "netns", b.NS, "type", "veth", "peer", "name", wb, "netns", WireNS); err != nil {
		return err
	}
	for _, x := range [][2]string{{a.NS, lk.AIf}, {b.NS, lk.BIf}, {WireNS, wa}, {WireNS, wb}} {
		if err := wire.DisableOffloads(x[0], x[1]); err != nil {
			return err
		}
	}
	steps := [][]string{
		// The kernel drops a link's IPv6 addresses when it goes down
		// unless told to keep them, and `fault up` would leave the IPv6
		// sessions unable to bind their local address.
		{a.NS, "sysctl", "-qw", "net.ipv6.conf." + lk.AIf + ".keep_addr_on_down=1"},
		{b.NS, "sysctl", "-qw", "net.ipv6.conf." + lk.BIf + ".keep_addr_on_down=1"},
		{WireNS, "ip", "link", "set", wa, "up"},
		{WireNS, "ip", "link", "set", wb, "up"},
		{a.NS, "ip", "link", "set", lk.AIf, "up"},
		{b.NS, "ip", "link", "set", lk.BIf, "up"},
	}
	if err := runSteps(steps); err != nil {
		return err
	}
	return runSteps(l.linkAddrs(lk))
}

// linkAddrs are the steps that give a link's two ends their addresses and
// routes, once the link is up; each may run again (replace, not add).
func (l *Lab) linkAddrs(lk Link) [][]string {
	a, b := l.Topo.Routers[lk.A-1], l.Topo.Routers[lk.B-1]
	steps := [][]string{
		{a.NS, "ip", "addr", "replace", lk.A4.String() + "/30", "dev", lk.AIf},
		{b.NS, "ip", "addr", "replace", lk.B4.String() + "/30", "dev", lk.BIf},
		{a.NS, "ip", "addr", "replace", lk.A6.String() + "/64", "dev", lk.AIf, "nodad"},
		{b.NS, "ip", "addr", "replace", lk.B6.String() + "/64", "dev", lk.BIf, "nodad"},
	}
	// Quick ACKs on the link's routes: a Linux speaker otherwise delays
	// the ACK of a lone keepalive by up to ~40 ms or more, which the
	// probe would rightly measure as round-trip time. The kernel puts
	// its own routes back, without quickack, when a link comes up again.
	for _, side := range []struct{ ns, dev string }{{a.NS, lk.AIf}, {b.NS, lk.BIf}} {
		v4 := netip.PrefixFrom(lk.A4, 30).Masked().String()
		v6 := netip.PrefixFrom(lk.A6, 64).Masked().String()
		steps = append(steps,
			[]string{side.ns, "ip", "route", "replace", v4, "dev", side.dev, "proto", "kernel", "scope", "link", "quickack", "1"},
			[]string{side.ns, "ip", "-6", "route", "replace", v6, "dev", side.dev, "proto", "kernel", "metric", "256", "quickack", "1"})
	}
	return steps
}

// runSteps runs commands, each {namespace, program, args...}, in order.
func runSteps(steps [][]string) error {
	for _, s := range steps {
		if err := nsRun(s[0], s[1], s[2:]...); err != nil {
			return err
		}
	}
	return nil
}

// start runs a daemon in a namespace, detached from the lab command so it
// outlives it, with its output in the lab folder.
func (l *Lab) start(key, ns, bin string, args ...string) error {
	return l.startHere(key, "ip", append([]string{"netns", "exec", ns, bin}, args...)...)
}

// startHere runs a lab daemon in the root namespace, detached, and
// records its pid for Down.
func (l *Lab) startHere(key, bin string, args ...string) error {
	logf, err := os.OpenFile(filepath.Join(l.State.Dir, key+".log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", key, err)
	}
	l.State.PIDs[key] = cmd.Process.Pid
	if st, err := procStart(cmd.Process.Pid); err == nil {
		if l.State.Started == nil {
			l.State.Started = map[string]uint64{}
		}
		l.State.Started[key] = st
	}
	go func() { _ = cmd.Wait() }()
	return l.save()
}

func (l *Lab) bin(name string) (string, error) {
	if l.opts.Bin != nil {
		return l.opts.Bin(name)
	}
	return exec.LookPath(name)
}

// save writes the state file whole or not at all: the lab's own daemons
// (the wire) read it as they start, while Up goes on recording pids, and
// a reader that caught the file truncated died at start (a lab with no
// links, seen once under a parallel build).
func (l *Lab) save() error {
	b, err := json.MarshalIndent(l.State, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(l.State.Dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(l.State.Dir, stateFile))
}

// running returns the PID of the lab's process key when that process is
// still the one the lab started.
func (l *Lab) running(key string) (int, bool) {
	pid := l.State.PIDs[key]
	if pid <= 0 {
		return 0, false
	}
	st, err := procStart(pid)
	if err != nil {
		return 0, false
	}
	want, known := l.State.Started[key]
	return pid, !known || st == want
}

// procStart is a live process's start time in clock ticks after boot
// (field 22 of /proc/PID/stat, after the command name, which may hold
// spaces).
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	if f[0] == "Z" || f[0] == "X" {
		// Exited, not yet reaped: its log is complete.
		return 0, fmt.Errorf("process %d has exited", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// DefaultDir is where the lab keeps its state unless told otherwise.
const DefaultDir = "/tmp/meshd-lab"

const stateFile = "state.json"

// Load reads the state of a running lab.
func Load(dir string) (*Lab, error) {
	if dir == "" {
		dir = DefaultDir
	}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("no lab is up (%w)", err)
	}
	l := &Lab{}
	if err := json.Unmarshal(b, &l.State); err != nil {
		return nil, fmt.Errorf("lab state %s: %w", dir, err)
	}
	if l.Topo, err = NewTopology(l.State.Routers); err != nil {
		return nil, err
	}
	return l, nil
}

// Down stops every process and removes every namespace and link the lab
// made, using the state file when there is one and the name prefix when
// there is not (after a crash).
func Down(dir string, progress io.Writer) error {
	if dir == "" {
		dir = DefaultDir
	}
	say := func(f string, a ...any) {
		if progress != nil {
			fmt.Fprintf(progress, f+"\n", a...)
		}
	}
	if l, err := Load(dir); err == nil {
		for key := range l.State.PIDs {
			pid, ok := l.running(key)
			if !ok {
				say("%s (pid %d) is no longer running", key, l.State.PIDs[key])
				continue
			}
			_ = syscall.Kill(-pid, syscall.SIGTERM)
			_ = syscall.Kill(pid, syscall.SIGTERM)
			// A paused replica acts on SIGTERM only once continued.
			_ = syscall.Kill(pid, syscall.SIGCONT)
			say("stopped %s (pid %d)", key, pid)
		}
		time.Sleep(300 * time.Millisecond)
	}
	err := cleanNamespaces()
	say("removed lab namespaces")
	_ = os.Remove(filepath.Join(dir, stateFile))
	return err
}

// cleanNamespaces kills what runs in every lab namespace and deletes them;
// veth links go with their namespaces.
func cleanNamespaces() error {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return fmt.Errorf("ip netns list: %w", err)
	}
	var errs []error
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], Prefix) {
			continue
		}
		ns := f[0]
		if pids, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
			for _, p := range strings.Fields(string(pids)) {
				if pid, err := strconv.Atoi(p); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if err := run("ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
			slog.Warn("lab down", slog.String("netns", ns), slog.Any("err", err))
		}
	}
	return errors.Join(errs...)
}

// IsUp reports whether a lab is up in dir: Up writes the state file
// before it starts anything, and Down removes it once everything is gone.
func IsUp(dir string) bool {
	if dir == "" {
		dir = DefaultDir
	}
	_, err := os.Stat(filepath.Join(dir, stateFile))
	return err == nil
}

// binary returns the path of one of meshd's binaries: the one opts names,
// else for the lab's own the running executable, else the one called name
// beside it.
func (o *Options) binary(name, given string) (string, error) {
	if given != "" {
		return given, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if name == "meshd-lab" {
		return self, nil
	}
	p := filepath.Join(filepath.Dir(self), name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s is not beside %s (make build puts meshd, meshd-probe and meshd-lab in bin/): %w", name, self, err)
	}
	return p, nil
}
