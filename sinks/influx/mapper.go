package influx

import (
	"slices"
	"strconv"
	"strings"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
)

// mapStats counts what the mapper could not write as given.
type mapStats struct {
	unmapped      uint64 // leaves the schema leaves out
	overflows     uint64 // uint64 values clamped into int64
	typeConflicts uint64 // values that did not fit their field's type
}

type nbrKey struct{ router, ni, addr string }

type seriesKey struct {
	meas  string
	extra tag
}

// series is the cached state of one state series (a neighbor's
// bgp_neighbor, one of its AFIs, ...), for snapshots, and the fields a
// batch changed in it.
type series struct {
	seriesKey
	nbr      *nbr
	fields   map[string]value
	pending  map[string]value
	pendTime int64
	// pendDerived is the newest time of meshd's own leaves pending (the
	// verdict's), which time the point only when no router leaf is
	// pending: the verdict is stamped with the newest time any source
	// has given, which after a router's clock stepped back is an hour
	// ahead, and it moved the router's own values there with it.
	pendDerived int64
}

type nbr struct {
	nbrKey
	peerAS string
	// locRIB marks a BMP Loc-RIB instance peer: not a BGP neighbor, so
	// OpenConfig neighbor leaves for it are not written as bgp_neighbor.
	locRIB bool
	series map[seriesKey]*series
}

// mapper turns batches into line protocol. It keeps the last value of
// every state field per neighbor, for tags such as peer_as and for the
// periodic snapshot. It is used by one goroutine.
type mapper struct {
	enc   *encoder
	kinds map[kindKey]kind // pinned kinds
	nbrs  map[nbrKey]*nbr
	// routers indexes nbrs by router, so one router's neighbors are
	// found (resynchronised, snapshotted, deleted) without a scan of the
	// fleet's.
	routers map[string]map[nbrKey]*nbr
	touched []*series
	stats   mapStats
	pt      point
	// routeKeys caches the encoded series key of bmp_route series: a
	// table dump is millions of route points over a few hundred series.
	routeKeys map[routeSeries]*routeKey
	kp        keyPaths // for resyncRouter
	// free holds the pending maps of series a batch touched, emptied
	// for the next batch's: a new map per touched series and batch was
	// most of the sink's allocation per update.
	free []map[string]value
	rel  []byte // scratch for mapNeighborLeafBuf
	// keepValues keeps every series' field values between batches, for
	// the periodic snapshot. A sink that can read the merge core back
	// (stage.Snapshotter) does not: its snapshot reads each router from
	// the core, and the values are held only while that router is
	// written (filling). Kept for the fleet, they were 300 MB of the
	// whole binary's heap at 1,000 routers × 100 neighbors, a third copy
	// of what the core and the gNMI target hold.
	keepValues bool
	filling    bool
}

// kindKey names a field: its measurement and name.
type kindKey struct{ meas, field string }

type routeSeries struct{ router, ni, nbr, afi, rib, action string }

type routeKey struct {
	key  []byte
	last *stamps // the encoder's cell for the series
}

// maxRouteKeys bounds routeKeys; the schema bounds it far lower.
const maxRouteKeys = 1 << 16

func newMapper() *mapper {
	m := &mapper{enc: newEncoder(), kinds: map[kindKey]kind{}, nbrs: map[nbrKey]*nbr{}, routers: map[string]map[nbrKey]*nbr{},
		routeKeys: map[routeSeries]*routeKey{}, keepValues: true}
	for meas, fs := range fixedKinds {
		for f, k := range fs {
			m.kinds[kindKey{meas, f}] = k
		}
	}
	return m
}

// kindOf returns the field's pinned kind, pinning natural if it has none.
func (m *mapper) kindOf(meas, f string, natural kind) kind {
	key := kindKey{meas, f}
	if k, ok := m.kinds[key]; ok {
		return k
	}
	m.kinds[key] = natural
	return natural
}

