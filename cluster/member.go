package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/meshd/meshd/stage"
)

// fenceMargin is taken off a lease's expiry, as this replica reckons it,
// for the time between a deadline and the stop it triggers.
const fenceMargin = 500 * time.Millisecond

// Member is one replica's membership: its lease, the targets it owns,
// and the fencing of what it does for them.
type Member struct {
	cfg Config
	// owner is what the member starts and stops (stage.Owner): its calls
	// come one at a time, though not always from one goroutine (the
	// lease's watchdog disowns everything on its own).
	owner stage.Owner
	log   *slog.Logger
	cli   *clientv3.Client

	// ownMu makes Own and Disown calls one at a time, and orders a
	// claim against the watchdog: nothing is owned after the deadline.
	ownMu   sync.Mutex
	mu      sync.Mutex
	targets []string
	owned   map[string]int64 // target → fencing token (its record's create revision)
	poke    chan struct{}
	// deadline is when the lease surely lives until, as time since epoch
	// on the monotonic clock: read on every notification (Live), so an
	// atomic rather than a lock.
	epoch    time.Time
	deadline atomic.Int64
	placed   atomic.Pointer[placement]
	m        metrics
}

// New connects to etcd; Bind, then Run, do the rest.
func New(cfg Config, log *slog.Logger) (*Member, error) {
	cfg.SetDefaults()
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("cluster.endpoints: none")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd %v: %w", cfg.Endpoints, err)
	}
	m := &Member{cfg: cfg, log: log.With(slog.String("member", cfg.Name)), cli: cli,
		owned: map[string]int64{}, poke: make(chan struct{}, 1), epoch: time.Now()}
	m.m = newMetrics(m)
	return m, nil
}

type noOwner struct{}

func (noOwner) Own(string, int64) {}
func (noOwner) Disown(string)     {}

// Bind sets what the member starts and stops; before Run.
func (m *Member) Bind(o stage.Owner) { m.owner = o }

// Share is SetTargets (stage.Ownership).
func (m *Member) Share(targets []string) { m.SetTargets(targets) }

// Close closes the etcd client.
func (m *Member) Close() error { return m.cli.Close() }

// Name is the member's name.
func (m *Member) Name() string { return m.cfg.Name }

// SetTargets replaces the fleet's target names (the same on every
// replica: the shared targets file).
func (m *Member) SetTargets(names []string) {
	m.mu.Lock()
	m.targets = append([]string(nil), names...)
	m.mu.Unlock()
	m.kick()
}

func (m *Member) kick() {
	select {
	case m.poke <- struct{}{}:
	default:
	}
}

// Live reports whether the lease surely lives (stage.Ownership): what
// the collector checks before it applies anything. A replica resumed
// after a pause, or cut from etcd, past its lease's deadline finds false
// here before anything else runs. The fencing token (the ownership
// record's create revision) is what a release compares, so a replica
// never deletes a record another has made since.
func (m *Member) Live() bool {
	return int64(time.Since(m.epoch)) < m.deadline.Load()
}

// Owned is a copy of the targets this replica owns, with their tokens.
func (m *Member) Owned() map[string]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int64, len(m.owned))
	for t, tok := range m.owned {
		out[t] = tok
	}
	return out
}

