package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshd/meshd/gnmiclient"
	"github.com/meshd/meshd/internal/testenv"
)

// The cluster chaos harness (issue 18): real `meshd run` replicas sharing
// one simulated fleet through a real etcd, each reaching etcd through a
// proxy of its own (so that one can be cut off), writing to one real
// InfluxDB. One fault per row; what is measured comes from outside
// meshd where it can:
//   - overlaps: the fleet's own count of Subscribe streams that began
//     while their target had another open, that is a router collected
//     by two replicas at once;
//   - re-home: the fault until every target is synced on exactly one
//     live replica (each replica's /api/gnmi/targets, every 250 ms);
//   - the longest gap between a neighbor's points in InfluxDB over the
//     fault's window, and the fleet's notifications against InfluxDB's
//     distinct values (what a dead or fenced replica had received and
//     not written is lost by design, and shows as the gap);
//   - peak share: the most targets one replica held at once over the
//     average, at the cold start and after each fault;
//   - etcd's committed proposals a second, steady and over the fault.

// Cluster ports: below the ephemeral range, apart from the benchmark's
// and the soak's.
const (
	clusterEtcdProxyLow = 18901 // one per replica
	clusterHTTPLow      = 18911 // one per replica
	clusterInflux       = 18920
	clusterGNMILow      = 18921 // one per replica
	clusterFleetLow     = 19000 // one per target, at most 1,000
)

// ClusterFault is what a cluster row does.
type ClusterFault string

const (
	ClusterKill      ClusterFault = "kill -9 a replica"
	ClusterPause     ClusterFault = "SIGSTOP a replica"
	ClusterPartition ClusterFault = "cut a replica from etcd"
	ClusterRestart   ClusterFault = "restart every replica at once"
)

// ClusterScenario is one row's set-up.
type ClusterScenario struct {
	Fault                        ClusterFault
	Replicas, Targets, Neighbors int
	PointsPerSec                 int
	LeaseTTL, Hold               time.Duration // Hold: the pause's or cut's length
	Kills                        int           // kill rows: how many kills, one after another
}

// steady is how long the row measures the quiet cluster before its
// fault: long enough for a router's longest gap to show.
func (s ClusterScenario) steady() time.Duration {
	return max(6*time.Second, s.LeaseTTL)
}

func (s ClusterScenario) load() string {
	return fmt.Sprintf("%d replicas, %dx%d gNMI, %d points/s, lease %v", s.Replicas, s.Targets, s.Neighbors, s.PointsPerSec, s.LeaseTTL)
}

// ClusterRow is one fault's result.
type ClusterRow struct {
	Fault ClusterFault
	Load  string
	// ColdStart is start-up until every target was synced on exactly
	// one replica; ColdPeak the most targets one replica held meanwhile
	// over the average.
	ColdStart time.Duration
	ColdPeak  float64
	// Rehome is, per fault (10 kills: 10), the fault until every target
	// was synced on exactly one live replica.
	Rehome []time.Duration
	// Rebalance is, per kill, the killed replica's restart until every
	// target was synced on exactly one replica again: its share moves
	// back to it, each target with a gap of its own.
	Rebalance []time.Duration
	// Peak is the most targets one replica held at once, over the
	// average, after the fault.
	Peak float64
	// MaxGap is the longest gap between one neighbor's points over the
	// window; GapBound what the row allows.
	MaxGap, GapBound      time.Duration
	Expected, Found, Lost int64
	Overlaps              uint64
	EtcdSteady, EtcdFault float64 // committed proposals a second
	// ViewLocal and ViewRemote are the fleet-wide view's latency on the
	// first replica (notification timestamp to receipt), for the routers
	// it collects and for the others' (forwarded): p50 and p99.
	ViewLocal, ViewRemote [2]time.Duration
	AppliedAfterResume    float64 // pause rows
	Note, Failed          string
}

// tcpProxy forwards TCP to one address until cut, which closes its
// listener and every connection: a replica behind it is cut from etcd.
type tcpProxy struct {
	addr, to string
	mu       sync.Mutex
	lis      net.Listener
	conns    map[net.Conn]struct{}
}

func startTCPProxy(addr, to string) (*tcpProxy, error) {
	p := &tcpProxy{addr: addr, to: to, conns: map[net.Conn]struct{}{}}
	return p, p.heal()
}

