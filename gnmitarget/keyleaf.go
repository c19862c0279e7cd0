package gnmitarget

import (
	"math"
	"sort"
	"strconv"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/goyang/pkg/yang"

	"github.com/meshd/meshd/change"
)

// keyLeaf builds the key leaf name of the list entry n when the store has
// no leaf there: in OpenConfig every list has its keys as leaves of the
// entry (network-instance/name, a leafref to config/name), and the store
// holds what its sources sent, which is state/name at most. The leaf's
// value is the key in the entry's path, typed by the schema when there is
// one; its timestamp and sequence are those of the entry's oldest leaf,
// since the key has had its value as long as the entry has existed.
// The caller holds the target's lock.
func (s *Server) keyLeaf(n *node, name string) *node {
	kv, ok := n.elem.GetKey()[name]
	if !ok {
		return nil
	}
	l := &leafVal{ts: math.MaxInt64, seq: math.MaxUint64}
	eachLeaf(n, func(c *leafVal) {
		l.ts = min(l.ts, c.ts)
		l.seq = min(l.seq, c.seq)
	})
	if l.ts == math.MaxInt64 {
		return nil // an entry with no leaves is not there
	}
	p := nodePath(n)
	p = &gpb.Path{Elem: append(p.Elem[:len(p.Elem):len(p.Elem)], &gpb.PathElem{Name: name})}
	l.v = compact(typedKey(kv, s.entryFor(p.Elem)))
	l.group, l.depth = n, len(p.Elem)-1
	l.at = &node{elem: p.Elem[len(p.Elem)-1], parent: n, leaf: l}
	return l.at
}

// typedKey types a key value (always a string in a path) as the key leaf's
// schema type, following the leafref OpenConfig key leaves are.
func typedKey(v string, e *yang.Entry) *gpb.TypedValue {
	for i := 0; i < 4 && e != nil && e.Type != nil && e.Type.Kind == yang.Yleafref; i++ {
		e = followLeafref(e, e.Type.Path)
	}
	if e != nil && e.Type != nil {
		switch e.Type.Kind {
		case yang.Yuint8, yang.Yuint16, yang.Yuint32, yang.Yuint64:
			if u, err := strconv.ParseUint(v, 10, 64); err == nil {
				return &gpb.TypedValue{Value: &gpb.TypedValue_UintVal{UintVal: u}}
			}
		case yang.Yint8, yang.Yint16, yang.Yint32, yang.Yint64:
			if i, err := strconv.ParseInt(v, 10, 64); err == nil {
				return &gpb.TypedValue{Value: &gpb.TypedValue_IntVal{IntVal: i}}
			}
		case yang.Ybool:
			if b, err := strconv.ParseBool(v); err == nil {
				return &gpb.TypedValue{Value: &gpb.TypedValue_BoolVal{BoolVal: b}}
			}
		}
	}
	return &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: v}}
}

// keyLeafEvents appends, for the list entries t's write created or
// removed, an event for each key leaf keyLeaf would serve: its value when
// the entry appeared (and is still there), its delete when the entry went.
// They come after the leaves' own events, in runs of their own, so the
// leaves' notifications stay whole for the subscribers that share them.
func (s *Server) keyLeafEvents(t *target, evs []event) []event {
	for _, op := range t.entryOps {
		n := op.n
		names := make([]string, 0, len(n.elem.GetKey()))
		for name := range n.elem.GetKey() {
			if !n.hasNamed(name) { // else a leaf of the store is the key leaf
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			if op.removed {
				p := nodePath(n)
				p.Elem = append(p.Elem, &gpb.PathElem{Name: name})
				evs = append(evs, event{target: t.name, key: change.PathKey(p), path: p, ts: op.ts,
					group: n, depth: len(p.Elem) - 1, keyLeaf: true})
				continue
			}
			if !t.attached(n) {
				continue // removed again by the same write: its removal says so
			}
			if kl := s.keyLeaf(n, name); kl != nil {
				l := kl.leaf
				lp := l.path()
				evs = append(evs, event{target: t.name, key: change.PathKey(lp), path: lp, val: l.v.typed(), ts: l.ts, seq: l.seq,
					group: n, depth: l.depth, keyLeaf: true})
			}
		}
	}
	clear(t.entryOps)
	t.entryOps = t.entryOps[:0]
	return evs
}
