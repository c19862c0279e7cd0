// Package gnmiclient is meshd's gNMI fan-in: one Subscribe session per
// target (from config and a watched gnmic-format targets file), each
// reconnecting on its own, turning what arrives into typed changes for the
// merge core.
//
// gnmic is the reference for the configuration. A targets file is decoded
// into gnmic's own target type (github.com/openconfig/gnmic/pkg/api,
// types.TargetConfig), so a key means what it means to gnmic; a key gnmic
// does not know is an error naming it, and each gnmic key is used, warned
// about or refused as targetsfile.go decides (TestGnmicKeysDecided fails
// when a gnmic upgrade brings a key nobody decided). A subscription's
// SubscribeRequest is the one gnmic's pkg/api builds from the same keys
// (TestBuildRequestAsGnmic).
package gnmiclient

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/gnmiclient/translate"
	"github.com/meshd/meshd/stage"
)

// Client runs the gNMI sessions. Create it with New, start it with Run.
type Client struct {
	cfg    Config
	merger stage.Applier
	tr     *translate.Translator
	log    *slog.Logger
	m      *metrics

	mu       sync.Mutex
	ctx      context.Context // set by Run
	sessions map[string]*session
	static   map[string]*Target // from the config
	fromFile map[string]*Target // from the targets file
	wg       sync.WaitGroup

	// With a cluster, only the targets this replica owns have sessions.
	ownership stage.Ownership
	owned     map[string]int64 // target → fencing token
	shared    []string         // the names last told to ownership
}

// Option configures a Client.
type Option func(*Client)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// WithRegisterer registers the client's metrics with reg.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(c *Client) { c.m.register(reg) }
}

// WithOwnership makes the client collect only the targets o gives this
// replica (cluster mode): it tells o every target's name and is bound as
// o's Owner.
func WithOwnership(o stage.Ownership) Option {
	return func(c *Client) {
		c.ownership, c.owned = o, map[string]int64{}
		o.Bind(c)
	}
}

// Own starts target's session (stage.Owner).
func (c *Client) Own(target string, token int64) {
	c.mu.Lock()
	c.owned[target] = token
	c.mu.Unlock()
	c.log.Debug("gnmi: target owned", slog.String("router", target), slog.Int64("token", token))
	c.reconcile()
}

// Disown stops target's session and returns once it has ended
// (stage.Owner).
func (c *Client) Disown(target string) {
	c.mu.Lock()
	delete(c.owned, target)
	c.mu.Unlock()
	c.log.Debug("gnmi: target given up", slog.String("router", target))
	c.reconcile()
}

// WithTranslator sets the translator (to add mapping tables).
func WithTranslator(t *translate.Translator) Option { return func(c *Client) { c.tr = t } }

// New returns a client for cfg feeding m. It applies the config's
// defaults and validates it.
func New(cfg Config, m stage.Applier, opts ...Option) (*Client, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{
		cfg: cfg, merger: m, log: slog.Default(), m: newMetrics(),
		sessions: map[string]*session{}, static: cfg.Targets, fromFile: map[string]*Target{},
	}
	for _, o := range opts {
		o(c)
	}
	for _, w := range cfg.Warnings() {
		c.log.Warn("gnmi: config", slog.String("key", w))
	}
	if c.tr == nil {
		tr, err := translate.New()
		if err != nil {
			return nil, err
		}
		c.tr = tr
	}
	return c, nil
}

// Run starts a session per target and keeps them going until ctx ends;
// with a targets file it follows the file's changes. It returns when
// every session has stopped.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	c.ctx = ctx
	c.mu.Unlock()
	if c.cfg.TargetsFile != "" {
		raw, err := os.ReadFile(c.cfg.TargetsFile)
		if err != nil {
			return fmt.Errorf("targets file: %w", err)
		}
		ts, err := c.loadFile(raw)
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.fromFile = ts
		c.mu.Unlock()
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.watch(ctx, raw)
		}()
	}
	c.reconcile()
	<-ctx.Done()
	c.wg.Wait()
	return nil
}