func (p *tcpProxy) heal() error {
	lis, err := relisten(p.addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.lis = lis
	p.mu.Unlock()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", p.to)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[d] = struct{}{}, struct{}{}
			p.mu.Unlock()
			go func() { _, _ = io.Copy(d, c); d.Close() }()
			go func() { _, _ = io.Copy(c, d); c.Close() }()
		}
	}()
	return nil
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lis != nil {
		p.lis.Close()
		p.lis = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// clusterReplica is one `meshd run` of the cluster.
type clusterReplica struct {
	name, cfg, log string
	http           int
	proxy          *tcpProxy
	m              *meshdProc
	// paused or cut: left out of the view (the others must hold every
	// target without it), though it may hold some a while longer.
	paused, cut bool
}

// synced is the targets the replica has sessions for, and which of them
// are synced; ok false when it does not answer.
func (r *clusterReplica) synced() (map[string]bool, bool) {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/api/gnmi/targets", r.http))
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	var ts []gnmiclient.TargetStatus
	if json.NewDecoder(resp.Body).Decode(&ts) != nil {
		return nil, false
	}
	out := make(map[string]bool, len(ts))
	for _, s := range ts {
		out[s.Name] = s.State == gnmiclient.StateSynced
	}
	return out, true
}

// clusterView samples every live replica's targets every 250 ms.
type clusterView struct {
	mu       sync.Mutex
	once     bool // every target synced on exactly one answering replica
	peak     int  // most targets on one replica since reset
	quit     chan struct{}
	done     chan struct{}
	replicas func() []*clusterReplica
	targets  int
}

func startView(targets int, replicas func() []*clusterReplica) *clusterView {
	v := &clusterView{quit: make(chan struct{}), done: make(chan struct{}), replicas: replicas, targets: targets}
	go func() {
		defer close(v.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-v.quit:
				return
			case <-t.C:
			}
			count := map[string]int{}
			synced, most := 0, 0
			for _, r := range v.replicas() {
				if r.m == nil || r.paused || r.cut {
					continue
				}
				ts, ok := r.synced()
				if !ok {
					continue
				}
				most = max(most, len(ts))
				for name, s := range ts {
					count[name]++
					if s {
						synced++
					}
				}
			}
			once := len(count) == targets && synced == targets
			for _, n := range count {
				once = once && n == 1
			}
			v.mu.Lock()
			v.once, v.peak = once, max(v.peak, most)
			v.mu.Unlock()
		}
	}()
	return v
}

func (v *clusterView) stop() { close(v.quit); <-v.done }

// resetPeak starts a new peak; it returns the last one.
func (v *clusterView) resetPeak() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.peak
	v.peak = 0
	return p
}

// waitOnce waits until every target is synced on exactly one replica.
func (v *clusterView) waitOnce(timeout time.Duration) error {
	return waitFor(timeout, 100*time.Millisecond, func() (bool, error) {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.once, nil
	})
}

// invalidate forgets the last sample (a replica was just faulted).
func (v *clusterView) invalidate() {
	v.mu.Lock()
	v.once = false
	v.mu.Unlock()
}

// etcdProposals is etcd's committed proposals so far.
func etcdProposals(endpoint string) (float64, error) {
	mfs, err := scrape(endpoint + "/metrics")
	if err != nil {
		return 0, err
	}
	return sum(mfs, "etcd_server_proposals_committed_total"), nil
}

