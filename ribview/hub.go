package ribview

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus"
)

// maxPerNotification caps the updates a walk packs into a notification,
// as the gNMI target does for its own walks.
const maxPerNotification = 512

// DefaultWatchQueue is how many notifications a subscriber's watch holds
// before it drops them and is walked again (Drain's lost).
const DefaultWatchQueue = 16384

// Hub joins the RIBs' Source (the bmp source) to the gNMI target: it
// walks the source for Get, ONCE and a stream's start, and hands the
// changes the source publishes to the watching subscribers. It is safe
// for concurrent use.
type Hub struct {
	src      atomic.Pointer[Source]
	watchers atomic.Pointer[[]*Watch]
	wmu      sync.Mutex // serialises writers of watchers
	queue    int

	published, lost prometheus.Counter
}

// NewHub returns a hub with no source yet; reg (may be nil) gets its
// metrics.
func NewHub(reg prometheus.Registerer) *Hub {
	h := &Hub{queue: DefaultWatchQueue,
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_ribview_changes_total",
			Help: "Route changes handed to gNMI subscribers of the RIB paths (one per change, whatever the number of subscribers)."}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_ribview_resyncs_total",
			Help: "Times a RIB subscriber fell a whole watch queue behind: its queued changes were dropped and it was walked again."}),
	}
	if reg != nil {
		reg.MustRegister(h.published, h.lost)
	}
	return h
}

// SetWatchQueue sets how many notifications a watch holds before it is
// walked again (DefaultWatchQueue); it applies to the watches started
// after.
func (h *Hub) SetWatchQueue(n int) {
	if n > 0 {
		h.queue = n
	}
}

// SetSource sets where the RIBs are read.
func (h *Hub) SetSource(s Source) { h.src.Store(&s) }

func (h *Hub) source() Source {
	if p := h.src.Load(); p != nil {
		return *p
	}
	return nil
}

// Watching reports whether any subscriber watches the RIBs: a source
// publishes nothing when none does (one atomic load per change).
func (h *Hub) Watching() bool {
	p := h.watchers.Load()
	return p != nil && len(*p) > 0
}

// Claims reports whether pattern is the RIB's (see Claims).
func (h *Hub) Claims(pattern []*gpb.PathElem) bool { return Claims(pattern) }

// pats are a subscription's RIB paths by what they reach.
type pats struct {
	routes, attrs, comms [][]*gpb.PathElem
	// extra is attrs and comms together, each pattern once.
	extra [][]*gpb.PathElem
}

func split(patterns [][]*gpb.PathElem) pats {
	var p pats
	for _, pat := range patterns {
		switch kindOf(pat) {
		case kindAll:
			p.routes = append(p.routes, pat)
			p.attrs = append(p.attrs, pat)
			p.comms = append(p.comms, pat)
			p.extra = append(p.extra, pat)
		case kindRoutes:
			p.routes = append(p.routes, pat)
		case kindAttrs:
			p.attrs = append(p.attrs, pat)
			p.extra = append(p.extra, pat)
		case kindComms:
			p.comms = append(p.comms, pat)
			p.extra = append(p.extra, pat)
		}
	}
	return p
}

// selectFor narrows a walk to what the route paths can match; attr-sets
// and communities alone (no route path) follow every route of their
// instances.
func (p *pats) selectFor() *Select {
	if len(p.routes) == 1 {
		return selectFor(p.routes[0])
	}
	if len(p.routes) == 0 && len(p.attrs)+len(p.comms) == 1 {
		return &Select{NI: key(append(p.attrs, p.comms...)[0][1], "name")}
	}
	return nil
}

// routeWanted: the route entry of r may have leaves a route path wants;
// with no route path, every route is followed for its attributes.
func (p *pats) routeWanted(base []*gpb.PathElem, e *gpb.PathElem) bool {
	if len(p.routes) == 0 {
		return true
	}
	for _, pat := range p.routes {
		if match(pat, base, []*gpb.PathElem{e}) {
			return true
		}
	}
	return false
}

func filter(ps [][]*gpb.PathElem, base []*gpb.PathElem, ups []*gpb.Update) []*gpb.Update {
	out := ups[:0]
	for _, u := range ups {
		for _, pat := range ps {
			if within(pat, base, u.GetPath().GetElem()) {
				out = append(out, u)
				break
			}
		}
	}
	return out
}

// place is where a walk sends leaves: a routes list, or an instance's
// rib for its sets; all says a pattern ends at or above it, so every leaf
// below is wanted and none needs matching.
type place struct {
	base []*gpb.PathElem
	all  bool
}

