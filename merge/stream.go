package merge

import (
	"math"

	"github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/stage"
)

// WalkRouter calls fn for every leaf held for a router, under the
// router's lock, and reports whether the router is held. A leaf's key is
// prefix+rest: prefix is its group's (the key up to its last list entry,
// a neighbor or one of its AFI-SAFIs), made once a group, rest the part
// below it, the store's own string, so a walk allocates nothing per leaf. The
// value is good only during the call: scalars are handed out in one
// TypedValue reused from leaf to leaf. fn must not call into the core.
//
// A consumer that resynchronises from the store (the InfluxDB sink)
// walks it one router at a time with this instead of Snapshot, which
// builds the whole fleet as updates with a parsed path each: at 200
// routers × 100 neighbors that was 380 MB of heap and a quarter of the
// CPU.
func (c *Core) WalkRouter(name string, fn stage.LeafFunc) bool {
	r := c.lockHeld(name)
	if r == nil {
		return false
	}
	defer r.mu.Unlock()
	r.walk(fn)
	return true
}

// TryReadRouter is WalkRouter for a consumer whose queue a publisher may
// be waiting on (WithWait): if the router's lock is free it holds it
// while read runs, and read may walk the leaves (as WalkRouter's fn sees
// them) as often as it likes; if a publisher holds it, it reports busy
// at once, and the consumer takes a batch from its queue before it tries
// again. Waiting for the lock instead could wait out that publisher's
// whole wait and cost the batch. found is false when the router is not
// held.
func (c *Core) TryReadRouter(name string, read func(walk func(stage.LeafFunc))) (found, busy bool) {
	r := c.router(name, false)
	if r == nil {
		return false, false
	}
	if !r.mu.TryLock() {
		return true, true
	}
	defer r.mu.Unlock()
	if r.removed {
		return false, false
	}
	read(func(fn stage.LeafFunc) { r.walk(fn) })
	return true, false
}

// walk calls fn for every leaf, under r's lock.
func (r *router) walk(fn stage.LeafFunc) {
	var sc typedScratch
	var pbuf []byte
	for _, g := range r.leaves.groups {
		// The store keeps a group's prefix in parts: it is built once a
		// group, not once a leaf.
		pbuf = g.appendPrefix(pbuf[:0])
		prefix := string(pbuf)
		for j := range g.leaves {
			l := &g.leaves[j]
			fn(prefix, g.rests[j], sc.typed(l), l.time(), l.src)
		}
	}
}

// typedScratch hands out a leaf's value as a TypedValue without
// allocating one per leaf: the scalar kinds reuse one message and its
// oneof wrappers.
type typedScratch struct {
	tv gnmi.TypedValue
	u  gnmi.TypedValue_UintVal
	i  gnmi.TypedValue_IntVal
	s  gnmi.TypedValue_StringVal
	b  gnmi.TypedValue_BoolVal
	d  gnmi.TypedValue_DoubleVal
}

func (sc *typedScratch) typed(l *leaf) *gnmi.TypedValue {
	if l.fieldKind() != fieldNone {
		f := l.fast()
		switch f.k {
		case fieldEnum, fieldString:
			sc.s.StringVal = f.stringVal()
			sc.tv.Value = &sc.s
		case fieldBool:
			sc.b.BoolVal = get((**bool)(f.p))
			sc.tv.Value = &sc.b
		case fieldUint8, fieldUint16, fieldUint32, fieldUint64:
			sc.u.UintVal = f.uintVal()
			sc.tv.Value = &sc.u
		case fieldInt8, fieldInt16, fieldInt32, fieldInt64:
			sc.i.IntVal = f.intVal()
			sc.tv.Value = &sc.i
		default:
			return f.typed()
		}
		return &sc.tv
	}
	switch l.kind() {
	case kindUint:
		sc.u.UintVal = l.num()
		sc.tv.Value = &sc.u
	case kindInt:
		sc.i.IntVal = int64(l.num())
		sc.tv.Value = &sc.i
	case kindString:
		sc.s.StringVal = l.str()
		sc.tv.Value = &sc.s
	case kindBool:
		sc.b.BoolVal = l.num() != 0
		sc.tv.Value = &sc.b
	case kindDouble:
		sc.d.DoubleVal = math.Float64frombits(l.num())
		sc.tv.Value = &sc.d
	default:
		return l.typed()
	}
	return &sc.tv
}