// runCluster runs one cluster row.
func runCluster(tb testing.TB, bins binaries, sc ClusterScenario) (*ClusterRow, error) {
	row := &ClusterRow{Fault: sc.Fault, Load: sc.load()}
	dir := tb.TempDir()
	etcd := testenv.StartEtcd(tb)
	in := testenv.StartInfluxd(tb)
	proxy, err := startProxy(fmt.Sprintf("127.0.0.1:%d", clusterInflux), in.URL)
	if err != nil {
		return nil, err
	}
	defer proxy.close()
	targetsFile := filepath.Join(dir, "targets.yaml")
	sim, err := startSim(bins.self, simFleet{targets: sc.Targets, neighbors: sc.Neighbors, rate: sc.PointsPerSec * 3 / 2,
		basePort: clusterFleetLow, prefix: "clu", count: true}, targetsFile)
	if err != nil {
		return nil, err
	}
	defer sim.close()
	etcdAddr := strings.TrimPrefix(etcd.Endpoint, "http://")

	var mu sync.Mutex
	var rs []*clusterReplica
	for i := range sc.Replicas {
		r := &clusterReplica{name: fmt.Sprintf("replica-%d", i), http: clusterHTTPLow + i}
		if r.proxy, err = startTCPProxy(fmt.Sprintf("127.0.0.1:%d", clusterEtcdProxyLow+i), etcdAddr); err != nil {
			return nil, err
		}
		defer r.proxy.cut()
		r.cfg, r.log = filepath.Join(dir, r.name+".yaml"), filepath.Join(dir, r.name+".log")
		cfg := fmt.Sprintf("log:\n  level: warn\nhttp:\n  listen: \"127.0.0.1:%d\"\ntargets-file: %q\n"+
			"influxdb:\n  url: %q\n  database: meshd\n  create-database: true\n  spool-dir: %q\n  snapshot-interval: -1s\n"+
			"gnmi-server:\n  listen: \"127.0.0.1:%d\"\n"+
			"cluster:\n  endpoints: [\"http://127.0.0.1:%d\"]\n  name: %s\n  lease-ttl: %v\n  settle: 2s\n  advertise:\n    gnmi: \"127.0.0.1:%d\"\n",
			r.http, targetsFile, proxy.URL(), filepath.Join(dir, r.name+"-spool"), clusterGNMILow+i, clusterEtcdProxyLow+i, r.name, sc.LeaseTTL, clusterGNMILow+i)
		if err := os.WriteFile(r.cfg, []byte(cfg), 0o644); err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	replicas := func() []*clusterReplica {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(rs)
	}
	start := func(r *clusterReplica) error {
		m, err := startMeshdAt(bins.meshd, r.cfg, r.log, r.http)
		mu.Lock()
		r.m = m
		mu.Unlock()
		return err
	}
	kill := func(r *clusterReplica) {
		mu.Lock()
		m := r.m
		r.m = nil
		mu.Unlock()
		if m != nil {
			_ = m.cmd.Process.Signal(syscall.SIGKILL)
			<-m.done
		}
	}
	defer func() {
		for _, r := range rs {
			if r.paused {
				_ = r.m.cmd.Process.Signal(syscall.SIGCONT)
			}
			if r.m != nil {
				_ = r.m.stop()
			}
		}
	}()
	view := startView(sc.Targets, replicas)
	defer view.stop()
	rehomeWait := 60*time.Second + 3*sc.LeaseTTL

	// Cold start: every replica at once.
	t0 := time.Now()
	errs := make(chan error, len(rs))
	for _, r := range rs {
		go func() { errs <- start(r) }()
	}
	for range rs {
		if err := <-errs; err != nil {
			return row, err
		}
	}
	if err := view.waitOnce(5 * time.Minute); err != nil {
		return row, fmt.Errorf("cold start: targets never each on one replica: %w", err)
	}
	row.ColdStart = time.Since(t0)
	avg := float64(sc.Targets) / float64(sc.Replicas)
	row.ColdPeak = float64(view.resetPeak()) / avg

	// Steady: etcd's rate, and the longest gap of a router's points
	// with nothing wrong (the fleet picks neighbors at random): the
	// noise the fault's gap bound is built on.
	p0, err := etcdProposals(etcd.Endpoint)
	if err != nil {
		return row, err
	}
	steadyFrom := time.Now()
	// The fleet-wide view: a STREAM of every router on the first
	// replica, its latency for the routers it collects and for the
	// others', whose changes come forwarded from their owners.
	own, _ := rs[0].synced()
	lat, err := viewLatency(fmt.Sprintf("127.0.0.1:%d", clusterGNMILow), own, sc.steady())
	if err != nil {
		return row, fmt.Errorf("fleet-wide view: %w", err)
	}
	row.ViewLocal, row.ViewRemote = lat[0], lat[1]
	p1, _ := etcdProposals(etcd.Endpoint)
	row.EtcdSteady = (p1 - p0) / time.Since(steadyFrom).Seconds()
	q := influxQuerier{url: in.URL}
	var baseGap time.Duration
	if err := waitFor(30*time.Second, time.Second, func() (bool, error) {
		var err error
		baseGap, err = q.maxGap(steadyFrom.Unix()+1, steadyFrom.Add(sc.steady()).Unix())
		return err == nil && baseGap > 0, nil
	}); err != nil {
		return row, fmt.Errorf("steady gaps: %w", err)
	}

	victim := rs[len(rs)-1]
	faultStart := time.Now()
	p0 = p1
	var failed []error
	switch sc.Fault {
	case ClusterKill:
		for k := range max(1, sc.Kills) {
			view.invalidate()
			at := time.Now()
			kill(victim)
			view.invalidate()
			if err := view.waitOnce(rehomeWait); err != nil {
				return row, fmt.Errorf("kill %d: targets not re-homed: %w", k+1, err)
			}
			row.Rehome = append(row.Rehome, time.Since(at))
			view.resetPeak()
			back := time.Now()
			if err := start(victim); err != nil {
				return row, err
			}
			view.invalidate()
			if err := view.waitOnce(rehomeWait); err != nil {
				return row, fmt.Errorf("kill %d: the restarted replica never took its share: %w", k+1, err)
			}
			row.Rebalance = append(row.Rebalance, time.Since(back))
			// Let the targets that moved back show collected before the
			// next kill: gaps of two kills would chain into one.
			time.Sleep(max(5*time.Second, 4*baseGap))
		}
	case ClusterPause:
		before, err := replicaNotifications(victim)
		if err != nil {
			return row, err
		}
		at := time.Now()
		_ = victim.m.cmd.Process.Signal(syscall.SIGSTOP)
		mu.Lock()
		victim.paused = true
		mu.Unlock()
		view.invalidate()
		if err := view.waitOnce(rehomeWait); err != nil {
			return row, fmt.Errorf("pause: targets not re-homed: %w", err)
		}
		row.Rehome = append(row.Rehome, time.Since(at))
		time.Sleep(time.Until(at.Add(sc.Hold)))
		_ = victim.m.cmd.Process.Signal(syscall.SIGCONT)
		mu.Lock()
		victim.paused = false
		mu.Unlock()
		// It cannot own anything before settle (2 s): whatever it
		// applied in the next 1.5 s came from before the pause.
		time.Sleep(1500 * time.Millisecond)
		after, err := replicaNotifications(victim)
		if err != nil {
			return row, err
		}
		row.AppliedAfterResume = after - before
		if row.AppliedAfterResume > float64(sc.Targets) {
			failed = append(failed, fmt.Errorf("the paused replica applied %.0f notifications after it resumed, before it could own anything again", row.AppliedAfterResume))
		}
	case ClusterPartition:
		at := time.Now()
		victim.proxy.cut()
		mu.Lock()
		victim.cut = true
		mu.Unlock()
		view.invalidate()
		if err := view.waitOnce(rehomeWait); err != nil {
			return row, fmt.Errorf("partition: targets not re-homed: %w", err)
		}
		row.Rehome = append(row.Rehome, time.Since(at))
		// Until its lease's deadline it may still hold targets; then
		// it must hold none.
		time.Sleep(sc.LeaseTTL)
		if ts, ok := victim.synced(); ok && len(ts) > 0 {
			failed = append(failed, fmt.Errorf("the replica cut from etcd still had %d sessions a lease TTL after the cut", len(ts)))
		}
		time.Sleep(time.Until(at.Add(sc.Hold)))
		if err := victim.proxy.heal(); err != nil {
			return row, err
		}
		mu.Lock()
		victim.cut = false
		mu.Unlock()
	case ClusterRestart:
		at := time.Now()
		for _, r := range rs {
			kill(r)
		}
		view.invalidate()
		view.resetPeak()
		for _, r := range rs {
			go func() { errs <- start(r) }()
		}
		for range rs {
			if err := <-errs; err != nil {
				return row, err
			}
		}
		if err := view.waitOnce(rehomeWait); err != nil {
			return row, fmt.Errorf("restart: targets not each on one replica: %w", err)
		}
		row.Rehome = append(row.Rehome, time.Since(at))
	default:
		return row, fmt.Errorf("unknown fault %q", sc.Fault)
	}
	view.invalidate()
	if err := view.waitOnce(rehomeWait); err != nil {
		return row, fmt.Errorf("after the fault: targets never each on one replica: %w", err)
	}
	faultEnd := time.Now()
	p1, _ = etcdProposals(etcd.Endpoint)
	row.EtcdFault = (p1 - p0) / faultEnd.Sub(faultStart).Seconds()
	row.Peak = float64(view.resetPeak()) / avg
	limit := float64(capacity(sc.Targets, sc.Replicas)) / avg
	if row.ColdPeak > limit {
		failed = append(failed, fmt.Errorf("a replica held %.2fx the average at the cold start (bound %.2fx)", row.ColdPeak, limit))
	}
	if sc.Fault == ClusterRestart && row.Peak > limit {
		failed = append(failed, fmt.Errorf("a replica held %.2fx the average after the restart (bound %.2fx)", row.Peak, limit))
	}
	if row.Overlaps, err = sim.overlaps(); err != nil {
		return row, err
	}
	if row.Overlaps > 0 && sc.Fault != ClusterPause {
		// A paused replica keeps its connections open: the routers see
		// two sessions until it resumes and closes its own.
		failed = append(failed, fmt.Errorf("%d times a router's session began while another replica had one", row.Overlaps))
	}

	// InfluxDB over the window, once the writes have settled.
	from, til := faultStart.Add(-3*time.Second).Unix()+1, faultEnd.Add(3*time.Second).Unix()
	err = waitFor(2*time.Minute, time.Second, func() (bool, error) {
		if time.Now().Unix() <= til+1 {
			return false, nil
		}
		var err1, err2 error
		row.Expected, err1 = sim.count(from, til)
		row.Found, err2 = q.count(from, til)
		return errors.Join(err1, err2) == nil, nil
	})
	if err != nil {
		return row, err
	}
	row.Lost = row.Expected - row.Found
	if row.MaxGap, err = q.maxGap(from, til); err != nil {
		return row, err
	}
	// A router goes without points while its targets re-home, and for
	// up to its own longest steady gap on either side of that (the last
	// point before, the first change after the new owner's sync); the
	// steady gap is the longest of a few seconds, so twice it again
	// allows for a longer wait in the fault's window.
	row.GapBound = slices.Max(row.Rehome) + 4*baseGap
	if len(row.Rebalance) > 0 {
		// A target taken over at a kill may move back at the restart
		// right after: both gaps can fall together.
		row.GapBound += slices.Max(row.Rebalance)
	}
	if sc.Fault == ClusterPause || sc.Fault == ClusterPartition {
		// The replica may keep its targets until its lease's deadline
		// (pause: it is frozen with them): the others take them only
		// once etcd ended the lease.
		row.GapBound = max(row.GapBound, sc.LeaseTTL+slices.Max(row.Rehome)+4*baseGap)
	}
	row.Note = fmt.Sprintf("longest steady gap of a router %v", baseGap.Round(10*time.Millisecond))
	if len(row.Rebalance) > 0 {
		reb := slices.Clone(row.Rebalance)
		slices.Sort(reb)
		row.Note += fmt.Sprintf("; after each restart, every target on one replica again in %v p50, %v max", reb[len(reb)/2].Round(100*time.Millisecond), reb[len(reb)-1].Round(100*time.Millisecond))
	}
	if row.MaxGap > row.GapBound {
		failed = append(failed, fmt.Errorf("a neighbor went %v without a point (bound %v)", row.MaxGap, row.GapBound))
	}
	if row.Found > row.Expected {
		failed = append(failed, fmt.Errorf("%d values in InfluxDB, the fleet sent %d", row.Found, row.Expected))
	}
	if err := errors.Join(failed...); err != nil {
		row.Failed = err.Error()
	}
	return row, nil
}

// capacity is cluster.Capacity at the default load factor; kept here so
// the harness holds meshd to the 1.25, not to meshd's constant.
func capacity(targets, replicas int) int {
	c := (targets*5 + replicas*4 - 1) / (replicas * 4)
	return max(1, c)
}

// replicaNotifications is a replica's meshd_gnmi_notifications_total.
func replicaNotifications(r *clusterReplica) (float64, error) {
	mfs, err := scrape(fmt.Sprintf("http://127.0.0.1:%d/metrics", r.http))
	if err != nil {
		return 0, err
	}
	return sum(mfs, "meshd_gnmi_notifications_total"), nil
}

// maxGap is the longest time between two consecutive bgp_neighbor
// points of one router (any of its neighbors) stamped in [from, til)
// seconds.
func (q influxQuerier) maxGap(from, til int64) (time.Duration, error) {
	var gap time.Duration
	err := q.query(fmt.Sprintf(`SELECT MAX("gap") FROM (SELECT ELAPSED("updates_rx", 1ms) AS "gap" FROM "bgp_neighbor" WHERE time >= %ds AND time < %ds GROUP BY "router")`, from, til),
		func(a *influxAnswer) error {
			for _, r := range a.Results {
				for _, s := range r.Series {
					for _, v := range s.Values {
						if len(v) > 1 {
							if n, ok := v[1].(json.Number); ok {
								ms, _ := n.Int64()
								gap = max(gap, time.Duration(ms)*time.Millisecond)
							}
						}
					}
				}
			}
			return nil
		})
	return gap, err
}

// ClusterTable is the rows as the README shows them.
func ClusterTable(rows []*ClusterRow) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\tload\tcold start (peak share)\tre-home p50 / max (n)\tlongest gap (bound)\texpected\tfound\tlost\toverlaps\tetcd proposals/s steady / fault\tview p50/p99 local | forwarded")
	for _, r := range rows {
		reh := slices.Clone(r.Rehome)
		slices.Sort(reh)
		p50, mx := time.Duration(0), time.Duration(0)
		if len(reh) > 0 {
			p50, mx = reh[len(reh)/2], reh[len(reh)-1]
		}
		ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/1e6) }
		fmt.Fprintf(tw, "%s\t%s\t%v (%.2fx)\t%v / %v (%d)\t%v (%v)\t%d\t%d\t%d\t%d\t%.1f / %.1f\t%s/%s | %s/%s ms\n", r.Fault, r.Load,
			r.ColdStart.Round(100*time.Millisecond), r.ColdPeak, p50.Round(100*time.Millisecond), mx.Round(100*time.Millisecond), len(reh),
			r.MaxGap.Round(100*time.Millisecond), r.GapBound.Round(100*time.Millisecond), r.Expected, r.Found, r.Lost, r.Overlaps, r.EtcdSteady, r.EtcdFault,
			ms(r.ViewLocal[0]), ms(r.ViewLocal[1]), ms(r.ViewRemote[0]), ms(r.ViewRemote[1]))
	}
	tw.Flush()
	for _, r := range rows {
		if r.Fault == ClusterPause {
			fmt.Fprintf(&b, "  %s: the paused replica applied %.0f notifications after it resumed\n", r.Fault, r.AppliedAfterResume)
		}
		if r.Note != "" {
			fmt.Fprintf(&b, "  %s: %s\n", r.Fault, r.Note)
		}
		if r.Failed != "" {
			fmt.Fprintf(&b, "  %s: FAILED: %s\n", r.Fault, r.Failed)
		}
	}
	return b.String()
}