func (m *mapper) neighbor(k nbrKey) *nbr {
	n := m.nbrs[k]
	if n == nil {
		n = &nbr{nbrKey: k, series: map[seriesKey]*series{}}
		m.nbrs[k] = n
		rn := m.routers[k.router]
		if rn == nil {
			rn = map[nbrKey]*nbr{}
			m.routers[k.router] = rn
		}
		rn[k] = n
	}
	return n
}

// dropNeighbor forgets a neighbor.
func (m *mapper) dropNeighbor(k nbrKey) {
	delete(m.nbrs, k)
	if rn := m.routers[k.router]; rn != nil {
		delete(rn, k)
		if len(rn) == 0 {
			delete(m.routers, k.router)
		}
	}
}

// dropRouter forgets a router's neighbors.
func (m *mapper) dropRouter(name string) {
	for k := range m.routers[name] {
		delete(m.nbrs, k)
	}
	delete(m.routers, name)
}

func (n *nbr) get(k seriesKey) *series {
	s := n.series[k]
	if s == nil {
		s = &series{seriesKey: k, nbr: n}
		n.series[k] = s
	}
	return s
}

func ns(t time.Time, now time.Time) int64 {
	if t.IsZero() {
		return now.UnixNano()
	}
	return t.UnixNano()
}

// batch appends the points of one batch to dst and returns the number of
// points appended.
func (m *mapper) batch(dst []byte, b *change.Batch, now time.Time) ([]byte, int) {
	n := 0
	m.markLocRIB(b.Updates)
	for i := range b.Updates {
		m.update(&b.Updates[i], now)
	}
	var ok bool
	for _, s := range m.touched {
		ts := s.pendTime
		if ts == 0 {
			ts = s.pendDerived
		}
		dst, ok = m.appendSeries(dst, s, s.pending, ts)
		if ok {
			n++
		}
		m.release(s)
	}
	m.touched = m.touched[:0]
	for i := range b.Events {
		var k int
		dst, k = m.event(dst, &b.Events[i], now)
		n += k
	}
	return dst, n
}

// markLocRIB finds the neighbors a batch declares Loc-RIB instance peers
// (meshd's bmp/state/peer-type) before their other leaves are mapped:
// bmpbridge sends the OpenConfig leaves of a Peer Up first.
func (m *mapper) markLocRIB(ups []change.Update) {
	for i := range ups {
		u := &ups[i]
		if u.Value == nil {
			continue
		}
		elems := u.Path.GetElem()
		if len(elems) == 0 || elems[0].GetName() != "meshd" {
			continue
		}
		ni, addr, rest, ok := change.NeighborOf(u.Path)
		if !ok || len(rest) != 3 || rest[0].GetName() != "bmp" || rest[1].GetName() != "state" || rest[2].GetName() != "peer-type" {
			continue
		}
		if !locRIBPeerType(u.Value.GetStringVal()) {
			continue
		}
		nb := m.neighbor(nbrKey{u.Router, ni, addr})
		if !nb.locRIB {
			nb.locRIB = true
			nb.peerAS = ""
			for sk := range nb.series {
				if sk.meas == mNeighbor || sk.meas == mNeighborAfi {
					delete(nb.series, sk)
				}
			}
		}
	}
}

