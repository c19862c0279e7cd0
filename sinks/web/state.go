package web

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/sessions"
)

// key names one session; its ID is what the page and the API use.
type key struct{ router, ni, neighbor string }

// ID joins the key's parts with "|", which no router name, instance name
// or address the page shows holds in practice; parseID splits it.
func (k key) ID() string { return k.router + "|" + k.ni + "|" + k.neighbor }

func parseID(id string) (key, bool) {
	p := strings.Split(id, "|")
	if len(p) != 3 || p[0] == "" || p[2] == "" {
		return key{}, false
	}
	return key{p[0], p[1], p[2]}, true
}

// entry is what the page knows of one session.
type entry struct {
	row  sessions.Row
	ring ring
	// changed is when the row last changed, as the merge core handed the
	// batch over (Unix ms): the page measures its lag from it.
	changed int64
	// The last OPEN each way and the last NOTIFICATION, from BMP's
	// verbose message events.
	openSent, openRecv, notification *message
}

// message is one BGP message as a bgp_message event told it.
type message struct {
	Time   time.Time      `json:"time"`
	Fields map[string]any `json:"fields"`
}

// state is the page's copy of the fleet: one row per session with its
// probe history, and the recent events. It is written by the mirror from
// the sources' goroutines and read by the page's handlers and ticker.
type state struct {
	mu      sync.Mutex
	routers map[string]map[key]*entry
	// dirty holds the sessions changed since the last tick; a key in it
	// whose entry is gone (or is no session) was removed.
	dirty map[key]struct{}
	// points are the probe points added since the last tick.
	points map[key][]point
	events eventRing
	window time.Duration
	// The other replicas' rows by replica and ID, the IDs of theirs that
	// changed since the last tick, and the replicas whose streams failed
	// (with why); see remote.go.
	remote      map[string]map[string]RowView
	remoteDirty map[string]struct{}
	unreachable map[string]string
	remoteSeq   map[string]uint64 // the last event taken from each replica, by its number
	// The open route alerts by router and ID, the other replicas'
	// (see alerts.go), and whether they changed since the last tick.
	alerts       map[string]map[string]*Alert
	remoteAlerts map[string][]Alert
	alertsDirty  bool
	// wake is signalled (never blocking) when something changed.
	wake chan struct{}
}

func newState(window time.Duration, events int) *state {
	return &state{
		routers: map[string]map[key]*entry{},
		dirty:   map[key]struct{}{},
		points:  map[key][]point{},
		events:  eventRing{buf: make([]Event, 0, min(events, 256)), max: events},
		window:  window,
		wake:    make(chan struct{}, 1),

		remote:      map[string]map[string]RowView{},
		remoteDirty: map[string]struct{}{},
		unreachable: map[string]string{},
		remoteSeq:   map[string]uint64{},

		alerts:       map[string]map[string]*Alert{},
		remoteAlerts: map[string][]Alert{},
	}
}

func (s *state) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Routers lists the routers held (mirror.Copy).
func (s *state) Routers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.routers))
	for r := range s.routers {
		out = append(out, r)
	}
	return out
}

// Replace makes a router's sessions those of ups (mirror.Copy). A
// session's probe history and messages outlive the resync.
func (s *state) Replace(router string, ups []change.Update) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.routers[router]
	fresh := map[key]*entry{}
	delete(s.alerts, router)
	s.alertsDirty = true
	for i := range ups {
		u := &ups[i]
		if id, below, ok := alertOf(u.Path); ok {
			s.applyAlert(router, u, id, below)
			continue
		}
		ni, nbr, rest, ok := change.NeighborOf(u.Path)
		if !ok || len(rest) == 0 || u.Value == nil {
			continue
		}
		k := key{router, ni, nbr}
		e := fresh[k]
		if e == nil {
			e = &entry{}
			if o := old[k]; o != nil {
				e.ring, e.openSent, e.openRecv, e.notification = o.ring, o.openSent, o.openRecv, o.notification
			}
			e.row = sessions.Row{Router: router, NetworkInstance: ni, Neighbor: nbr}
			fresh[k] = e
		}
		e.row.Apply(rest, u.Value)
	}
	for k := range old {
		s.dirty[k] = struct{}{}
	}
	for k := range fresh {
		s.dirty[k] = struct{}{}
	}
	if len(fresh) == 0 {
		delete(s.routers, router)
	} else {
		s.routers[router] = fresh
	}
	s.poke()
}

// timeline are the event kinds the page's timeline shows; the others
// (routes, stats, probe samples) are many and told elsewhere.
var timeline = map[change.EventKind]bool{
	change.EventPeerUp: true, change.EventPeerDown: true, change.EventHopChange: true,
	change.EventOriginChange: true, change.EventRouterUp: true, change.EventRouterDown: true,
	// Alerts, not the RPKI state changes under them: a cache's first
	// set can change thousands of routes' states at once.
	change.EventAlert: true,
}

