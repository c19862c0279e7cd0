package merge

import (
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