// update applies one leaf change to the cache and marks what changed.
func (m *mapper) update(u *change.Update, now time.Time) {
	ni, addr, rest, ok := change.NeighborOf(u.Path)
	elems := u.Path.GetElem()
	meshd := len(elems) > 0 && elems[0].GetName() == "meshd"
	if !ok {
		m.routerLeaf(u, meshd, now)
		return
	}
	key := nbrKey{u.Router, ni, addr}
	if u.Value == nil {
		m.deleteBelow(key, meshd, rest)
		return
	}
	if !meshd && (unspecifiedPeer(addr) || m.nbrs[key] != nil && m.nbrs[key].locRIB) {
		// A Loc-RIB or instance "peer" has no BGP session: OpenConfig
		// neighbor leaves for it would be a bogus bgp_neighbor series.
		m.stats.unmapped++
		return
	}
	if !meshd && len(rest) == 2 && rest[0].GetName() == "state" && rest[1].GetName() == "peer-as" {
		nb := m.neighbor(key)
		nb.peerAS = peerAS(u)
		return
	}
	t, ok := mapNeighborLeafBuf(meshd, rest, &m.rel)
	if !ok {
		m.stats.unmapped++
		return
	}
	s := m.neighbor(key).get(seriesKey{t.meas, t.extra})
	if !m.set(s, t.field, u, now) {
		return
	}
	switch {
	case t.field == "session_state":
		v := int64(0)
		if s.pending["session_state"].s == "ESTABLISHED" {
			v = 1
		}
		m.keep(s, "established", intV(v))
		s.pending["established"] = intV(v)
	case t.field == "health":
		if c, ok := healthCodes[s.pending["health"].s]; ok {
			m.keep(s, "health_code", intV(c))
			s.pending["health_code"] = intV(c)
		}
	}
}

// release gives a touched series' pending map back for reuse.
func (m *mapper) release(s *series) {
	if len(s.pending) <= maxPendingReuse && len(m.free) < maxFree {
		clear(s.pending)
		m.free = append(m.free, s.pending)
	}
	s.pending = nil
}

// maxFree and maxPendingReuse bound the maps kept for reuse: a batch
// touches a few series, a resync a router's; a map that held many
// fields keeps their room after clear.
const (
	maxFree         = 1024
	maxPendingReuse = 64
)

func peerAS(u *change.Update) string {
	v, _, ok := convert(u.Value, kInt)
	if !ok || v.i <= 0 {
		return ""
	}
	return strconv.FormatInt(v.i, 10)
}

// set stores a leaf's value in a series under its pinned type.
func (m *mapper) set(s *series, f string, u *change.Update, now time.Time) bool {
	k := m.kindOf(s.meas, f, naturalKind(u.Value))
	v, overflow, ok := convert(u.Value, k)
	if !ok {
		m.stats.typeConflicts++
		return false
	}
	if overflow {
		m.stats.overflows++
	}
	m.keep(s, f, v)
	if s.pending == nil {
		if n := len(m.free); n > 0 {
			s.pending, m.free = m.free[n-1], m.free[:n-1]
		} else {
			s.pending = map[string]value{}
		}
		s.pendTime, s.pendDerived = 0, 0
		m.touched = append(m.touched, s)
	}
	s.pending[f] = v
	if u.Source == change.SourceMeshd {
		s.pendDerived = max(s.pendDerived, ns(u.Time, now))
	} else {
		s.pendTime = max(s.pendTime, ns(u.Time, now))
	}
	return true
}

// keep records a field's value in its series when values are kept.
func (m *mapper) keep(s *series, f string, v value) {
	if !m.keepValues && !m.filling {
		return
	}
	if s.fields == nil {
		s.fields = map[string]value{}
	}
	s.fields[f] = v
}

// forgetValues drops one router's field values when they are not kept
// (see keepValues); the series, with their tags, stay.
func (m *mapper) forgetValues(router string) {
	if m.keepValues {
		return
	}
	for _, nb := range m.routers[router] {
		for _, s := range nb.series {
			s.fields = nil
		}
	}
}

// routerLeaf handles leaves not below a neighbor: meshd's router state,
// and deletes of a whole router.
func (m *mapper) routerLeaf(u *change.Update, meshd bool, now time.Time) {
	elems := u.Path.GetElem()
	if u.Value == nil && (len(elems) <= 1 || meshd && len(elems) <= 2) {
		m.dropRouter(u.Router)
		return
	}
	if !meshd || len(elems) != 4 || elems[1].GetName() != "router" || elems[2].GetName() != "state" {
		m.stats.unmapped++
		return
	}
	key := nbrKey{router: u.Router}
	if u.Value == nil {
		if n := m.nbrs[key]; n != nil {
			delete(n.get(seriesKey{meas: mRouter}).fields, fieldName(elems[3].GetName()))
		}
		return
	}
	m.set(m.neighbor(key).get(seriesKey{meas: mRouter}), fieldName(elems[3].GetName()), u, now)
}