// EventState is the kind of the page's own events: a session's state
// changing in a router's gNMI telemetry, which emits no event of its own
// (BMP's Peer Up and Down do).
const EventState change.EventKind = "session_state"

// Write applies a batch (mirror.Copy).
func (s *state) Write(ups []change.Update, evs []change.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The probe's leaves of one sample come in one batch: one point
	// each session, at the last leaf's time.
	var probed map[key]time.Time
	// A batch's updates mostly belong to one neighbor: its entry is
	// looked up once.
	var last *entry
	var lastKey key
	var now int64 // when the merge core published the batch (Unix ms)
	for i := range ups {
		u := &ups[i]
		if id, below, ok := alertOf(u.Path); ok {
			s.applyAlert(u.Router, u, id, below)
			continue
		}
		elems := u.Path.GetElem()
		if u.Value != nil && (len(elems) == 0 || !sessions.Leaf(elems[len(elems)-1].GetName())) {
			continue // no column of a row: counters, timers, routes' details
		}
		ni, nbr, rest, ok := change.NeighborOf(u.Path)
		if !ok {
			if u.Value == nil {
				s.deleteAbove(u.Router, u.Path)
				last = nil
			}
			continue
		}
		k := key{u.Router, ni, nbr}
		if len(rest) == 0 {
			if u.Value == nil {
				s.remove(k)
				last = nil
			}
			continue
		}
		e := last
		if e == nil || k != lastKey {
			if e = s.get(k, u.Value != nil); e == nil {
				continue
			}
		}
		was := e.row.State
		if !e.row.Apply(rest, u.Value) {
			continue // no column of the row: the page is not told
		}
		if e != last || k != lastKey {
			s.dirty[k] = struct{}{}
			last, lastKey = e, k
			if now == 0 {
				now = time.Now().UnixMilli()
			}
			e.changed = now
		}
		if e.row.State != was && was != "" && u.Source == change.SourceGNMI {
			s.events.add(Event{Time: u.Time, Router: u.Router, NetworkInstance: ni, Neighbor: nbr,
				Kind: string(EventState), Source: u.Source.String(),
				Fields: map[string]any{"old_state": was, "new_state": e.row.State}})
		}
		if len(rest) > 1 && rest[0].GetName() == "probe" && u.Value != nil {
			if probed == nil {
				probed = map[key]time.Time{}
			}
			probed[k] = u.Time
		}
	}
	for k, at := range probed {
		e := s.routers[k.router][k]
		if e == nil {
			continue
		}
		p := pointOf(&e.row, at)
		e.ring.add(p, s.window)
		s.points[k] = append(s.points[k], p)
	}
	for i := range evs {
		s.event(&evs[i])
	}
	if len(ups) > 0 || len(evs) > 0 {
		s.poke()
	}
}

func (s *state) event(ev *change.Event) {
	if ev.Kind == change.EventMessage {
		if e := s.get(key{ev.Router, ev.NetworkInstance, ev.Neighbor}, false); e != nil {
			m := &message{Time: ev.Time, Fields: ev.Fields}
			switch {
			case ev.Fields["type"] == "NOTIFICATION":
				e.notification = m
			case ev.Fields["type"] == "OPEN" && ev.Fields["direction"] == "sent":
				e.openSent = m
			case ev.Fields["type"] == "OPEN":
				e.openRecv = m
			}
		}
		return
	}
	if !timeline[ev.Kind] {
		return
	}
	s.events.add(Event{Time: ev.Time, Router: ev.Router, NetworkInstance: ev.NetworkInstance, Neighbor: ev.Neighbor,
		Kind: string(ev.Kind), Source: ev.Source.String(), Fields: ev.Fields})
}

// get returns a session's entry, made when create is set.
func (s *state) get(k key, create bool) *entry {
	r := s.routers[k.router]
	if e := r[k]; e != nil || !create {
		return e
	}
	if r == nil {
		r = map[key]*entry{}
		s.routers[k.router] = r
	}
	e := &entry{row: sessions.Row{Router: k.router, NetworkInstance: k.ni, Neighbor: k.neighbor}}
	r[k] = e
	return e
}

func (s *state) remove(k key) {
	r := s.routers[k.router]
	if _, ok := r[k]; !ok {
		return
	}
	delete(r, k)
	if len(r) == 0 {
		delete(s.routers, k.router)
	}
	s.dirty[k] = struct{}{}
}

// deleteAbove removes the sessions below a deleted path above the
// neighbors: the router's whole state, or one network instance's.
func (s *state) deleteAbove(router string, p *gpb.Path) {
	if el := p.GetElem(); (len(el) == 0 || len(el) == 1 && el[0].GetName() == "meshd") && s.alerts[router] != nil {
		delete(s.alerts, router)
		s.alertsDirty = true
	}
	ni, all := "", true
	for _, e := range p.GetElem() {
		switch e.GetName() {
		case "network-instance":
			if n, ok := e.GetKey()["name"]; ok {
				ni, all = n, false
			}
		case "neighbors", "neighbor", "protocols", "protocol", "bgp", "network-instances", "meshd":
		default:
			return // a delete of something no session is below
		}
	}
	for k := range s.routers[router] {
		if all || k.ni == ni {
			s.remove(k)
		}
	}
}