// loadFile parses and validates the targets file's content.
func (c *Client) loadFile(content []byte) (map[string]*Target, error) {
	raw, warns, err := parseTargetsFile(c.cfg.TargetsFile, content)
	if err != nil {
		return nil, err
	}
	for _, w := range warns {
		c.log.Warn("gnmi: targets file", slog.String("file", c.cfg.TargetsFile), slog.String("key", w))
	}
	ts, err := c.checkTargets(raw)
	if err != nil {
		return nil, fmt.Errorf("targets file %s: %w", c.cfg.TargetsFile, err)
	}
	return ts, nil
}

// checkTargets fills in the defaults of targets from outside the config
// and validates them against the config's subscriptions.
func (c *Client) checkTargets(ts map[string]*Target) (map[string]*Target, error) {
	probe := Config{Targets: ts, Subscriptions: c.cfg.Subscriptions, Defaults: c.cfg.Defaults}
	probe.SetDefaults()
	if err := probe.Validate(); err != nil {
		return nil, err
	}
	return probe.Targets, nil
}

// SetTargets replaces the file-sourced targets (what a reload does), for
// callers that learn targets elsewhere. Config targets stay.
func (c *Client) SetTargets(ts map[string]*Target) error {
	ts, err := c.checkTargets(ts)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.fromFile = ts
	c.mu.Unlock()
	c.reconcile()
	return nil
}

// reconcile starts, restarts and stops sessions so that exactly the
// wanted targets run; an unchanged target's session is left alone.
func (c *Client) reconcile() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil || c.ctx.Err() != nil {
		return
	}
	want := map[string]*Target{}
	for _, t := range c.static {
		want[t.Name] = t
	}
	for _, t := range c.fromFile {
		if _, dup := want[t.Name]; dup {
			c.log.Warn("gnmi: target in both config and targets file; the file's settings win", slog.String("router", t.Name))
		}
		want[t.Name] = t
	}
	if c.ownership != nil {
		names := make([]string, 0, len(want))
		for name := range want {
			names = append(names, name)
		}
		sort.Strings(names)
		if !slices.Equal(names, c.shared) {
			c.shared = names
			c.ownership.Share(names)
		}
	}
	all := want
	if c.ownership != nil {
		want = make(map[string]*Target, len(c.owned))
		for name, t := range all {
			if _, mine := c.owned[name]; mine {
				want[name] = t
			}
		}
	}
	for name, s := range c.sessions {
		if t, ok := want[name]; ok && reflect.DeepEqual(*t, *s.t) {
			continue
		}
		s.stop()
		delete(c.sessions, name)
		if _, still := all[name]; !still {
			c.m.forget(name)
			c.log.Info("gnmi: target removed", slog.String("router", name))
		}
	}
	for name, t := range want {
		if _, ok := c.sessions[name]; ok {
			continue
		}
		s, err := c.newSession(t)
		if err != nil {
			c.log.Error("gnmi: target not started", slog.String("router", name), slog.Any("err", err))
			continue
		}
		c.sessions[name] = s
		ctx, cancel := context.WithCancel(c.ctx)
		s.cancel = cancel
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			s.run(ctx)
		}()
	}
	c.m.targets.Set(float64(len(c.sessions)))
}

// Status returns every target's session state, sorted by name.
func (c *Client) Status() []TargetStatus {
	c.mu.Lock()
	ss := make([]*session, 0, len(c.sessions))
	for _, s := range c.sessions {
		ss = append(ss, s)
	}
	c.mu.Unlock()
	out := make([]TargetStatus, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// State is a target session's state.
type State string

// Session states.
const (
	StateConnecting State = "connecting"
	StateSyncing    State = "syncing" // subscribed, before sync_response
	StateSynced     State = "synced"
	StateFailed     State = "failed" // waiting to reconnect; LastError says why
)

var allStates = []State{StateConnecting, StateSyncing, StateSynced, StateFailed}

// TargetStatus is what the status command shows for a target.
type TargetStatus struct {
	Name          string    `json:"name"`
	Address       string    `json:"address"`
	State         State     `json:"state"`
	Since         time.Time `json:"since"`
	LastError     string    `json:"last-error,omitempty"`
	LastErrorTime time.Time `json:"last-error-time,omitzero"`
	Connects      uint64    `json:"connects"`
	Failures      uint64    `json:"failures"`
	Notifications uint64    `json:"notifications"`
	Leaves        uint64    `json:"leaves"`
	Unknown       uint64    `json:"unknown"`
	Invalid       uint64    `json:"invalid"`
	LastUpdate    time.Time `json:"last-update,omitzero"`
}
