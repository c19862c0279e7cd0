package merge

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ygot/ytypes"

	"github.com/meshd/meshd/change"
)

// Apply applies changes and publishes the leaves that changed, together
// with events, as one batch. Changes are applied in order.
func (c *Core) Apply(changes []change.Change, events ...change.Event) Result {
	var res Result
	var errs []error
	// Room for every change and a few verdict leaves: the batch goes to
	// the consumers, so it is one allocation an Apply, not a growing one.
	ups := make([]change.Update, 0, len(changes))
	locked := c.lockRouters(changes)
	var touched []nbrKey // few a batch: a slice, not a map
	for i := range changes {
		ch := &changes[i]
		if ch.Router == "" {
			res.Invalid++
			errs = appendErr(errs, ErrNoRouter)
			continue
		}
		r := locked.get(ch.Router)
		if ch.Source != change.SourceUnknown && r.released[ch.Source] {
			delete(r.released, ch.Source)
		}
		before := len(ups)
		var err error
		if ch.Value == nil {
			ups = c.deleteLocked(r, ch, ups, &res)
		} else {
			ups, err = c.setLocked(r, ch, ups, &res)
		}
		if err != nil {
			errs = appendErr(errs, fmt.Errorf("router %s: %s: %w", ch.Router, change.PathKey(ch.Path), err))
		}
		if c.verdict && len(ups) > before {
			// A set that published has left r.nbr naming its neighbor.
			ni, addr, rest, info, ok := r.nbr.id.ni, r.nbr.id.addr, r.nbr.rest, r.nbr.info, r.nbr.info != nil
			if ch.Value == nil {
				ni, addr, rest, ok = change.NeighborOf(ch.Path)
				info = r.nbrs[nbrID{ni, addr}]
			}
			if ok && verdictDue(info, rest, ch.Value == nil, ch.Time) {
				// A neighbor's leaves come together; verdictLocked drops
				// the repeats that remain.
				if k := (nbrKey{ch.Router, ni, addr}); len(touched) == 0 || touched[len(touched)-1] != k {
					touched = append(touched, k)
				}
			}
		}
	}
	if c.verdict {
		ups = c.verdictLocked(locked, touched, ups)
	}
	var derived []change.Event
	for _, r := range locked {
		derived = append(derived, r.pending...)
		r.pending = r.pending[:0]
		clear(r.prevElems)
		r.prevElems = r.prevElems[:0]
		r.forgetNeighbor()
	}
	if len(derived) > 0 {
		events = append(derived, events...)
	}
	res.Err = errors.Join(errs...)
	c.m.observe(&res)
	if len(ups) > 0 || len(events) > 0 {
		// Under the routers' locks: every consumer sees one router's
		// batches in the order they were applied.
		c.publish(change.Batch{Updates: ups, Events: events})
	}
	c.unlockRouters(locked)
	return res
}

func appendErr(errs []error, err error) []error {
	if len(errs) < 5 {
		return append(errs, err)
	}
	return errs
}

// outranks reports whether a change from src may replace a leaf held by cur.
func (r *router) outranks(src change.Source, cur *leaf) bool {
	if cur.src == src {
		return true
	}
	if r.released[cur.src] {
		return true
	}
	return src.Rank() >= cur.src.Rank()
}

func (c *Core) setLocked(r *router, ch *change.Change, ups []change.Update, res *Result) ([]change.Update, error) {
	k := r.common(ch.Path)
	p := normaliseFrom(ch.Path, k)
	if p != ch.Path {
		k = 0
	}
	shared := r.keyOf(p, k)
	cur := r.leaves.get(r.keybuf, shared)
	if cur != nil {
		if !r.outranks(ch.Source, cur) {
			res.Outranked++
			return ups, nil
		}
		// Newer beats older between two sources of one rank. Within one
		// source, the order changes arrive in is the router's (one
		// ordered stream or session), and a time that goes back is the
		// router's clock stepping back: held to the time, every change
		// of that router was refused as stale until its clock caught up
		// again (an hour of nothing, in the soak's clock row).
		if ch.Source != cur.src && ch.Source.Rank() == cur.src.Rank() && ch.Time.Before(cur.time()) {
			res.Stale++
			return ups, nil
		}
		if cur.equal(ch.Value) {
			cur.ts, cur.src = stamp(ch.Time), ch.Source
			r.seen(p, ch.Source, ch.Time, 0)
			res.Unchanged++
			return ups, nil
		}
	}
	// The old hop count, read before the value that replaces it is set.
	var hops uint64
	isHops := cur != nil && bytes.HasSuffix(r.keybuf, hopsSuffix)
	if isHops {
		hops = cur.uintVal()
	}
	if cur == nil || !cur.fast().set(ch.Value) {
		set, err := c.validate(r, p, ch.Value)
		if err != nil {
			res.Invalid++
			return ups, err
		}
		added := 0
		if cur == nil {
			cur = r.leaves.put(r.keybuf, leaf{})
			added = 1
		}
		r.seen(p, ch.Source, ch.Time, added)
		if set.k != fieldNone {
			cur.setField(set)
		} else {
			cur.setValue(ch.Value)
		}
	} else {
		r.seen(p, ch.Source, ch.Time, 0)
	}
	if isHops {
		r.pending = append(r.pending, hopChange(r.name, p, hops, ch))
	}
	cur.ts, cur.src = stamp(ch.Time), ch.Source
	res.Applied++
	var key string
	if c.keys.Load() {
		key = string(r.keybuf)
	}
	return append(ups, change.Update{Router: r.name, Path: p, Key: key, Value: ch.Value, Time: ch.Time, Source: ch.Source}), nil
}

