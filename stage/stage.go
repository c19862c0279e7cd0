// Package stage is meshd's pipeline contract, in this one file: what a
// source and a sink are, what they see of the merge core, and the
// registry that cmd/meshd builds them from.
//
//	source --Applier--> merge core --Feed--> sink
//
// A source (bmpbridge, gnmiclient) turns what routers say into
// change.Change and change.Event and hands them to an Applier. The merge
// core (*merge.Core) owns the state, validates, ranks sources, and
// publishes what changed as change.Batch to one Feed per sink. A sink
// (sinks/influx, sinks/gnmiserver, sinks/jsonl) reads its Feed, and the
// merged state through a Snapshotter when it must resynchronise. A
// source never imports a sink or the merge core; a sink never imports a
// source.
//
// # Lifecycle
//
// cmd/meshd builds every registered stage whose config is present, each
// with New: a source binds its listeners there, so a port in use fails
// the start before anything runs. Then it runs sinks, then sources, each
// Run in its own goroutine. At shutdown it cancels the sources' context
// and waits for every source's Run to return, then cancels the sinks'
// context: a sink's Run drains what it holds (against its own deadline)
// before it returns, and the Feed is closed after.
//
// # Adding a sink
//
// One folder, one registration: a package with a Config, a type with
// Run(ctx, Feed) error, and in an init func
//
//	stage.RegisterSink(stage.SinkInfo{Name: "nats", New: newSink})
//
// plus its blank import in cmd/meshd/stages.go. Its config is the section
// named like it (sinks: {nats: {...}} in meshd.yaml); New decodes it with
// Env.Decode. sinks/jsonl is the worked example.
package stage

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ygot/ygot"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/ribview"
	"github.com/meshd/meshd/rpki"
)

// Result says what became of the changes of one Apply call.
type Result struct {
	Applied   int // leaves whose value changed (published)
	Unchanged int // same value as before (not published)
	Outranked int // a higher-ranked live source owns the leaf
	Stale     int // older than the value another source of the same rank holds
	Invalid   int // did not fit the schema
	// Err holds the first few schema errors, for the source to log and count.
	Err error
}

// Applier is what a source feeds: the merge core (*merge.Core).
type Applier interface {
	// Apply applies changes and publishes the leaves that changed,
	// together with events, as one batch.
	Apply(changes []change.Change, events ...change.Event) Result
	// Emit publishes events that change no leaf.
	Emit(events ...change.Event)
	// ReleaseSource says a source's values for a router are no longer
	// live (its session ended): other sources may take its leaves.
	ReleaseSource(router string, src change.Source)
}

// Snapshotter reads the merged state router by router, for a sink that
// must resynchronise after it missed batches; *merge.Core implements it.
type Snapshotter interface {
	Routers() []string
	// Snapshot returns every leaf held for a router.
	Snapshot(router string) []change.Update
	// WalkRouter calls fn for every leaf of a router without building
	// a snapshot; false when there is no such router.
	WalkRouter(router string, fn LeafFunc) bool
	// TryReadRouter holds the router's lock while read runs, and read
	// may walk the leaves as often as it likes; if the lock is taken it
	// reports busy at once. A sink whose queue has a wait (a publisher
	// waiting for room holds its routers' locks) reads the store with
	// this, consuming its queue while a router is busy.
	TryReadRouter(router string, read func(walk func(LeafFunc))) (found, busy bool)
}

// LeafFunc is handed a leaf of the merged store: its key is prefix+rest
// and its value is good only during the call (see merge.Core.WalkRouter).
type LeafFunc = func(prefix, rest string, v *gpb.TypedValue, t time.Time, src change.Source)

// Trees reads a router's merged state as the generated ygot structs, the
// one store of its values, for a sink that renders them with ygot (the
// gNMI target's Get); *merge.Core implements it.
type Trees interface {
	// Trees calls fn under the router's lock with its roots (OpenConfig,
	// then meshd's) and the config leaves at or below configUnder (none
	// for nil), which no field of the compressed OpenConfig structs
	// holds; false when there is no such router. fn must not keep or
	// change them.
	Trees(router string, configUnder *gpb.Path, fn func(roots []ygot.GoStruct, config []change.Update)) bool
}

// Feed is one sink's stream of the batches the merge core publishes, a
// bounded queue: when it is full the sources wait for room up to the
// merge section's queue-wait, then the batch is dropped and counted (*merge.Subscription implements it; see its
// doc for the numbering a resynchronising sink relies on).
type Feed interface {
	// C is the channel batches arrive on; it is closed with the feed.
	C() <-chan change.Batch
	// Dropped is the number of updates and events this sink missed.
	Dropped() uint64
	// Seq is the number of the last batch offered to this sink.
	Seq() uint64
	// LostSeq is the greatest number of a batch this sink missed.
	LostSeq() uint64
	// Deliver switches to synchronous delivery in the publisher's
	// goroutine, if no batch missed is numbered above covered.
	Deliver(covered uint64, fn func(change.Batch)) bool
}

// Source produces changes. Its New gets the Applier (Env.Applier), not
// its Run: New binds the source's listeners, and a router may connect the
// moment they are open. Run serves until ctx ends, then returns once
// nothing more will be applied. A source built but never to run (another
// stage failed to build) is released by Run with a done context.
type Source interface {
	Run(ctx context.Context) error
}

// Sink consumes the merged stream. Run reads feed until ctx ends or the
// feed closes, drains what it still holds, and returns.
type Sink interface {
	Run(ctx context.Context, feed Feed) error
}

// Ops is where a stage adds its endpoints and readiness checks on the
// ops HTTP server (internal/ops.Server).
type Ops interface {
	Handle(pattern string, h http.Handler)
	AddCheck(name string, check func() error)
}