// Run keeps the membership until ctx ends, then gives up every target and
// revokes the lease, so the others take them at once.
func (m *Member) Run(ctx context.Context) error {
	if m.owner == nil {
		// No source collects targets here (no gNMI targets): the
		// replica is a member that owns nothing.
		m.owner = noOwner{}
	}
	for ctx.Err() == nil {
		err := m.incarnation(ctx)
		// A failed grant leaves nothing owned; otherwise incarnation
		// gave everything up before its lease went.
		m.disownAll("lease lost")
		if ctx.Err() != nil {
			return nil
		}
		m.log.Warn("cluster: membership lost; joining again", slog.Any("err", err))
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

// incarnation is one lease's life.
func (m *Member) incarnation(ctx context.Context) error {
	ttl := int64(m.cfg.LeaseTTL / time.Second)
	sent := time.Now()
	gctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseTTL)
	g, err := m.cli.Grant(gctx, ttl)
	cancel()
	if err != nil {
		return fmt.Errorf("lease grant: %w", err)
	}
	lease := g.ID
	m.setDeadline(sent, g.TTL)
	defer func() {
		// Every session ends before the lease goes: revoking deletes the
		// ownership records, and another replica may claim a target the
		// moment its record is gone.
		why := "lease lost"
		if ctx.Err() != nil {
			why = "shutting down"
		}
		m.disownAll(why)
		// Revoking lets the others take the targets now rather than at
		// the lease's expiry.
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _ = m.cli.Revoke(rctx, lease)
		cancel()
	}()
	pctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseTTL)
	rec, _ := json.Marshal(memberRecord{Lease: fmt.Sprintf("%x", int64(lease)), Advertise: m.cfg.Advertise})
	_, err = m.cli.Put(pctx, m.cfg.memberKey(m.cfg.Name), string(rec), clientv3.WithLease(lease))
	cancel()
	if err != nil {
		return fmt.Errorf("member record: %w", err)
	}
	m.log.Info("cluster: joined", slog.String("lease", fmt.Sprintf("%x", int64(lease))), slog.Duration("ttl", m.cfg.LeaseTTL))

	ictx, stop := context.WithCancel(ctx)
	defer stop()
	lost := make(chan error, 2)
	go m.keepAlive(ictx, lease, lost)
	go m.watchdog(ictx, lost)
	wch := m.cli.Watch(clientv3.WithRequireLeader(ictx), m.cfg.Prefix+"/", clientv3.WithPrefix())
	go func() {
		for range wch {
			m.kick()
		}
	}()

	if err := m.settle(ictx, lost); err != nil {
		return err
	}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-lost:
			return err
		case <-m.poke:
		case <-tick.C:
		}
		if err := m.reconcile(ictx, lease); err != nil && ictx.Err() == nil {
			m.log.Warn("cluster: reconcile", slog.Any("err", err))
		}
	}
}

// errExpired ends an incarnation whose lease may have ended at etcd.
var errExpired = errors.New("lease expired without a renewal (paused, or cut from etcd)")

// watchdog gives up every target the moment the lease's deadline passes
// without a renewal, whatever the rest of the member is doing (a
// reconcile waits on etcd calls that a cut replica's client retries for
// seconds: the first version gave its targets up two seconds after
// another replica had taken them).
func (m *Member) watchdog(ctx context.Context, lost chan<- error) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(m.getDeadline())):
		}
		if !time.Now().Before(m.getDeadline()) {
			m.m.fenced.Inc()
			m.disownAll("lease expired without a renewal")
			lost <- errExpired
			return
		}
	}
}

func (m *Member) setDeadline(sent time.Time, ttl int64) {
	m.deadline.Store(int64(sent.Sub(m.epoch) + time.Duration(ttl)*time.Second - fenceMargin))
}

func (m *Member) getDeadline() time.Time {
	return m.epoch.Add(time.Duration(m.deadline.Load()))
}

// keepAlive renews the lease every third of its TTL. The deadline is
// reckoned from when a renewal was sent, not answered: etcd may have
// renewed it at any moment in between, so the earlier time is the safe
// one.
func (m *Member) keepAlive(ctx context.Context, lease clientv3.LeaseID, lost chan<- error) {
	every := m.cfg.LeaseTTL / 3
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		sent := time.Now()
		kctx, cancel := context.WithTimeout(ctx, every)
		r, err := m.cli.KeepAliveOnce(kctx, lease)
		cancel()
		switch {
		case err == nil && r.TTL > 0:
			m.setDeadline(sent, r.TTL)
		case err == nil || strings.Contains(err.Error(), "lease not found"):
			lost <- errors.New("etcd says the lease is gone")
			return
		case ctx.Err() == nil:
			m.log.Warn("cluster: lease renewal failed", slog.Any("err", err), slog.Time("deadline", m.getDeadline()))
		}
	}
}