// viewLatency subscribes (STREAM, every router) to a replica's gNMI
// target for d after its sync, and returns the p50 and p99 latency of
// the changes of the routers in own, then of the others.
func viewLatency(addr string, own map[string]bool, d time.Duration) ([2][2]time.Duration, error) {
	var out [2][2]time.Duration
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return out, err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	st, err := gpb.NewGNMIClient(cc).Subscribe(ctx)
	if err != nil {
		return out, err
	}
	if err := st.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: &gpb.SubscriptionList{
		Prefix: &gpb.Path{Target: "*"}, Mode: gpb.SubscriptionList_STREAM, Encoding: gpb.Encoding_PROTO, UpdatesOnly: true,
		Subscription: []*gpb.Subscription{{Path: &gpb.Path{Elem: []*gpb.PathElem{{Name: "network-instances"}}}, Mode: gpb.SubscriptionMode_ON_CHANGE}}}}}); err != nil {
		return out, err
	}
	var lat [2][]time.Duration
	var end time.Time
	for {
		r, err := st.Recv()
		if err != nil {
			return out, err
		}
		now := time.Now()
		if r.GetSyncResponse() {
			end = now.Add(d)
			continue
		}
		if end.IsZero() {
			continue
		}
		if now.After(end) {
			break
		}
		n := r.GetUpdate()
		i := 1
		if own[n.GetPrefix().GetTarget()] {
			i = 0
		}
		lat[i] = append(lat[i], now.Sub(time.Unix(0, n.GetTimestamp())))
	}
	for i := range lat {
		if len(lat[i]) == 0 {
			return out, fmt.Errorf("no change of a %s router in %v", [2]string{"local", "remote"}[i], d)
		}
		slices.Sort(lat[i])
		out[i] = [2]time.Duration{pct(lat[i], 0.50), pct(lat[i], 0.99)}
	}
	return out, nil
}