// The changes of one Apply mostly share their leading elements: the
// translator builds every path of a notification on the same prefix
// elements, so one neighbor's leaves differ only in their last few. The
// key of the part they share is kept from one change to the next, found
// by the elements' identity. That holds only within one Apply, as paths
// are read-only while they are applied; Apply forgets the elements at
// its end.

// common returns how many leading elements p shares, by identity, with
// the path whose key keybuf holds.
func (r *router) common(p *gnmi.Path) int {
	elems, k := p.GetElem(), 0
	for k < len(elems) && k < len(r.prevElems) && elems[k] == r.prevElems[k] {
		k++
	}
	return k
}

// keyOf builds p's key in keybuf, keeping the part its first k elements
// make, which it shares with the path before, and returns that part's
// length.
func (r *router) keyOf(p *gnmi.Path, k int) (shared int) {
	elems := p.GetElem()
	r.keybuf, r.prevOffs = r.keybuf[:0], r.prevOffs[:k]
	if k > 0 {
		r.keybuf = r.keybuf[:r.prevOffs[k-1]]
	}
	shared = len(r.keybuf)
	for _, e := range elems[k:] {
		r.keybuf = change.AppendElemKey(r.keybuf, e)
		r.prevOffs = append(r.prevOffs, len(r.keybuf))
	}
	clear(r.prevElems[k:])
	r.prevElems = append(r.prevElems[:k], elems[k:]...)
	if k < r.nbr.depth {
		r.forgetNeighbor()
	}
	return shared
}

func (r *router) forgetNeighbor() {
	r.nbr.depth, r.nbr.id, r.nbr.info, r.nbr.rest = 0, nbrID{}, nil, nil
}

// deleteLocked removes every leaf at or below the change's path that the
// change's source may remove, and the emptied node itself.
func (c *Core) deleteLocked(r *router, ch *change.Change, ups []change.Update, res *Result) []change.Update {
	r.forgetNeighbor()
	p := normalise(ch.Path)
	key := change.PathKey(p)
	kept := false
	var gone []string
	r.leaves.eachUnder(key, func(k string, l *leaf) {
		// meshd's own verdict is derived from the other leaves, so it
		// never keeps a subtree alive that its sources deleted.
		if l.src != change.SourceMeshd && !r.outranks(ch.Source, l) {
			kept = true
			res.Outranked++
			return
		}
		gone = append(gone, k)
	})
	sort.Strings(gone)
	if len(gone) > 0 || !kept {
		for k := range r.nodes {
			if k == key || strings.HasPrefix(k, key+"/") || key == "/" {
				delete(r.nodes, k)
			}
		}
	}
	for _, k := range gone {
		r.leaves.del(k)
		lp, err := change.KeyPath(k)
		if err != nil {
			// Keys are made by PathKey; this would be a bug in KeyPath.
			c.log.Error("merge: unparsable leaf key", "router", r.name, "key", k, "err", err)
			continue
		}
		if ni, addr, _, ok := change.NeighborOf(lp); ok {
			if n := r.nbrs[nbrID{ni, addr}]; n != nil {
				if n.leaves--; n.leaves <= 0 {
					delete(r.nbrs, nbrID{ni, addr})
				}
			}
		}
		sch, root := c.schemaFor(r, lp)
		_ = ytypes.DeleteNode(sch.RootSchema(), root, lp)
		res.Applied++
		ups = append(ups, change.Update{Router: r.name, Path: lp, Key: k, Time: ch.Time, Source: ch.Source})
	}
	if !kept && len(p.GetElem()) > 0 {
		// Remove the emptied container or list entry too, so a withdrawn
		// neighbor is gone from the tree and not left as an empty key.
		sch, root := c.schemaFor(r, p)
		_ = ytypes.DeleteNode(sch.RootSchema(), root, p)
	}
	if len(p.GetElem()) == 0 {
		r.dropWhenEmpty = true // by unlockRouters, if still empty then
	}
	return ups
}

// normalise strips origin and module prefixes so that equal paths from
// different sources are equal here.
func normalise(p *gnmi.Path) *gnmi.Path { return normaliseFrom(p, 0) }

// normaliseFrom is normalise for a path whose first clean elements are
// known to need nothing.
func normaliseFrom(p *gnmi.Path, clean int) *gnmi.Path {
	needs := p.GetOrigin() != "" || p.GetTarget() != ""
	for _, e := range p.GetElem()[clean:] {
		if strings.Contains(e.GetName(), ":") {
			needs = true
			break
		}
	}
	if !needs {
		return p
	}
	out := &gnmi.Path{Elem: make([]*gnmi.PathElem, len(p.GetElem()))}
	for i, e := range p.GetElem() {
		name := e.GetName()
		if j := strings.LastIndexByte(name, ':'); j >= 0 {
			name = name[j+1:]
		}
		out.Elem[i] = &gnmi.PathElem{Name: name, Key: e.GetKey()}
	}
	return out
}