// delta is what changed since the last call, for the pages that show
// the fleet (every replica's rows) and for those that asked for this
// replica's own (another replica's page): rows changed and IDs removed;
// the events added (another replica's tagged with it), and the probe
// points added per session.
type delta struct {
	rows, localRows       []RowView
	removed, localRemoved []string
	events                []Event
	points                map[key][]point
	unreachable           []string
	// alerts and localAlerts are set when the open alerts changed.
	alerts, localAlerts *alertsMsg
}

// take hands over the changes since the last take; with build unset
// (no page is watching) it only forgets them.
func (s *state) take(lastEvent uint64, build bool) (d delta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !build {
		clear(s.dirty)
		clear(s.remoteDirty)
		clear(s.points)
		s.alertsDirty = false
		if n := len(s.events.buf); n > 0 {
			d.events = []Event{*s.events.at(n - 1)}
		}
		return d
	}
	for k := range s.dirty {
		id := k.ID()
		if e := s.routers[k.router][k]; e != nil && e.row.Session() {
			d.localRows = append(d.localRows, view(k, e))
		} else {
			d.localRemoved = append(d.localRemoved, id)
		}
		if r, ok := s.fleetRow(k); ok {
			d.rows = append(d.rows, r)
		} else {
			d.removed = append(d.removed, id)
		}
	}
	for id := range s.remoteDirty {
		k, ok := parseID(id)
		if !ok {
			continue
		}
		if _, dup := s.dirty[k]; dup {
			continue // told above
		}
		if r, ok := s.fleetRow(k); ok {
			d.rows = append(d.rows, r)
		} else {
			d.removed = append(d.removed, id)
		}
	}
	clear(s.dirty)
	clear(s.remoteDirty)
	if s.alertsDirty {
		s.alertsDirty = false
		all, own := s.alertsMsg(false), s.alertsMsg(true)
		d.alerts, d.localAlerts = &all, &own
	}
	d.events = s.events.since(lastEvent)
	if len(s.points) > 0 {
		d.points = s.points
		s.points = map[key][]point{}
	}
	d.unreachable = s.unreachableList()
	return d
}

// fleet returns every session's row, sorted, the last events and the
// open alerts: this replica's alone with local, else the other
// replicas' too.
func (s *state) fleet(events int, local bool) ([]RowView, []Event, alertsMsg, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rows []RowView
	for _, r := range s.routers {
		for k, e := range r {
			if e.row.Session() {
				rows = append(rows, view(k, e))
			}
		}
	}
	if !local {
		// Each session once: the row fleetRow picks.
		at := make(map[string]int, len(rows))
		for i, r := range rows {
			at[r.ID] = i
		}
		for _, held := range s.remote {
			for id := range held {
				k, ok := parseID(id)
				if !ok {
					continue
				}
				r, _ := s.fleetRow(k)
				if i, ok := at[id]; ok {
					rows[i] = r
					continue
				}
				at[id] = len(rows)
				rows = append(rows, r)
			}
		}
	}
	slices.SortFunc(rows, func(a, b RowView) int { return strings.Compare(a.ID, b.ID) })
	evs := s.events.last(events, func(e Event) bool { return !local || e.Replica == "" })
	return rows, evs, s.alertsMsg(local), s.unreachableList()
}

// detail is one session's page data held here; ok is false when the
// session is unknown.
func (s *state) detail(k key, events int) (d Detail, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.routers[k.router][k]
	if e == nil {
		return d, false
	}
	d.Row = view(k, e)
	d.History = seriesOf(e.ring.points())
	d.OpenSent, d.OpenReceived, d.Notification = e.openSent, e.openRecv, e.notification
	d.Events = s.events.last(events, func(ev Event) bool {
		return ev.Router == k.router && ev.NetworkInstance == k.ni && ev.Neighbor == k.neighbor
	})
	return d, true
}

// RowView is a session's row as the page gets it: the table's row with
// its ID and its flaps, and the replica that collects it when that is
// another one (cluster mode).
type RowView struct {
	ID string `json:"id"`
	sessions.Row
	Flaps   uint64 `json:"flaps"`
	Replica string `json:"replica,omitempty"`
	// Changed is when the merge core published the row's last change
	// (Unix ms; 0 for a row read from a snapshot).
	Changed int64 `json:"changed_ms,omitempty"`
}

// view copies a row for use after the lock is let go: its AFI-SAFI map
// is written in place (the counters it points to are not).
func view(k key, e *entry) RowView {
	r := &e.row
	v := RowView{ID: k.ID(), Row: *r, Flaps: r.Flaps(), Changed: e.changed}
	v.AfiSafis = maps.Clone(r.AfiSafis)
	return v
}
