package gnmiserver

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/goyang/pkg/yang"
	"github.com/openconfig/ygot/ygot"
	"github.com/openconfig/ygot/ytypes"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/stage"
)

// treeRenderer renders Get's JSON and JSON_IETF values with ygot from the
// merge core's generated structs, the one store of the merged values:
// the served tree (gnmitarget's) only finds which nodes a path matches.
//
// A compressed OpenConfig struct has no field for a config leaf (it is
// the state leaf's shadow path), so the core keeps config leaves beside
// the structs; for a Get that wants them they are set into a scratch
// root through their shadow paths, rendered the same way, and merged in.
type treeRenderer struct {
	trees stage.Trees
	// schemas are the roots' schemas, in the order Trees gives the roots.
	schemas []*yang.Entry
}

func (r *treeRenderer) render(router string, path *gpb.Path, ietf bool, typ gpb.GetRequest_DataType) ([]byte, bool, error) {
	elems := path.GetElem()
	var configUnder *gpb.Path
	if typ == gpb.GetRequest_ALL || typ == gpb.GetRequest_CONFIG {
		configUnder = path
	}
	// Under the router's lock only the nodes asked for are copied: ygot
	// renders a struct ten times slower than it copies it (a router of
	// 100 neighbors: 88 ms against 9 ms), and the router's sources wait
	// for the lock.
	var parts []part
	var err error
	held := r.trees.Trees(router, configUnder, func(roots []ygot.GoStruct, config []change.Update) {
		parts, err = r.copyParts(roots, config, elems, typ)
	})
	if !held || err != nil {
		return nil, false, err
	}
	var out any
	for _, p := range parts {
		v, err := p.render(ietf)
		if err != nil {
			return nil, false, err
		}
		out = mergeJSON(out, v)
	}
	if out == nil {
		return nil, false, nil
	}
	b, err := json.Marshal(out)
	return b, err == nil, err
}

// part is what one root gives a Get: a copy of the struct to render and
// the rest of the path below it, or, for config, the config leaves to
// build a struct of (outside the router's lock: they are copies).
type part struct {
	gs   ygot.GoStruct
	rest []*gpb.PathElem

	// The config part: leaves to set into a new root of root's type
	// through their shadow paths, and render through them.
	config []change.Update
	sch    *yang.Entry
	root   reflect.Type
	elems  []*gpb.PathElem
}

func (p part) render(ietf bool) (any, error) {
	shadow := p.config != nil
	if shadow {
		cfg, err := shadowRoot(p.sch, p.root, p.config)
		if err != nil {
			return nil, err
		}
		var k int
		p.gs, k = structAt(p.sch, cfg, p.elems, true)
		p.rest = p.elems[k:]
	}
	var m map[string]any
	var err error
	if ietf || shadow {
		m, err = ygot.ConstructIETFJSON(p.gs, &ygot.RFC7951JSONConfig{AppendModuleName: ietf, PreferShadowPath: shadow})
	} else {
		m, err = ygot.ConstructInternalJSON(p.gs)
	}
	if err != nil {
		return nil, err
	}
	return descend(m, p.rest, ietf)
}

// copyParts copies, from each root whose schema has the path, the
// nearest struct at or above it (state), and the config leaves of that
// schema (config; Trees gave only those at or below the path), as the
// data type asks.
func (r *treeRenderer) copyParts(roots []ygot.GoStruct, config []change.Update, elems []*gpb.PathElem, typ gpb.GetRequest_DataType) ([]part, error) {
	if len(roots) != len(r.schemas) {
		return nil, fmt.Errorf("%d roots for %d schemas", len(roots), len(r.schemas))
	}
	var parts []part
	for i, root := range roots {
		sch := r.schemas[i]
		if len(elems) > 0 && sch.Dir[elems[0].GetName()] == nil {
			continue
		}
		if typ != gpb.GetRequest_CONFIG {
			gs, k := structAt(sch, root, elems, false)
			c, err := ygot.DeepCopy(gs)
			if err != nil {
				return nil, err
			}
			parts = append(parts, part{gs: c, rest: elems[k:]})
		}
		if typ != gpb.GetRequest_ALL && typ != gpb.GetRequest_CONFIG {
			continue
		}
		var mine []change.Update
		for _, u := range config {
			if le := u.Path.GetElem(); len(le) > 0 && sch.Dir[le[0].GetName()] != nil {
				mine = append(mine, u)
			}
		}
		if len(mine) > 0 {
			parts = append(parts, part{config: mine, sch: sch, root: reflect.TypeOf(root).Elem(), elems: elems})
		}
	}
	return parts, nil
}