// deleteBelow forgets a neighbor, one of its list entries, or a leaf.
func (m *mapper) deleteBelow(key nbrKey, meshd bool, rest []*gpb.PathElem) {
	n := m.nbrs[key]
	if n == nil {
		return
	}
	if len(rest) == 0 {
		if meshd {
			for sk := range n.series {
				switch sk.meas {
				case mKeepalive, mBMPPeer, mBMPStats, mBMPRib:
					delete(n.series, sk)
				}
			}
		} else {
			m.dropNeighbor(key)
			return
		}
		if len(n.series) == 0 {
			m.dropNeighbor(key)
		}
		return
	}
	if !meshd && len(rest) == 2 && rest[0].GetName() == "afi-safis" {
		delete(n.series, seriesKey{mNeighborAfi, tag{"afi_safi", stripModule(rest[1].GetKey()["afi-safi-name"])}})
		return
	}
	if t, ok := mapNeighborLeafBuf(meshd, rest, &m.rel); ok {
		if s := n.series[seriesKey{t.meas, t.extra}]; s != nil {
			delete(s.fields, t.field)
		}
	}
}

// seriesTags are the tags of a cached series.
func (m *mapper) seriesTags(tags []tag, s *series) []tag {
	n := s.nbr
	tags = append(tags[:0], tag{"router", n.router})
	if n.addr != "" {
		tags = append(tags, tag{"network_instance", n.ni}, tag{"neighbor", n.addr})
	}
	if s.meas == mNeighbor || s.meas == mNeighborAfi {
		tags = append(tags, tag{"peer_as", n.peerAS})
	}
	if s.extra.k != "" {
		tags = append(tags, s.extra)
	}
	return tags
}

func (m *mapper) appendSeries(dst []byte, s *series, fields map[string]value, ts int64) ([]byte, bool) {
	p := &m.pt
	p.meas = s.meas
	p.tags = m.seriesTags(p.tags, s)
	p.fields = p.fields[:0]
	for k, v := range fields {
		p.fields = append(p.fields, field{k, v})
	}
	p.ts = ts
	return m.enc.appendPoint(dst, p)
}

// snapshot appends every cached series in full, at now.
func (m *mapper) snapshot(dst []byte, now time.Time) ([]byte, int) {
	n := 0
	for _, nb := range m.nbrs {
		var k int
		dst, k = m.snapshotNeighbor(dst, nb, now.UnixNano())
		n += k
	}
	return dst, n
}

// snapshotRouter appends every cached series of one router in full, at
// now.
func (m *mapper) snapshotRouter(dst []byte, router string, now time.Time) ([]byte, int) {
	n := 0
	for _, nb := range m.routers[router] {
		var k int
		dst, k = m.snapshotNeighbor(dst, nb, now.UnixNano())
		n += k
	}
	return dst, n
}

// snapshotNeighbor appends a neighbor's cached series in full, at ts.
func (m *mapper) snapshotNeighbor(dst []byte, nb *nbr, ts int64) ([]byte, int) {
	n := 0
	var ok bool
	for _, s := range nb.series {
		if s.fields == nil {
			continue // not kept, and not read back (see keepValues)
		}
		if s.meas == mNeighbor {
			delete(s.fields, "uptime_s")
			if s.fields["established"].i == 1 {
				if le := s.fields["last_established_ns"].i; le > 0 && le < ts {
					s.fields["uptime_s"] = intV((ts - le) / 1e9)
				}
			}
		}
		dst, ok = m.appendSeries(dst, s, s.fields, ts)
		if ok {
			n++
		}
	}
	return dst, n
}

