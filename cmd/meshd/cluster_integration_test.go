//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshd/meshd/bench/gnmisim"
	"github.com/meshd/meshd/cluster"
	"github.com/meshd/meshd/gnmiclient"
	"github.com/meshd/meshd/internal/testenv"
)

// replica is one `meshd run` of the cluster.
type replica struct {
	name string
	cfg  string
	http int
	cmd  *exec.Cmd
}

func (r *replica) synced(t *testing.T) map[string]bool {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/api/gnmi/targets", r.http))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var ts []gnmiclient.TargetStatus
	if json.NewDecoder(resp.Body).Decode(&ts) != nil {
		return nil
	}
	out := map[string]bool{}
	for _, s := range ts {
		out[s.Name] = s.State == gnmiclient.StateSynced
	}
	return out
}

// startFleet starts a simulated fleet on loopback ports below the
// ephemeral range, trying other bases if one is taken.
func startFleet(t *testing.T, targets int) *gnmisim.Sim {
	t.Helper()
	var err error
	for range 10 {
		var sim *gnmisim.Sim
		ctx, cancel := context.WithCancel(context.Background())
		sim, err = gnmisim.Start(ctx, gnmisim.Config{Targets: targets, Neighbors: 2, Rate: 20, BasePort: 25000 + rand.IntN(7000), Prefix: "router"})
		if err == nil {
			t.Cleanup(func() { cancel(); sim.Wait() })
			return sim
		}
		cancel()
	}
	t.Fatalf("fleet: %v", err)
	return nil
}

// TestClusterSharesTheFleet runs three real meshd replicas on a real
// etcd with one shared targets file: every target is collected by
// exactly one replica, `meshd cluster status` shows the members and the
// ownership, and after kill -9 of one replica its targets are collected
// again by the others, each still by one.
func TestClusterSharesTheFleet(t *testing.T) {
	e := testenv.StartEtcd(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "meshd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	const fleet = 30
	sim := startFleet(t, fleet)
	targetsFile := filepath.Join(dir, "targets.yaml")
	if err := sim.WriteTargetsFile(targetsFile); err != nil {
		t.Fatal(err)
	}
	var rs []*replica
	for i := range 3 {
		r := &replica{name: fmt.Sprintf("meshd-%d", i), http: testenv.LowPort(t)}
		r.cfg = filepath.Join(dir, r.name+".yaml")
		cfg := fmt.Sprintf("log:\n  level: info\nhttp:\n  listen: 127.0.0.1:%d\ntargets-file: %s\ncluster:\n  endpoints: [%s]\n  name: %s\n  lease-ttl: 2s\n  settle: 1s\n  advertise:\n    http: 127.0.0.1:%d\n",
			r.http, targetsFile, e.Endpoint, r.name, r.http)
		if err := os.WriteFile(r.cfg, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		logf, err := os.Create(filepath.Join(dir, r.name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		r.cmd = exec.Command(bin, "run", "-c", r.cfg)
		r.cmd.Stdout, r.cmd.Stderr = logf, logf
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		logf.Close()
		t.Cleanup(func() { _ = r.cmd.Process.Kill(); _ = r.cmd.Wait() })
		rs = append(rs, r)
	}
	// once checks that every target is synced on exactly one live
	// replica and on none other, and says how they are spread.
	once := func(live []*replica) (bool, string) {
		count := map[string]int{}
		synced := 0
		spread := ""
		for _, r := range live {
			ts := r.synced(t)
			spread += fmt.Sprintf(" %s:%d", r.name, len(ts))
			for name, ok := range ts {
				count[name]++
				if ok {
					synced++
				}
			}
		}
		for _, n := range count {
			if n > 1 {
				return false, "a target on two replicas:" + spread
			}
		}
		return len(count) == fleet && synced == fleet, spread
	}
	var spread string
	testenv.WaitFor(t, 30*time.Second, "every target synced on exactly one replica", func() bool {
		ok, s := once(rs)
		spread = s
		return ok
	})
	t.Logf("targets per replica:%s", spread)
	limit := cluster.Capacity(fleet, 3, cluster.DefaultLoadFactor)
	for _, r := range rs {
		if n := len(r.synced(t)); n > limit {
			t.Errorf("%s collects %d targets, over the bound %d", r.name, n, limit)
		}
	}

	out, err := exec.Command(bin, "cluster", "status", "--json", "-c", rs[0].cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("meshd cluster status: %v\n%s", err, out)
	}
	var st cluster.Status
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("meshd cluster status --json: %v\n%s", err, out)
	}
	if len(st.Members) != 3 || len(st.Owners) != fleet {
		t.Errorf("cluster status: %d members and %d targets owned, want 3 and %d:\n%s", len(st.Members), len(st.Owners), fleet, out)
	}
	for i, m := range st.Members {
		if got := len(rs[0].synced(t)); m.Name == rs[0].name && m.Owns != got {
			t.Errorf("cluster status says %s owns %d, its /api/gnmi/targets has %d", m.Name, m.Owns, got)
		}
		if want := fmt.Sprintf("127.0.0.1:%d", rs[i].http); m.Name != rs[i].name || m.Advertise.HTTP != want {
			t.Errorf("cluster status member %d: %s advertising http %q, want %s advertising %s", i, m.Name, m.Advertise.HTTP, rs[i].name, want)
		}
	}

	// kill -9 one replica: the others take its targets once its lease
	// (2 s) is gone.
	_ = rs[2].cmd.Process.Signal(syscall.SIGKILL)
	_ = rs[2].cmd.Wait()
	killed := time.Now()
	testenv.WaitFor(t, 30*time.Second, "the killed replica's targets synced on exactly one live replica", func() bool {
		ok, s := once(rs[:2])
		spread = s
		return ok
	})
	t.Logf("all %d targets synced again %v after kill -9 of one replica (lease TTL 2 s); targets per replica:%s",
		fleet, time.Since(killed).Round(100*time.Millisecond), spread)

	// SIGSTOP meshd-1 for three lease TTLs: meshd-0 takes its targets;
	// once resumed, meshd-1 applies none of what its routers sent
	// meanwhile (its sockets hold seconds of it), before it may own
	// anything again (not before settle, 1 s).
	p := rs[1]
	owned := len(p.synced(t))
	before := notifications(t, p)
	_ = p.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(6 * time.Second)
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	time.Sleep(800 * time.Millisecond)
	applied := notifications(t, p) - before
	t.Logf("meshd-1 held %d targets when paused 6 s; it applied %.0f notifications in the 0.8 s after it resumed (its routers sent about %d meanwhile)",
		owned, applied, owned*2*20*6/3)
	if applied > float64(owned) {
		t.Errorf("meshd-1 applied %.0f notifications after its lease had ended: a paused replica must apply nothing it received for targets it may no longer own", applied)
	}
	testenv.WaitFor(t, 30*time.Second, "every target synced on exactly one replica after the pause, meshd-1 with its share again", func() bool {
		ok, s := once(rs[:2])
		spread = s
		return ok && len(p.synced(t)) >= fleet/4
	})
	t.Logf("after the pause, targets per replica:%s", spread)
}

// notifications is a replica's meshd_gnmi_notifications_total, summed.
func notifications(t *testing.T, r *replica) float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", r.http))
	if err != nil {
		t.Fatalf("%s metrics: %v", r.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var n float64
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "meshd_gnmi_notifications_total{") {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			n += v
		}
	}
	return n
}