func newPlace(base []*gpb.PathElem, pats [][]*gpb.PathElem) *place {
	pl := &place{base: base}
	for _, pat := range pats {
		if len(pat) <= len(base) && match(pat, base, nil) {
			pl.all = true
		}
	}
	return pl
}

// placeKey names a routes list.
type placeKey struct {
	ni, neighbor, view string
	v6                 bool
}

// builder packs a walk's leaves into notifications a place at a time.
type builder struct {
	target string
	send   func(*gpb.Notification) error
	cur    *gpb.Notification
	at     *place
}

func (b *builder) add(pl *place, ups []*gpb.Update, ts int64) error {
	if len(ups) == 0 {
		return nil
	}
	if b.cur != nil && (b.at != pl || len(b.cur.Update)+len(ups) > maxPerNotification) {
		if err := b.flush(); err != nil {
			return err
		}
	}
	if b.cur == nil {
		b.cur = &gpb.Notification{Timestamp: ts, Prefix: &gpb.Path{Target: b.target, Elem: pl.base}}
		b.at = pl
	}
	b.cur.Update = append(b.cur.Update, ups...)
	return nil
}

func (b *builder) flush() error {
	if b.cur == nil {
		return nil
	}
	n := b.cur
	b.cur = nil
	return b.send(n)
}

