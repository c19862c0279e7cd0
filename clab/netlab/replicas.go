package netlab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/meshd/meshd/cluster"
)

// Cluster mode in the lab (`meshd-lab up --replicas N`): etcd runs in the
// management namespace on an address of its own, and each meshd replica
// in a namespace of its own on the management bridge, so that one replica
// can be killed, paused or cut from etcd while the others and the routers
// are untouched. Routers send their BMP to the replicas in turn, so some
// land on a replica that does not own the router's gNMI target and are
// relayed, as they would be in a real fleet.
const (
	// EtcdAddr is etcd's address on the management bridge: a second
	// address, so that partition-replica can cut exactly etcd from a
	// replica (a blackhole route) and nothing else.
	EtcdAddr = "10.77.0.2"
	EtcdPort = 2379
	// MaxReplicas bounds --replicas: the replicas' addresses are
	// 10.77.0.201 and up, past the routers' (10.77.0.11 to .70).
	MaxReplicas = 9
)

// ReplicaName is replica n's member name and its process key in the lab.
func ReplicaName(n int) string { return fmt.Sprintf("meshd-%d", n) }

// ReplicaNS is replica n's namespace.
func ReplicaNS(n int) string { return fmt.Sprintf("%sm%d", Prefix, n) }

// ReplicaAddr is replica n's address on the management bridge, where it
// listens for BMP, gNMI and HTTP.
func ReplicaAddr(n int) string { return fmt.Sprintf("10.77.0.%d", 200+n) }

func etcdEndpoint() string { return fmt.Sprintf("http://%s:%d", EtcdAddr, EtcdPort) }

// bmpAddr is where router r sends its BMP: meshd in the management
// namespace, or the balancer in front of the replicas (balancer.go).
func (l *Lab) bmpAddr(Router) string {
	if l.State.Replicas == 0 {
		return MgmtAddr
	}
	return BalancerAddr
}

// frrBMPAddrs are where an FRR router sends its BMP: with replicas, two
// of them directly (FRR takes several BMP targets), so that the owner of
// the router gets it on two paths, one relayed, and holds one session
// as a standby (bmpbridge's standby.go); gobgpd and BIRD routers go
// through the balancer.
func (l *Lab) frrBMPAddrs(r Router) []string {
	if l.State.Replicas < 2 {
		return []string{l.bmpAddr(r)}
	}
	a := (r.Index-1)%l.State.Replicas + 1
	b := a%l.State.Replicas + 1
	return []string{ReplicaAddr(a), ReplicaAddr(b)}
}

