package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
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

// Config is the cluster: section of meshd.yaml.
type Config struct {
	// Endpoints are etcd's client URLs; none means no cluster (one meshd
	// owns every target).
	Endpoints []string `yaml:"endpoints"`
	// Name is this replica's member name, unique in the cluster
	// (default: the host name).
	Name string `yaml:"name"`
	// Prefix is where in etcd's key space the cluster keeps its keys.
	Prefix string `yaml:"prefix"`
	// LeaseTTL is how long a replica that stopped answering keeps its
	// targets: the longest gap a dead replica leaves.
	LeaseTTL time.Duration `yaml:"lease-ttl"`
	// Settle is how long membership must stay unchanged at start-up
	// before this replica claims a target, so that replicas started
	// together do not each take the whole fleet first.
	Settle time.Duration `yaml:"settle"`
	// LoadFactor bounds a member's share: at most this times the average.
	LoadFactor float64 `yaml:"load-factor"`
	// Advertise is where the other replicas and operators reach this
	// one's listeners (host:port each; empty: not said), kept in its
	// member record and shown by `meshd cluster status`.
	Advertise Advertise `yaml:"advertise"`
}

// Advertise is a replica's addresses as others reach them.
type Advertise struct {
	BMP  string `yaml:"bmp" json:"bmp,omitempty"`
	GNMI string `yaml:"gnmi" json:"gnmi,omitempty"`
	HTTP string `yaml:"http" json:"http,omitempty"`
}

// memberRecord is a member key's value.
type memberRecord struct {
	Lease string `json:"lease"`
	Advertise
}

// Defaults.
const (
	DefaultPrefix   = "/meshd"
	DefaultLeaseTTL = 10 * time.Second
	DefaultSettle   = 3 * time.Second
)

// SetDefaults fills in what the config leaves out; a config without
// endpoints stays empty (no cluster).
func (c *Config) SetDefaults() {
	if len(c.Endpoints) == 0 {
		return
	}
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	c.Prefix = strings.TrimSuffix(c.Prefix, "/")
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.Settle == 0 {
		c.Settle = DefaultSettle
	}
	if c.LoadFactor == 0 {
		c.LoadFactor = DefaultLoadFactor
	}
}

// Validate checks a config SetDefaults has seen.
func (c *Config) Validate() error {
	if len(c.Endpoints) == 0 {
		return nil
	}
	var errs []error
	if c.Name == "" || strings.ContainsAny(c.Name, "/\n") {
		errs = append(errs, fmt.Errorf("cluster.name %q: set it (the host name is not known), without / or newline", c.Name))
	}
	if c.LeaseTTL < 2*time.Second {
		errs = append(errs, fmt.Errorf("cluster.lease-ttl %v: at least 2s (etcd's leases count whole seconds)", c.LeaseTTL))
	}
	if c.Settle < 0 {
		errs = append(errs, fmt.Errorf("cluster.settle %v: not negative", c.Settle))
	}
	if c.LoadFactor < 1 {
		errs = append(errs, fmt.Errorf("cluster.load-factor %v: at least 1", c.LoadFactor))
	}
	for key, a := range map[string]string{"bmp": c.Advertise.BMP, "gnmi": c.Advertise.GNMI, "http": c.Advertise.HTTP} {
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("cluster.advertise.%s %q: want host:port: %v", key, a, err))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) membersKey() string        { return c.Prefix + "/members/" }
func (c *Config) ownersKey() string         { return c.Prefix + "/owners/" }
func (c *Config) memberKey(n string) string { return c.membersKey() + n }
func (c *Config) ownerKey(t string) string  { return c.ownersKey() + t }

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
	return &Member{cfg: cfg, log: log.With(slog.String("member", cfg.Name)), cli: cli,
		owned: map[string]int64{}, poke: make(chan struct{}, 1), epoch: time.Now()}, nil
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

// Valid reports whether this replica still owns target under token and
// its lease surely lives: what a write for the target checks first. A
// replica resumed after a pause, or cut from etcd, past its lease's
// expiry finds false here before anything else runs for the target.
func (m *Member) Valid(target string, token int64) bool {
	if !m.Live() {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.owned[target] == token && token != 0
}

// Live reports whether the lease surely lives (stage.Ownership).
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

// placement is what the last reconcile read: each target's owner and
// each member's BMP address.
type placement struct {
	owner     map[string]string
	bmp, gnmi map[string]string // member → advertised address
}

// BMPRoute says which replica joins router's BMP (stage.Placement): the
// owner of the gNMI target of that name, when it is another replica that
// advertises a BMP address; otherwise this one.
func (m *Member) BMPRoute(router string) (string, bool) {
	return m.route(router, func(p *placement) map[string]string { return p.bmp })
}

// GNMIRoute says which replica's gNMI target answers for router
// (stage.Placement), as BMPRoute.
func (m *Member) GNMIRoute(router string) (string, bool) {
	return m.route(router, func(p *placement) map[string]string { return p.gnmi })
}

func (m *Member) route(router string, addrs func(*placement) map[string]string) (string, bool) {
	p := m.placed.Load()
	if p == nil {
		return "", false
	}
	o := p.owner[router]
	if o == "" || o == m.cfg.Name {
		return "", false
	}
	addr := addrs(p)[o]
	return addr, addr != ""
}

// GNMIPeers are the other live members' gNMI targets (stage.Placement).
func (m *Member) GNMIPeers() []string {
	p := m.placed.Load()
	if p == nil {
		return nil
	}
	var out []string
	for name, addr := range p.gnmi {
		if name != m.cfg.Name && addr != "" {
			out = append(out, addr)
		}
	}
	sort.Strings(out)
	return out
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
	recs, err := m.records(ctx)
	if err != nil {
		return err
	}
	p := &placement{owner: make(map[string]string, len(recs)), bmp: make(map[string]string, len(adv)), gnmi: make(map[string]string, len(adv))}
	for t, r := range recs {
		p.owner[t] = r.owner
	}
	for name, a := range adv {
		p.bmp[name], p.gnmi[name] = a.BMP, a.GNMI
	}
	m.placed.Store(p)
	m.mu.Lock()
	targets := m.targets
	m.mu.Unlock()
	want := Assign(targets, members, m.cfg.LoadFactor)
	me := m.cfg.Name
	for t, tok := range m.Owned() {
		rec, held := recs[t]
		mine := held && rec.owner == me && rec.create == tok
		if want[t] == me && mine {
			continue
		}
		m.disown(t)
		if mine {
			dctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseTTL/2)
			_, err := m.cli.Txn(dctx).If(clientv3.Compare(clientv3.CreateRevision(m.cfg.ownerKey(t)), "=", rec.create)).
				Then(clientv3.OpDelete(m.cfg.ownerKey(t))).Commit()
			cancel()
			if err != nil {
				m.log.Warn("cluster: release", slog.String("target", t), slog.Any("err", err))
			}
		}
	}
	for _, t := range targets {
		if want[t] != me {
			continue
		}
		if _, ok := m.Owned()[t]; ok {
			continue
		}
		if rec, held := recs[t]; held && rec.owner != me {
			continue
		}
		key := m.cfg.ownerKey(t)
		cctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseTTL/2)
		r, err := m.cli.Txn(cctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, me, clientv3.WithLease(lease))).Commit()
		cancel()
		if err != nil {
			return fmt.Errorf("claim %s: %w", t, err)
		}
		if !r.Succeeded {
			continue // taken meanwhile, or a record of ours from a past lease
		}
		if !m.own(t, r.Header.Revision) {
			return errExpired
		}
	}
	return nil
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