// event appends the points of one event.
func (m *mapper) event(dst []byte, ev *change.Event, now time.Time) ([]byte, int) {
	p := &m.pt
	p.ts = ns(ev.Time, now)
	p.tags = append(p.tags[:0], tag{"router", ev.Router}, tag{"network_instance", ev.NetworkInstance}, tag{"neighbor", ev.Neighbor})
	p.fields = p.fields[:0]
	var ok bool
	switch ev.Kind {
	case change.EventRoute:
		if ev.Route == nil {
			m.stats.unmapped++
			return dst, 0
		}
		return m.appendRoute(dst, ev, p.ts), 1
	case change.EventPeerUp, change.EventPeerDown, change.EventHopChange:
		p.meas = mSessionEvent
		p.tags = append(p.tags, tag{"event", string(ev.Kind)}, tag{"source", ev.Source.String()}, tag{"peer_as", m.eventPeerAS(ev)})
		m.eventFields(p, ev.Fields, "peer_as")
	case change.EventMessage:
		p.meas = mMessage
		typ := strings.ToUpper(str(ev.Fields["type"]))
		if typ == "" {
			typ = "UNKNOWN"
		}
		p.tags = append(p.tags, tag{"type", typ}, tag{"direction", str(ev.Fields["direction"])})
		m.eventFields(p, ev.Fields, "type", "direction")
		dst, ok = m.enc.appendPoint(dst, p)
		n := b2i(ok)
		// A Cease NOTIFICATION ends a session: record it as a session
		// event too, so one query lists every session end with reason.
		// Not for BMP: bmpbridge sends a peer_down event with the same
		// notification code for it, which would count the end twice.
		if typ == "NOTIFICATION" && intOf(ev.Fields["code"]) == 6 && ev.Source != change.SourceBMP {
			p.meas = mSessionEvent
			p.tags = append(p.tags[:0], tag{"router", ev.Router}, tag{"network_instance", ev.NetworkInstance}, tag{"neighbor", ev.Neighbor}, tag{"event", "cease"}, tag{"source", ev.Source.String()}, tag{"peer_as", m.eventPeerAS(ev)})
			p.fields = p.fields[:0]
			p.fields = append(p.fields, field{"n", intV(1)}, field{"notification_code", intV(6)})
			if sub := intOf(ev.Fields["subcode"]); sub >= 0 {
				p.fields = append(p.fields, field{"notification_subcode", intV(sub)})
			}
			if r := str(ev.Fields["reason"]); r != "" {
				p.fields = append(p.fields, field{"reason", strV(r)})
			}
			dst, ok = m.enc.appendPoint(dst, p)
			n += b2i(ok)
		}
		return dst, n
	case change.EventOriginChange:
		p.meas = mOrigin
		p.tags = append(p.tags, tag{"afi_safi", stripModule(str(ev.Fields["afi_safi"]))}, tag{"rib", str(ev.Fields["rib"])})
		m.eventFields(p, ev.Fields, "afi_safi", "rib")
	case change.EventAlert:
		p.meas = mAlert
		p.tags = append(p.tags, tag{"kind", str(ev.Fields["kind"])}, tag{"state", str(ev.Fields["state"])})
		m.eventFields(p, ev.Fields, "kind", "state")
	case change.EventRPKIChange:
		p.meas = mRPKIChange
		p.tags = append(p.tags, tag{"afi_safi", stripModule(str(ev.Fields["afi_safi"]))}, tag{"rib", str(ev.Fields["rib"])})
		m.eventFields(p, ev.Fields, "afi_safi", "rib")
	case change.EventStats:
		p.meas = mBMPStats
		p.tags = append(p.tags, tag{"rib", str(ev.Fields["rib"])})
		m.statsFields(p, ev.Fields)
	case change.EventProbeSample:
		p.meas = mKeepalive
		m.eventFields(p, ev.Fields)
	case change.EventRouterUp, change.EventRouterDown:
		p.meas = mRouterEvent
		p.tags = append(p.tags[:1], tag{"event", string(ev.Kind)})
		m.eventFields(p, ev.Fields)
	default:
		m.stats.unmapped++
		return dst, 0
	}
	dst, ok = m.enc.appendPoint(dst, p)
	return dst, b2i(ok)
}