// Env is what a stage's New gets from cmd/meshd.
type Env struct {
	Log        *slog.Logger
	Registerer prometheus.Registerer
	Ops        Ops
	// Decode decodes the named config section into v and reports whether
	// the config has it; "" is the whole config (gNMI's keys are at the
	// top). Named sections are the top-level key, or an entry under
	// sinks: or sources:.
	Decode func(section string, v any) (bool, error)
	// Applier is the merge core, for sources.
	Applier Applier
	// State is the merged state, for sinks.
	State Snapshotter
	// Targets are the gNMI targets the config names, by name, with the
	// host of their address: a source that sees routers some other way
	// (BMP) gives them these names.
	Targets map[string]string
	// Ownership shares the fleet's targets among meshd replicas (the
	// cluster: section); nil when this meshd owns every target.
	Ownership Ownership
	// HTTPPeers lists the other replicas' HTTP listeners (nil when
	// this meshd is alone), and PeerHTTP asks them, over PeerScheme
	// ("http" or "https") with this replica's TLS and account: a page
	// that answers for the fleet reads the others' parts there.
	HTTPPeers  func() []string
	PeerHTTP   *http.Client
	PeerScheme string
	// RPKI is route origin validation (the rpki: section): its table,
	// and the VRP changes to follow. nil when no cache is configured.
	RPKI *rpki.Manager
	// Routes judges the routes sources hold (the monitor: section's
	// alerts); nil when nothing is watched.
	Routes RouteObserver
	// RIBs joins the source that holds routers' RIBs (bmp) to the sink
	// that serves them (gnmi-server's RIB paths).
	RIBs *ribview.Hub
}

// RouteObserver is told of the routes a source's RIBs take in or let go
// (*alerts.Service). Watches is asked of every route and must be cheap;
// Observe is called only for those it accepts. Both are safe for
// concurrent use.
type RouteObserver interface {
	Watches(p netip.Prefix, origin uint32) bool
	// Observe: router's route r (its action, RIB view, origin, state) as
	// seen from neighbor in network instance ni.
	Observe(router, ni, neighbor string, r *change.Route)
}

// Ownership is the cluster's side of sharing targets: a source that
// collects targets tells it their names (the same on every replica) and
// binds itself as the Owner it starts and stops them through.
//
// Live reports whether this replica's hold on what it owns surely lasts:
// false from the moment another replica may have taken its targets
// over (a pause, a cut from etcd), before anything more is applied.
type Ownership interface {
	Share(targets []string)
	Bind(o Owner)
	Live() bool
}

// Placement says which replica joins a router's data (cluster mode): an
// Ownership may also be one. BMPRoute returns the BMP address of the
// replica that owns router, and remote true when that is another
// replica; remote false means this one (or nobody) does.
//
// GNMIRoute does the same for the gNMI target of the replica that owns
// router; GNMIPeers are the gNMI targets of every other replica.
type Placement interface {
	BMPRoute(router string) (addr string, remote bool)
	GNMIRoute(router string) (addr string, remote bool)
	GNMIPeers() []string
}

// Owner collects the targets this replica owns; token is the ownership
// record's revision, which names the owner's period. Disown returns only
// once nothing more is collected for the target.
type Owner interface {
	Own(target string, token int64)
	Disown(target string)
}

// SourceInfo registers a source.
type SourceInfo struct {
	Name string
	// New builds the source from env, or returns nil, nil when its
	// config does not ask for it.
	New func(env Env) (Source, error)
}

// SinkInfo registers a sink.
type SinkInfo struct {
	// Name names the sink's config section, by convention, and its
	// feed (the consumer label of the merge core's metrics).
	Name string
	// New builds the sink from env, or returns nil, nil when its config
	// does not ask for it.
	New func(env Env) (Sink, error)
	// Keys asks the core to fill in change.Update.Key for this sink's
	// feed (an allocation per update, made only while such a sink runs).
	Keys bool
	// Wait lets the core hold the sources back, up to the merge
	// section's queue-wait, when this sink's queue is full, before it
	// drops a batch for it. Only a sink that never waits for a router's
	// lock while it consumes (it reads the store with TryReadRouter) may
	// ask: a publisher waiting for room holds its routers' locks.
	Wait bool
}

var reg struct {
	mu      sync.Mutex
	sources []SourceInfo
	sinks   []SinkInfo
}

// RegisterSource adds a source; call it from an init func. A second
// registration of a name panics, as two stages would read one section.
func RegisterSource(s SourceInfo) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	mustBeNew(s.Name, s.New == nil)
	reg.sources = append(reg.sources, s)
}

// RegisterSink adds a sink; call it from an init func.
func RegisterSink(s SinkInfo) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	mustBeNew(s.Name, s.New == nil)
	reg.sinks = append(reg.sinks, s)
}

func mustBeNew(name string, noNew bool) {
	if name == "" || noNew {
		panic("stage: a registration needs a name and a New")
	}
	if slices.ContainsFunc(reg.sources, func(s SourceInfo) bool { return s.Name == name }) ||
		slices.ContainsFunc(reg.sinks, func(s SinkInfo) bool { return s.Name == name }) {
		panic(fmt.Sprintf("stage: %q registered twice", name))
	}
}

// Sources returns the registered sources, sorted by name.
func Sources() []SourceInfo {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	out := slices.Clone(reg.sources)
	slices.SortFunc(out, func(a, b SourceInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Sinks returns the registered sinks, sorted by name.
func Sinks() []SinkInfo {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	out := slices.Clone(reg.sinks)
	slices.SortFunc(out, func(a, b SinkInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}