// settle waits until the member list has stayed the same for Settle.
func (m *Member) settle(ctx context.Context, lost <-chan error) error {
	var last []string
	since := time.Now()
	for {
		ms, err := m.members(ctx)
		if err == nil && !slices.Equal(ms, last) {
			last, since = ms, time.Now()
		}
		if err == nil && time.Since(since) >= m.cfg.Settle {
			m.log.Info("cluster: membership settled", slog.Any("members", ms))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-lost:
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// members lists the live members' names, sorted.
func (m *Member) members(ctx context.Context) ([]string, error) {
	names, _, err := m.memberRecords(ctx)
	return names, err
}

// memberRecords lists the live members' names, sorted, and what they
// advertise.
func (m *Member) memberRecords(ctx context.Context) ([]string, map[string]Advertise, error) {
	gctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseTTL/2)
	defer cancel()
	r, err := m.cli.Get(gctx, m.cfg.membersKey(), clientv3.WithPrefix())
	if err != nil {
		return nil, nil, err
	}
	names := make([]string, 0, len(r.Kvs))
	adv := make(map[string]Advertise, len(r.Kvs))
	for _, kv := range r.Kvs {
		name := strings.TrimPrefix(string(kv.Key), m.cfg.membersKey())
		names = append(names, name)
		var rec memberRecord
		if json.Unmarshal(kv.Value, &rec) == nil {
			adv[name] = rec.Advertise
		}
	}
	sort.Strings(names)
	return names, adv, nil
}

// record is an ownership record as read from etcd.
type record struct {
	owner          string
	create, modRev int64
}

func (m *Member) records(ctx context.Context) (map[string]record, error) {
	gctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseTTL/2)
	defer cancel()
	r, err := m.cli.Get(gctx, m.cfg.ownersKey(), clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	out := make(map[string]record, len(r.Kvs))
	for _, kv := range r.Kvs {
		out[strings.TrimPrefix(string(kv.Key), m.cfg.ownersKey())] = record{string(kv.Value), kv.CreateRevision, kv.ModRevision}
	}
	return out, nil
}

// reconcile moves this replica's ownership towards the assignment: it
// first stops and releases what it should no longer own, then claims
// what it should own and nobody holds. A target held by another member
// is left to it: that member releases it when it sees the same
// assignment, or its lease ends.
func (m *Member) reconcile(ctx context.Context, lease clientv3.LeaseID) error {
	members, adv, err := m.memberRecords(ctx)
	if err != nil {
		return err
	}
	m.m.members.Set(float64(len(members)))
	recs, err := m.records(ctx)
	if err != nil {
		return err
	}
	p := &placement{owner: make(map[string]string, len(recs)),
		bmp: make(map[string]string, len(adv)), gnmi: make(map[string]string, len(adv)), http: make(map[string]string, len(adv))}
	for t, r := range recs {
		p.owner[t] = r.owner
	}
	for name, a := range adv {
		p.bmp[name], p.gnmi[name], p.http[name] = a.BMP, a.GNMI, a.HTTP
	}
	m.placed.Store(p)
	m.mu.Lock()
	targets := m.targets
	m.mu.Unlock()
	want := Assign(targets, members, m.cfg.LoadFactor)
	me := m.cfg.Name
	var claimed, released int
	defer func() {
		if claimed+released > 0 {
			m.log.Info("cluster: ownership changed", slog.Int("claimed", claimed), slog.Int("released", released),
				slog.Int("owned", len(m.Owned())), slog.Int("members", len(members)), slog.Int("targets", len(targets)))
		}
	}()
	// Each target is stopped before its record goes, so nobody starts it
	// while this replica still collects it; the records then go in
	// parallel: etcd commits concurrent transactions together, where one
	// at a time each waited for its own fsync (a restarted replica took
	// its third of 1,000 targets back in 10.8 s so).
	var releases sync.WaitGroup
	sem := make(chan struct{}, txnParallel)
	owned := m.Owned()
	for _, t := range sortedKeys(owned) {
		tok := owned[t]
		rec, held := recs[t]
		mine := held && rec.owner == me && rec.create == tok
		if want[t] == me && mine {
			continue
		}
		m.disown(t)
		released++
		m.m.released.Inc()
		if !mine {
			continue
		}
		sem <- struct{}{}
		releases.Add(1)
		go func() {
			defer func() { <-sem; releases.Done() }()
			dctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseTTL/2)
			defer cancel()
			_, err := m.cli.Txn(dctx).If(clientv3.Compare(clientv3.CreateRevision(m.cfg.ownerKey(t)), "=", rec.create)).
				Then(clientv3.OpDelete(m.cfg.ownerKey(t))).Commit()
			if err != nil {
				m.log.Warn("cluster: release", slog.String("target", t), slog.Any("err", err))
			}
		}()
	}
	releases.Wait()

	var (
		claims     sync.WaitGroup
		cmu        sync.Mutex
		claimErr   error
		expired    bool
		claimedNow int
	)
	owned = m.Owned()
	for _, t := range targets {
		if want[t] != me {
			continue
		}
		if _, ok := owned[t]; ok {
			continue
		}
		if rec, held := recs[t]; held && rec.owner != me {
			continue
		}
		sem <- struct{}{}
		claims.Add(1)
		go func() {
			defer func() { <-sem; claims.Done() }()
			key := m.cfg.ownerKey(t)
			cctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseTTL/2)
			r, err := m.cli.Txn(cctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
				Then(clientv3.OpPut(key, me, clientv3.WithLease(lease))).Commit()
			cancel()
			cmu.Lock()
			defer cmu.Unlock()
			switch {
			case err != nil:
				if claimErr == nil {
					claimErr = fmt.Errorf("claim %s: %w", t, err)
				}
				return
			case !r.Succeeded:
				return // taken meanwhile, or a record of ours from a past lease
			case expired || !m.own(t, r.Header.Revision):
				expired = true
				return
			}
			claimedNow++
			m.m.claimed.Inc()
		}()
	}
	claims.Wait()
	claimed += claimedNow
	if expired {
		return errExpired
	}
	return claimErr
}

// txnParallel bounds a reconcile's etcd transactions in flight.
const txnParallel = 32

func sortedKeys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// own starts target under token, unless the lease's deadline has passed.
func (m *Member) own(t string, tok int64) bool {
	m.ownMu.Lock()
	defer m.ownMu.Unlock()
	if !time.Now().Before(m.getDeadline()) {
		return false
	}
	m.mu.Lock()
	m.owned[t] = tok
	m.mu.Unlock()
	m.owner.Own(t, tok)
	return true
}

func (m *Member) disown(t string) {
	m.ownMu.Lock()
	defer m.ownMu.Unlock()
	m.disownLocked(t)
}

func (m *Member) disownLocked(t string) {
	m.mu.Lock()
	_, ok := m.owned[t]
	delete(m.owned, t)
	m.mu.Unlock()
	if ok {
		m.owner.Disown(t)
	}
}

func (m *Member) disownAll(why string) {
	m.ownMu.Lock()
	defer m.ownMu.Unlock()
	owned := m.Owned()
	if len(owned) == 0 {
		return
	}
	m.log.Warn("cluster: giving up every target", slog.String("why", why), slog.Int("targets", len(owned)))
	names := make([]string, 0, len(owned))
	for t := range owned {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		m.disownLocked(t)
	}
}