// statsFields writes a Stats Report event under the field names the
// counter leaves use (bmpStatNames). A per-AFI/SAFI type gets one field
// per AFI/SAFI ("routes_adj_rib_in_afi_safi_ipv4_unicast") and one with
// their sum, which is what the counter leaf holds.
func (m *mapper) statsFields(p *point, fs map[string]any) {
	var sums map[string]int64
	for k, x := range fs {
		switch k {
		case "rib":
			continue
		case "peer_type":
			if v := str(x); v != "" {
				p.fields = append(p.fields, field{"peer_type", strV(v)})
			}
			continue
		}
		f, afi, ok := statField(k)
		v, vok := goValue(x)
		if !ok || !vok || v.k != kInt {
			m.stats.unmapped++
			continue
		}
		if u, isU := x.(uint64); isU && u > 1<<63-1 {
			m.stats.overflows++
		}
		if afi == "" {
			p.fields = append(p.fields, field{f, v})
			continue
		}
		p.fields = append(p.fields, field{f + "_" + fieldName(afi), v})
		if sums == nil {
			sums = map[string]int64{}
		}
		sums[f] += v.i
	}
	for f, v := range sums {
		if _, dup := fs[f]; !dup {
			p.fields = append(p.fields, field{f, intV(v)})
		}
	}
}

func (m *mapper) eventPeerAS(ev *change.Event) string {
	if v, ok := goValue(ev.Fields["peer_as"]); ok && v.k == kInt && v.i > 0 {
		return strconv.FormatInt(v.i, 10)
	}
	if n := m.nbrs[nbrKey{ev.Router, ev.NetworkInstance, ev.Neighbor}]; n != nil {
		return n.peerAS
	}
	return ""
}

// eventFields adds an event's fields under their pinned kinds, skipping
// the keys used as tags. Session, message and router events get n=1 so
// that every one of them has a field to count.
func (m *mapper) eventFields(p *point, fs map[string]any, skip ...string) {
	if _, ok := fixedKinds[p.meas]["n"]; ok {
		p.fields = append(p.fields, field{"n", intV(1)})
	}
next:
	for k, x := range fs {
		for _, s := range skip {
			if k == s {
				continue next
			}
		}
		v, ok := goValue(x)
		if !ok {
			m.stats.typeConflicts++
			continue
		}
		if u, isU := x.(uint64); isU && u > 1<<63-1 {
			m.stats.overflows++
		}
		f := fieldName(k)
		if r, ok := eventFieldRenames[p.meas][f]; ok {
			f = r
		}
		if f == "n" {
			continue
		}
		want := m.kindOf(p.meas, f, v.k)
		if v, ok = coerce(v, want); !ok {
			m.stats.typeConflicts++
			continue
		}
		p.fields = append(p.fields, field{f, v})
	}
}