// meshdAddrs are where a reader reaches meshd's listener on port, from
// the management namespace: the one meshd, or every replica that no
// fault has stopped, paused or cut (any replica answers for the fleet).
func (l *Lab) meshdAddrs(port int) ([]string, error) {
	if l.State.Replicas == 0 {
		return []string{fmt.Sprintf("127.0.0.1:%d", port)}, nil
	}
	var out []string
	for n := 1; n <= l.State.Replicas; n++ {
		if _, faulted := l.State.Faulted[ReplicaName(n)]; !faulted {
			out = append(out, fmt.Sprintf("%s:%d", ReplicaAddr(n), port))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("every replica is under a fault (%s): none to read meshd from", l.faultList())
	}
	return out, nil
}

func (l *Lab) faultList() string {
	var s []string
	for n := 1; n <= l.State.Replicas; n++ {
		if f, ok := l.State.Faulted[ReplicaName(n)]; ok {
			s = append(s, ReplicaName(n)+": "+f)
		}
	}
	return strings.Join(s, "; ")
}

// addReplicaNS gives replica n its namespace, linked to the bridge.
func (l *Lab) addReplicaNS(n int) error {
	ns := ReplicaNS(n)
	if err := l.addNS(ns); err != nil {
		return err
	}
	rIf, mIf := "mgmt0", fmt.Sprintf("m-m%d", n)
	if err := run("ip", "link", "add", rIf, "netns", ns, "type", "veth", "peer", "name", mIf, "netns", MgmtNS); err != nil {
		return err
	}
	return runSteps([][]string{
		{ns, "ip", "addr", "add", ReplicaAddr(n) + "/24", "dev", rIf},
		{ns, "ip", "link", "set", rIf, "up"},
		{MgmtNS, "ip", "link", "set", mIf, "master", "br0"},
		{MgmtNS, "ip", "link", "set", mIf, "up"},
	})
}

func (l *Lab) startEtcd() error {
	bin, err := l.bin("etcd")
	if err != nil {
		return fmt.Errorf("etcd: %w (install with make tools)", err)
	}
	if err := nsRun(MgmtNS, "ip", "addr", "add", EtcdAddr+"/24", "dev", "br0"); err != nil {
		return err
	}
	dir := filepath.Join(l.State.Dir, "etcd")
	// A new lab starts with no members and no owners.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	cu, pu := etcdEndpoint(), fmt.Sprintf("http://%s:%d", EtcdAddr, EtcdPort+1)
	if err := l.start("etcd", MgmtNS, bin, "--name", "lab", "--data-dir", dir,
		"--listen-client-urls", cu, "--advertise-client-urls", cu,
		"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
		"--initial-cluster", "lab="+pu, "--initial-cluster-state", "new",
		"--logger", "zap", "--log-level", "warn"); err != nil {
		return err
	}
	l.State.Addrs["etcd"] = cu
	return waitHTTP(MgmtNS, fmt.Sprintf("%s:%d", EtcdAddr, EtcdPort), "/health", 30*time.Second)
}

// leaseTTL is the replicas' etcd lease: a killed replica's routers are
// collected again by another within about this long.
func (l *Lab) leaseTTL() time.Duration {
	if l.State.LeaseTTL > 0 {
		return l.State.LeaseTTL
	}
	return cluster.DefaultLeaseTTL
}

// ReplicaConfig is replica n's meshd config: the shared targets file,
// its own listeners and spool, and the cluster section.
func (l *Lab) ReplicaConfig(n int) string {
	addr := ReplicaAddr(n)
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by 'meshd-lab up --replicas %d'.
log:
  level: info
http:
  listen: "%s:%d"
  # The lab's management network is private: the status page there
  # needs no TLS or credentials.
  allow-insecure: true
bmp:
  listen: ["%s:%d"]
`, l.State.Replicas, addr, HTTPPort, addr, BMPPort)
	b.WriteString(sinkConfig(MgmtAddr, InfluxPort, filepath.Join(l.State.Dir, ReplicaName(n)+"-spool"), fmt.Sprintf("%s:%d", addr, GNMIPort)))
	// The management network is private to the lab, hence no TLS on the
	// gNMI target the replicas also reach each other's on.
	fmt.Fprintf(&b, `  allow-insecure: true
targets-file: %q
cluster:
  endpoints: [%q]
  name: %s
  lease-ttl: %v
  settle: 2s
  advertise:
    bmp: "%s:%d"
    gnmi: "%s:%d"
    http: "%s:%d"
`, filepath.Join(l.State.Dir, "targets.yaml"), etcdEndpoint(), ReplicaName(n), l.leaseTTL(),
		addr, BMPPort, addr, GNMIPort, addr, HTTPPort)
	return b.String()
}

// startReplicas writes the shared targets file and starts every replica
// at once, as an operator's deployment would: the settle time keeps the
// first from taking the whole fleet.
func (l *Lab) startReplicas() error {
	if err := os.WriteFile(filepath.Join(l.State.Dir, "targets.yaml"), []byte(l.targetsYAML("")), 0o644); err != nil {
		return err
	}
	for n := 1; n <= l.State.Replicas; n++ {
		if err := l.startReplica(n); err != nil {
			return err
		}
	}
	for n := 1; n <= l.State.Replicas; n++ {
		if err := l.waitReplica(n); err != nil {
			return err
		}
	}
	l.State.Addrs["meshd-http"] = fmt.Sprintf("%s:%d", ReplicaAddr(1), HTTPPort)
	l.State.Addrs["gnmi"] = fmt.Sprintf("%s:%d", ReplicaAddr(1), GNMIPort)
	return l.save()
}

func (l *Lab) startReplica(n int) error {
	name := ReplicaName(n)
	conf := filepath.Join(l.State.Dir, name+".yaml")
	if err := os.WriteFile(conf, []byte(l.ReplicaConfig(n)), 0o644); err != nil {
		return err
	}
	bin, err := l.opts.binary("meshd", l.opts.Meshd)
	if err != nil {
		return err
	}
	return l.start(name, ReplicaNS(n), bin, "run", "-c", conf)
}

func (l *Lab) waitReplica(n int) error {
	name := ReplicaName(n)
	// A replica that exits at start (a bad config) is named with its log
	// at once, not after the whole wait.
	if err := l.waitLog(name, "cluster: joined", 30*time.Second); err != nil {
		return err
	}
	if err := waitHTTP(ReplicaNS(n), fmt.Sprintf("%s:%d", ReplicaAddr(n), HTTPPort), "/healthz", 30*time.Second); err != nil {
		return fmt.Errorf("%s: %w; the end of its log:\n%s", name, err, indent(l.logTail(name, logTailLines)))
	}
	return nil
}

// CheckReplica says whether a replica fault fits a lab of replicas
// replicas.
func CheckReplica(f Fault, replicas int) error {
	if replicas == 0 {
		return fmt.Errorf("%s: this lab has no replicas (meshd-lab up --replicas 3)", f)
	}
	if f.Replica < 1 || f.Replica > replicas {
		return fmt.Errorf("%s: no replica %d (this lab has 1 to %d)", f, f.Replica, replicas)
	}
	return nil
}

// replicaFault applies a fault to replica f.Replica and says what it did.
// The state file records the fault, so that readers skip the replica and
// Health does not report a replica the operator killed as a lab failure.
func (l *Lab) replicaFault(ctx context.Context, f Fault) (string, error) {
	if err := CheckReplica(f, l.State.Replicas); err != nil {
		return "", err
	}
	n := f.Replica
	name := ReplicaName(n)
	pid, running := l.running(name)
	current, faulted := l.State.Faulted[name]
	mark := func(what string) error {
		if l.State.Faulted == nil {
			l.State.Faulted = map[string]string{}
		}
		if what == "" {
			delete(l.State.Faulted, name)
		} else {
			l.State.Faulted[name] = what
		}
		return l.save()
	}
	switch f.Kind {
	case "kill-replica":
		if !running {
			return "", fmt.Errorf("%s: %s is not running", f, name)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s killed (SIGKILL, pid %d): its routers move to the others within its lease (%v)", name, pid, l.leaseTTL()), mark("killed")
	case "start-replica":
		if running {
			return "", fmt.Errorf("%s: %s is running (pid %d)", f, name, pid)
		}
		if err := l.startReplica(n); err != nil {
			return "", err
		}
		if err := l.waitReplica(n); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s started again (pid %d): it takes back its share once membership settles", name, l.State.PIDs[name]), mark("")
	case "pause-replica":
		if !running {
			return "", fmt.Errorf("%s: %s is not running", f, name)
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return "", err
		}
		if err := mark("paused"); err != nil {
			return "", err
		}
		if f.Pause == 0 {
			return fmt.Sprintf("%s paused (SIGSTOP): resume-replica %d to continue it", name, n), nil
		}
		paused := time.Now()
		select {
		case <-time.After(f.Pause):
		case <-ctx.Done():
			// Interrupted: continue the replica rather than leave it
			// stopped with nobody to resume it.
		}
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			return "", err
		}
		held := time.Since(paused).Round(100 * time.Millisecond)
		if held < l.leaseTTL() {
			return fmt.Sprintf("%s paused for %v (SIGSTOP), then continued (SIGCONT): less than its lease (%v), so it kept its routers", name, held, l.leaseTTL()), mark("")
		}
		return fmt.Sprintf("%s paused for %v (SIGSTOP), then continued (SIGCONT): past its lease (%v), it had given its routers up and writes nothing for them", name, held, l.leaseTTL()), mark("")
	case "resume-replica":
		if current != "paused" {
			return "", fmt.Errorf("%s: %s is not paused", f, name)
		}
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			return "", err
		}
		return name + " continued (SIGCONT)", mark("")
	case "partition-replica":
		if faulted && current == "cut from etcd" {
			return "", fmt.Errorf("%s: %s is already cut from etcd", f, name)
		}
		if err := nsRun(ReplicaNS(n), "ip", "route", "add", "blackhole", EtcdAddr+"/32"); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s cut from etcd (blackhole route to %s): it stops collecting before its lease ends, and the others take its routers", name, EtcdAddr), mark("cut from etcd")
	case "heal-replica":
		if current != "cut from etcd" {
			return "", fmt.Errorf("%s: %s is not cut from etcd", f, name)
		}
		if err := nsRun(ReplicaNS(n), "ip", "route", "del", "blackhole", EtcdAddr+"/32"); err != nil {
			return "", err
		}
		return name + " reaches etcd again: it rejoins and takes back its share", mark("")
	}
	return "", errors.New("not a replica fault: " + f.Kind)
}

// ClusterStatus is what `meshd cluster status` says of the lab's
// replicas, read by the lab's own meshd binary inside the management
// namespace (where etcd is).
func (l *Lab) ClusterStatus(ctx context.Context) (*cluster.Status, error) {
	if l.State.Replicas == 0 {
		return nil, errors.New("this lab has no replicas (meshd-lab up --replicas 3)")
	}
	bin, err := l.opts.binary("meshd", l.opts.Meshd)
	if err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", MgmtNS, bin, "cluster", "status", "--etcd", etcdEndpoint(), "--json").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("meshd cluster status: %w: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return nil, fmt.Errorf("meshd cluster status: %w", err)
	}
	var st cluster.Status
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("meshd cluster status: %w", err)
	}
	return &st, nil
}