// Walk sends the current routes (and attribute sets) under patterns of
// every router want accepts, in notifications of at most 512 updates,
// each router's batches read under its lock and sent without it. With
// deleteFirst each router's part starts with a delete of each pattern
// (a subscriber walked again after it fell behind).
func (h *Hub) Walk(ctx context.Context, want func(string) bool, patterns [][]*gpb.PathElem, deleteFirst bool, send func(*gpb.Notification) error) error {
	src := h.source()
	if src == nil {
		return nil
	}
	p := split(patterns)
	if len(p.routes)+len(p.attrs)+len(p.comms) == 0 {
		return nil
	}
	sel := p.selectFor()
	routers := src.RIBRouters()
	slices.Sort(routers)
	for _, router := range routers {
		if !want(router) {
			continue
		}
		if deleteFirst {
			n := &gpb.Notification{Timestamp: time.Now().UnixNano(), Prefix: &gpb.Path{Target: router}}
			for _, pat := range patterns {
				n.Delete = append(n.Delete, &gpb.Path{Elem: pat})
			}
			if err := send(n); err != nil {
				return err
			}
		}
		b := &builder{target: router, send: send}
		sentAttrs := map[uint64]bool{}
		routePlaces := map[placeKey]*place{}
		ribPlaces := map[string]*place{}
		var ups []*gpb.Update
		err := src.WalkRIB(router, sel, func(batch []Route) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			ts := time.Now().UnixNano()
			for i := range batch {
				r := &batch[i]
				if r.Attrs == nil {
					continue
				}
				pk := placeKey{r.NI, r.Neighbor, r.View, r.v6()}
				pl := routePlaces[pk]
				if pl == nil {
					pl = newPlace(routesBase(r), p.routes)
					routePlaces[pk] = pl
				}
				if len(p.routes) > 0 {
					if pl.all {
						ups = routeLeaves(r, ups[:0])
					} else {
						if !p.routeWanted(pl.base, routeElem(r)) {
							continue
						}
						ups = filter(p.routes, pl.base, routeLeaves(r, ups[:0]))
					}
					if len(ups) == 0 {
						continue // not a route the subscriber follows
					}
					if err := b.add(pl, ups, ts); err != nil {
						return err
					}
				}
				if len(p.extra) > 0 && !sentAttrs[r.Attrs.Index] {
					sentAttrs[r.Attrs.Index] = true
					rp := ribPlaces[r.NI]
					if rp == nil {
						rp = newPlace(ribBase(r.NI), p.extra)
						ribPlaces[r.NI] = rp
					}
					ups = communityLeaves(r.Attrs, attrLeaves(r.Attrs, ups[:0]))
					if !rp.all {
						ups = filter(p.extra, rp.base, ups)
					}
					if err := b.add(rp, ups, ts); err != nil {
						return err
					}
				}
			}
			// The leaves' slices are the notifications' now.
			ups = nil
			return b.flush()
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Watch is one subscriber's view of the RIBs' changes: a bounded queue
// of notifications, filled by the source's Publish, drained by the
// subscriber's stream.
type Watch struct {
	h    *Hub
	want func(string) bool
	p    pats

	max   int
	mu    sync.Mutex
	q     []*gpb.Notification
	lost  bool
	ready chan struct{}
}

// Watch starts watching patterns of the routers want accepts; call it
// before the subscription's first walk, so that no change falls between.
func (h *Hub) Watch(want func(string) bool, patterns [][]*gpb.PathElem) *Watch {
	w := &Watch{h: h, want: want, p: split(patterns), ready: make(chan struct{}, 1), max: h.queue}
	if len(w.p.routes)+len(w.p.attrs)+len(w.p.comms) == 0 {
		return w // nothing to watch
	}
	h.wmu.Lock()
	defer h.wmu.Unlock()
	var next []*Watch
	if old := h.watchers.Load(); old != nil {
		next = append(next, *old...)
	}
	next = append(next, w)
	h.watchers.Store(&next)
	return w
}

// Ready is signalled when changes wait.
func (w *Watch) Ready() <-chan struct{} { return w.ready }

// Drain appends the waiting notifications to buf; lost reports that
// some were dropped since the last Drain (the queue was full): the
// subscriber is to be walked again.
func (w *Watch) Drain(buf []*gpb.Notification) (out []*gpb.Notification, lost bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out = append(buf, w.q...)
	clear(w.q)
	w.q = w.q[:0]
	lost, w.lost = w.lost, false
	return out, lost
}

// Close stops the watch.
func (w *Watch) Close() {
	h := w.h
	h.wmu.Lock()
	defer h.wmu.Unlock()
	old := h.watchers.Load()
	if old == nil {
		return
	}
	next := make([]*Watch, 0, len(*old))
	for _, x := range *old {
		if x != w {
			next = append(next, x)
		}
	}
	h.watchers.Store(&next)
}

func (w *Watch) push(n *gpb.Notification) {
	w.mu.Lock()
	if w.lost {
		// Dropped already: the walk that follows sends the present.
	} else if len(w.q) >= w.max {
		clear(w.q)
		w.q = w.q[:0]
		w.lost = true
		w.h.lost.Inc()
	} else {
		w.q = append(w.q, n)
	}
	w.mu.Unlock()
	select {
	case w.ready <- struct{}{}:
	default:
	}
}

// Publish hands a change of router's RIB to the watching subscribers:
// an announcement (r.Attrs set) or a withdrawal. The source calls it in
// the order it applies changes, under the router's lock; it builds the
// notifications and queues them, and never waits for a subscriber.
func (h *Hub) Publish(router string, r *Route) {
	ws := h.watchers.Load()
	if ws == nil || len(*ws) == 0 || !r.Prefix.IsValid() {
		return
	}
	if _, ok := viewElem[r.View]; !ok && r.View != LocRIB {
		return
	}
	h.published.Inc()
	base := routesBase(r)
	e := routeElem(r)
	var routeN, attrN *gpb.Notification
	for _, w := range *ws {
		if !w.want(router) || !w.p.routeWanted(base, e) {
			continue
		}
		if len(w.p.routes) > 0 {
			if routeN == nil {
				routeN = &gpb.Notification{Timestamp: r.Time, Prefix: &gpb.Path{Target: router, Elem: base}}
				if r.Attrs == nil {
					routeN.Delete = []*gpb.Path{{Elem: []*gpb.PathElem{e}}}
				} else {
					routeN.Update = routeLeaves(r, nil)
				}
			}
			n := routeN
			if len(routeN.Update) > 0 {
				ups := filter(w.p.routes, base, slices.Clone(routeN.Update))
				if len(ups) == 0 {
					continue
				}
				if len(ups) != len(routeN.Update) {
					n = &gpb.Notification{Timestamp: r.Time, Prefix: routeN.Prefix, Update: ups}
				}
			}
			w.push(n)
		}
		if r.Attrs != nil && len(w.p.extra) > 0 {
			if attrN == nil {
				rb := ribBase(r.NI)
				attrN = &gpb.Notification{Timestamp: r.Time, Prefix: &gpb.Path{Target: router, Elem: rb},
					Delete: []*gpb.Path{{Elem: attrSetElems(r.Attrs)}}}
				attrN.Update = attrLeaves(r.Attrs, nil)
				attrN.Update = communityLeaves(r.Attrs, attrN.Update)
				if len(r.Attrs.Communities) > 0 {
					attrN.Delete = append(attrN.Delete, &gpb.Path{Elem: []*gpb.PathElem{pe("communities"), pe("community", "index", attrSetElems(r.Attrs)[1].Key["index"])}})
				}
			}
			rb := attrN.Prefix.Elem
			ups := filter(w.p.extra, rb, slices.Clone(attrN.Update))
			if len(ups) == 0 {
				continue
			}
			var dels []*gpb.Path
			for _, d := range attrN.Delete {
				for _, pat := range w.p.extra {
					if match(pat, rb, d.Elem) {
						dels = append(dels, d)
						break
					}
				}
			}
			w.push(&gpb.Notification{Timestamp: r.Time, Prefix: attrN.Prefix, Delete: dels, Update: ups})
		}
	}
}