// appendRoute encodes a route event: the series key from the cache, the
// fields in key order with their constant names; the same bytes as
// appendPoint would make of routeFields' point (tested).
func (m *mapper) appendRoute(dst []byte, ev *change.Event, ts int64) []byte {
	r := ev.Route
	rs := routeSeries{ev.Router, ev.NetworkInstance, ev.Neighbor, stripModule(r.AfiSafi), r.RIB, r.Action.String()}
	rk := m.routeKeys[rs]
	if rk == nil {
		p := &m.pt
		p.meas = mBMPRoute
		p.tags = append(p.tags[:0], tag{"action", rs.action}, tag{"afi_safi", rs.afi},
			tag{"neighbor", rs.nbr}, tag{"network_instance", rs.ni}, tag{"rib", rs.rib}, tag{"router", rs.router})
		key := appendSeriesKey(nil, p)
		tl, _ := m.enc.timelineKey(key, p)
		rk = &routeKey{key: key, last: m.enc.lastOf(tl)}
		if len(m.routeKeys) >= maxRouteKeys {
			clear(m.routeKeys)
		}
		m.routeKeys[rs] = rk
	}
	dst = append(dst, rk.key...)
	ts = bumpInOrder(rk.last, ts)
	sep := byte(' ')
	str := func(k, v string) {
		dst = append(dst, sep)
		dst = append(dst, k...)
		dst = append(dst, '=', '"')
		dst = appendEscaped(dst, v, strEsc)
		dst = append(dst, '"')
		sep = ','
	}
	num := func(k string, v int64) {
		dst = append(dst, sep)
		dst = append(dst, k...)
		dst = append(dst, '=')
		dst = strconv.AppendInt(dst, v, 10)
		dst = append(dst, 'i')
		sep = ','
	}
	if r.ASPath != "" {
		str("as_path", r.ASPath)
	}
	if len(r.Communities) > 0 {
		str("communities", strings.Join(r.Communities, " "))
	}
	if len(r.ExtCommunities) > 0 {
		str("ext_communities", extCommunities(r.ExtCommunities))
	}
	if len(r.LargeCommunities) > 0 {
		str("large_communities", strings.Join(r.LargeCommunities, " "))
	}
	if r.LocalPref != nil {
		num("local_pref", int64(*r.LocalPref))
	}
	if r.MED != nil {
		num("med", int64(*r.MED))
	}
	if r.NextHop != "" {
		str("next_hop", r.NextHop)
	}
	num("origin_as", int64(r.OriginAS))
	if r.PathID != 0 {
		num("path_id", int64(r.PathID))
	}
	str("prefix", r.Prefix)
	if r.RPKI != "" {
		str("rpki", r.RPKI)
	}
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, ts, 10)
	return append(dst, '\n')
}

func extCommunities(ec map[string][]string) string {
	var parts []string
	for typ, vs := range ec {
		for _, v := range vs {
			parts = append(parts, typ+":"+v)
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// routeFields fills a route point. Tags and fields are appended in key
// order, so encoding a route (the bulk of a table dump) sorts nothing.
// eventFieldRenames maps event field keys to the schema's names where
// the source's key differs (bmpbridge's OPEN "as" is the sender's AS).
var eventFieldRenames = map[string]map[string]string{
	mMessage: {"as": "my_as"},
}

func (m *mapper) routeFields(p *point, ev *change.Event) {
	r := ev.Route
	p.tags = append(p.tags[:0], tag{"action", r.Action.String()}, tag{"afi_safi", stripModule(r.AfiSafi)},
		tag{"neighbor", ev.Neighbor}, tag{"network_instance", ev.NetworkInstance}, tag{"rib", r.RIB}, tag{"router", ev.Router})
	if r.ASPath != "" {
		p.fields = append(p.fields, field{"as_path", strV(r.ASPath)})
	}
	if len(r.Communities) > 0 {
		p.fields = append(p.fields, field{"communities", strV(strings.Join(r.Communities, " "))})
	}
	if len(r.ExtCommunities) > 0 {
		p.fields = append(p.fields, field{"ext_communities", strV(extCommunities(r.ExtCommunities))})
	}
	if len(r.LargeCommunities) > 0 {
		p.fields = append(p.fields, field{"large_communities", strV(strings.Join(r.LargeCommunities, " "))})
	}
	if r.LocalPref != nil {
		p.fields = append(p.fields, field{"local_pref", intV(int64(*r.LocalPref))})
	}
	if r.MED != nil {
		p.fields = append(p.fields, field{"med", intV(int64(*r.MED))})
	}
	if r.NextHop != "" {
		p.fields = append(p.fields, field{"next_hop", strV(r.NextHop)})
	}
	p.fields = append(p.fields, field{"origin_as", intV(int64(r.OriginAS))})
	if r.PathID != 0 {
		p.fields = append(p.fields, field{"path_id", intV(int64(r.PathID))})
	}
	p.fields = append(p.fields, field{"prefix", strV(r.Prefix)})
}

func str(x any) string {
	if s, ok := x.(string); ok {
		return s
	}
	return ""
}

func intOf(x any) int64 {
	if v, ok := goValue(x); ok && v.k == kInt {
		return v.i
	}
	return -1
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