// shadowRoot sets config leaves into a new root of type root through
// their shadow paths.
func shadowRoot(sch *yang.Entry, root reflect.Type, config []change.Update) (ygot.GoStruct, error) {
	cfg := reflect.New(root).Interface().(ygot.GoStruct)
	for i := range config {
		u := &config[i]
		if err := ytypes.SetNode(sch, cfg, u.Path, u.Value, &ytypes.InitMissingElements{}, &ytypes.PreferShadowPath{}); err != nil {
			return nil, fmt.Errorf("config leaf %s: %w", u.Key, err)
		}
	}
	return cfg, nil
}

// structAt returns the struct at elems of root, or the nearest one above
// it, and how many of elems lead to it. A path may end at a container the
// compressed structs have no struct for (".../neighbor[...]/state") or at
// a leaf: the rest of it is taken from the struct's rendering (descend).
func structAt(sch *yang.Entry, root ygot.GoStruct, elems []*gpb.PathElem, shadow bool) (ygot.GoStruct, int) {
	var opts []ytypes.GetNodeOpt
	if shadow {
		opts = append(opts, &ytypes.PreferShadowPath{})
	}
	for k := len(elems); k > 0; k-- {
		nodes, err := ytypes.GetNode(sch, root, &gpb.Path{Elem: elems[:k]}, opts...)
		if err != nil || len(nodes) != 1 {
			continue
		}
		if s, ok := nodes[0].Data.(ygot.GoStruct); ok && !reflect.ValueOf(s).IsNil() {
			return s, k
		}
	}
	return root, 0
}

// descend takes the value at rest from a rendered struct. RFC 7951 §4
// wants the members of a top-level object qualified with their module;
// ygot qualifies a member only where its module differs from its
// parent's, so a container taken from inside is qualified here with the
// module it inherits.
func descend(m map[string]any, rest []*gpb.PathElem, ietf bool) (any, error) {
	var v any = m
	mod := ""
	for _, e := range rest {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, nil
		}
		name, val, ok := member(obj, e.GetName())
		if !ok {
			return nil, nil
		}
		if p, _, q := strings.Cut(name, ":"); q {
			mod = p
		}
		if len(e.GetKey()) > 0 {
			if val = entry(val, e.GetKey()); val == nil {
				return nil, nil
			}
		}
		v = val
	}
	obj, ok := v.(map[string]any)
	if !ok || !ietf || mod == "" || len(rest) == 0 {
		return v, nil
	}
	q := make(map[string]any, len(obj))
	for k, x := range obj {
		if !strings.Contains(k, ":") {
			k = mod + ":" + k
		}
		q[k] = x
	}
	return q, nil
}

// member finds an object's member by its name, qualified or not.
func member(obj map[string]any, name string) (string, any, bool) {
	if v, ok := obj[name]; ok {
		return name, v, true
	}
	for k, v := range obj {
		if _, n, q := strings.Cut(k, ":"); q && n == name {
			return k, v, true
		}
	}
	return "", nil, false
}

// entry finds a list entry by its keys (identities compared without
// their module).
func entry(list any, keys map[string]string) any {
	arr, ok := list.([]any)
	if !ok {
		return nil
	}
next:
	for _, x := range arr {
		obj, ok := x.(map[string]any)
		if !ok {
			continue
		}
		for k, want := range keys {
			_, got, ok := member(obj, k)
			if !ok || bare(fmt.Sprint(got)) != bare(want) {
				continue next
			}
		}
		return obj
	}
	return nil
}

func bare(s string) string {
	if _, n, ok := strings.Cut(s, ":"); ok {
		return n
	}
	return s
}

// mergeJSON merges b into a: objects member by member, lists entry by
// entry (entries with the same scalar members' values where both have
// them are one entry), anything else a's.
func mergeJSON(a, b any) any {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return a
		}
		for k, v := range y {
			x[k] = mergeJSON(x[k], v)
		}
		return x
	case []any:
		y, ok := b.([]any)
		if !ok {
			return a
		}
		for _, be := range y {
			bo, ok := be.(map[string]any)
			i := -1
			if ok {
				i = sameEntry(x, bo)
			}
			if i < 0 {
				x = append(x, be)
				continue
			}
			x[i] = mergeJSON(x[i], bo)
		}
		return x
	}
	return a
}

// sameEntry finds the entry of list that agrees with e on every scalar
// member both have (the keys are among them: a list entry renders its
// key leaves), and has at least one such member.
func sameEntry(list []any, e map[string]any) int {
	for i, x := range list {
		o, ok := x.(map[string]any)
		if !ok {
			continue
		}
		shared, same := 0, true
		for k, v := range e {
			w, has := o[k]
			if !has || !scalar(v) || !scalar(w) {
				continue
			}
			shared++
			if v != w {
				same = false
				break
			}
		}
		if same && shared > 0 {
			return i
		}
	}
	return -1
}

func scalar(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return false
	}
	return true
}
