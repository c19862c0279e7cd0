package gnmitarget

import (
	"math"
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
	l.path = p
	l.key = change.PathKey(p)
	l.val = typedKey(kv, s.entryFor(p.Elem))
	l.group, l.depth = n, len(p.Elem)-1
	return &node{name: name, elem: p.Elem[len(p.Elem)-1], parent: n, leaf: l}
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
