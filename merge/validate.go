package merge

import (
	"fmt"
	"strings"

	"github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ygot/ygot"
	"github.com/openconfig/ygot/ytypes"

	"github.com/meshd/meshd/change"
)

func (c *Core) schemaFor(r *router, p *gnmi.Path) (*ytypes.Schema, ygot.GoStruct) {
	if len(p.GetElem()) > 0 && p.GetElem()[0].GetName() == "meshd" {
		return c.meshSch, r.meshd
	}
	return c.ocSch, r.oc
}

// validate is the schema check of an incoming change, its one home: a
// leaf that is new, or whose value its field's fast setter does not
// take, is set in the router's tree through the schema, which refuses a
// path or a value that does not fit (ErrSchema). It returns the setter
// that holds the value in the tree, or none when the leaf keeps the value
// itself.
func (c *Core) validate(r *router, p *gnmi.Path, v *gnmi.TypedValue) (setter, error) {
	_, root := c.schemaFor(r, p)
	set, ok := walkSet(root, p.GetElem(), v)
	if ok {
		return set, nil
	}
	key, offs := keyOffsets(p)
	set, err := c.setNode(r, p, key, offs, v)
	if err != nil {
		return setter{}, fmt.Errorf("%w: %w", ErrSchema, err)
	}
	// A field ygot filled from a value its setter would not take (an
	// enumeration named with its module) does not hold the value as
	// sent: the leaf keeps it.
	if !set.set(v) {
		set = setter{}
	}
	return set, nil
}

// setNode sets a value in the router's tree, starting from the nearest
// cached ancestor, caches the leaf's nearest struct for next time, and
// returns a fast setter for the leaf when its type allows one.
func (c *Core) setNode(r *router, p *gnmi.Path, key string, offs []int, v *gnmi.TypedValue) (setter, error) {
	elems := p.GetElem()
	sch, root := c.schemaFor(r, p)
	base := nodeRef{schema: sch.RootSchema(), data: root}
	from := 0
	for i := len(elems) - 1; i >= 1; i-- {
		if n, ok := r.nodes[key[:offs[i-1]]]; ok {
			base, from = n, i
			break
		}
	}
	rel := p
	if from > 0 {
		rel = &gnmi.Path{Elem: elems[from:]}
	}
	if err := ytypes.SetNode(base.schema, base.data, rel, v, &ytypes.InitMissingElements{}); err != nil {
		return setter{}, err
	}
	// Walk down from where the set started and cache every struct on the
	// way (list entries, containers), each found relative to the one
	// above it, so the next new leaf nearby starts deep in the tree.
	parent, pfrom := base, from
	for j := from + 1; j < len(elems); j++ {
		if n, ok := r.nodes[key[:offs[j-1]]]; ok {
			parent, pfrom = n, j
			continue
		}
		nodes, err := ytypes.GetNode(parent.schema, parent.data, &gnmi.Path{Elem: elems[pfrom:j]})
		if err != nil || len(nodes) != 1 || nodes[0].Schema == nil {
			continue
		}
		gs, ok := nodes[0].Data.(ygot.GoStruct)
		if !ok {
			continue
		}
		parent, pfrom = nodeRef{schema: nodes[0].Schema, data: gs}, j
		r.nodes[key[:offs[j-1]]] = parent
	}
	if pfrom == 0 {
		return setter{}, nil
	}
	names := make([]string, 0, len(elems)-pfrom)
	for _, e := range elems[pfrom:] {
		if len(e.GetKey()) > 0 {
			return setter{}, nil
		}
		names = append(names, e.GetName())
	}
	return fieldSetter(parent.data, strings.Join(names, "/")), nil
}

// keyOffsets returns the path's key and, for each element, the length of
// the key of the path up to and including it: prefixes of the key are the
// keys of the path's ancestors.
func keyOffsets(p *gnmi.Path) (string, []int) {
	elems := p.GetElem()
	offs := make([]int, len(elems))
	b := make([]byte, 0, 160)
	for i, e := range elems {
		b = change.AppendElemKey(b, e)
		offs[i] = len(b)
	}
	if len(b) == 0 {
		return "/", offs
	}
	return string(b), offs
}
