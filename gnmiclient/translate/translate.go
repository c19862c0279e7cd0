// Package translate turns the gNMI notifications a router sends into
// schema-typed leaf changes for meshd's merge core: OpenConfig paths with or
// without origin and module prefixes, JSON container values exploded into
// leaves, the BGP protocol key normalised, and vendor-native paths mapped
// onto OpenConfig by a data-driven table.
package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/goyang/pkg/yang"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/schema"
)

// Translator converts notifications into changes. It is safe for
// concurrent use; one serves every session.
type Translator struct {
	ocRoot   *yang.Entry
	meshRoot *yang.Entry
	tables   []*Table
	enumKeys sync.Map // *yang.Entry (list) -> map[string]bool
}

// Option configures a Translator.
type Option func(*Translator) error

// WithTable adds a native mapping table (YAML, see srlinux.yaml). The
// built-in SR Linux table is always present.
func WithTable(data []byte) Option {
	return func(t *Translator) error {
		tb, err := ParseTable(data, t.ocRoot)
		if err != nil {
			return err
		}
		t.tables = append(t.tables, tb)
		return nil
	}
}

// New returns a translator over the merge core's schemas.
func New(opts ...Option) (*Translator, error) {
	ocs, ms, err := schema.Schemas()
	if err != nil {
		return nil, err
	}
	t := &Translator{ocRoot: ocs.RootSchema(), meshRoot: ms.RootSchema()}
	srl, err := SRLinux(t.ocRoot)
	if err != nil {
		return nil, err
	}
	t.tables = append(t.tables, srl)
	for _, o := range opts {
		if err := o(t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Result collects what one or more notifications turned into. Reuse one
// per session (Reset between notifications) to spare allocations.
type Result struct {
	Changes []change.Change
	// Unknown holds, per update that fits no schema and no table, the path
	// with keys stripped: a bounded label for counting.
	Unknown []string
	// Invalid counts values that fit their path but not its type, or
	// JSON that does not parse.
	Invalid int
	// Err is the first invalid value's error, for a summary log.
	Err error
	// Leaves counts the leaves produced (deletes included).
	Leaves int
	// walks remembers where update paths led below a prefix: a stream
	// repeats the same few update paths (decoded once, the same *Path
	// each time) below every neighbor's prefix. It lives as long as the
	// Result, which a session reuses.
	walks map[walkKey]walked
}

type walkKey struct {
	from *yang.Entry
	path *gpb.Path
}

type walked struct {
	e   *yang.Entry
	out []*gpb.PathElem
	ok  bool
}

// maxWalks bounds a Result's walks: a stream's update paths are tens; a
// source that sends each update path anew (decoded without respcodec)
// only refills it.
const maxWalks = 64

// walkRel is t.walk of an update's path below a prefix's entry,
// remembered in res.
func (t *Translator) walkRel(res *Result, from *yang.Entry, p *gpb.Path) (*yang.Entry, []*gpb.PathElem, bool) {
	k := walkKey{from, p}
	if w, ok := res.walks[k]; ok {
		return w.e, w.out, w.ok
	}
	e, out, ok := t.walk(from, stripElems(p.GetElem()))
	if res.walks == nil || len(res.walks) >= maxWalks {
		res.walks = make(map[walkKey]walked, maxWalks)
	}
	res.walks[k] = walked{e, out, ok}
	return e, out, ok
}

// Reset empties the result for reuse.
func (r *Result) Reset() {
	clear(r.Changes)
	r.Changes = r.Changes[:0]
	r.Unknown = r.Unknown[:0]
	r.Invalid, r.Err, r.Leaves = 0, nil, 0
}

func (r *Result) invalid(err error) {
	r.Invalid++
	if r.Err == nil {
		r.Err = err
	}
}

// ctx carries what every leaf of one notification shares.
type ctx struct {
	router string
	src    change.Source
	ts     time.Time
	res    *Result
	// The paths of a notification's leaves, and the elements of those
	// joined to the prefix, are taken from two slabs: two allocations a
	// notification rather than two a leaf.
	paths []gpb.Path
	elems []*gpb.PathElem
}

func (c *ctx) emit(elems []*gpb.PathElem, v *gpb.TypedValue) {
	var p *gpb.Path
	if len(c.paths) > 0 {
		p, c.paths = &c.paths[0], c.paths[1:]
		p.Elem = elems
	} else {
		p = &gpb.Path{Elem: elems}
	}
	src := c.src
	if src == change.SourceGNMI && isProbeLeaf(elems) {
		// The keepalive probe's measurements, collected over gNMI, are
		// the probe's: the verdict says which sources saw a session.
		src = change.SourceProbe
	}
	c.res.Changes = append(c.res.Changes, change.Change{
		Router: c.router, Path: p, Value: v, Time: c.ts, Source: src,
	})
	c.res.Leaves++
}

// isProbeLeaf reports whether elems is under meshd's probe container,
// /meshd/network-instances/network-instance/neighbors/neighbor/probe.
func isProbeLeaf(elems []*gpb.PathElem) bool {
	return len(elems) > 5 && elems[5].GetName() == "probe" && elems[0].GetName() == "meshd"
}

// join is join with the result taken from the slab while it lasts.
func (c *ctx) join(a, b []*gpb.PathElem) []*gpb.PathElem {
	n := len(a) + len(b)
	if cap(c.elems)-len(c.elems) < n {
		return join(a, b)
	}
	l := len(c.elems)
	c.elems = append(append(c.elems, a...), b...)
	return c.elems[l : l+n : l+n]
}

// Notification translates one notification for router into res. now is
// used when the notification has no timestamp. Deletes come first, as the
// gNMI specification orders them. Paths are read-only: a Result reused
// for the next notification remembers where its update paths led.
func (t *Translator) Notification(router string, n *gpb.Notification, src change.Source, now time.Time, res *Result) {
	c := &ctx{router: router, src: src, ts: now, res: res}
	if n.GetTimestamp() > 0 {
		c.ts = time.Unix(0, n.GetTimestamp())
	}
	prefix := n.GetPrefix()
	pelems := stripElems(prefix.GetElem())
	// Walk the prefix through the schema once, not once per update: most
	// routers put the neighbor in the prefix and a few leaves below it.
	var pw struct {
		root, entry *yang.Entry
		elems       []*gpb.PathElem
	}
	if len(pelems) > 0 {
		if root := t.rootFor(prefix.GetOrigin(), pelems[0].GetName()); root != nil {
			if e, out, ok := t.walk(root, pelems); ok && !e.IsLeaf() && !e.IsLeafList() {
				pw.root, pw.entry, pw.elems = root, e, out
			}
		}
	}
	if nu := len(n.GetUpdate()); nu > 0 {
		c.paths = make([]gpb.Path, nu)
		if pw.entry != nil {
			// Exactly what the updates' paths take (a walk keeps an
			// element count): the slab lives as long as any of them.
			need := nu * len(pw.elems)
			for _, u := range n.GetUpdate() {
				need += len(u.GetPath().GetElem())
			}
			c.elems = make([]*gpb.PathElem, 0, need)
		}
	}
	for _, d := range n.GetDelete() {
		t.one(c, originOf(prefix, d), join(pelems, stripElems(d.GetElem())), nil)
	}
	for _, u := range n.GetUpdate() {
		if u.GetVal() == nil {
			// An update without a value carries nothing to store.
			c.res.invalid(fmt.Errorf("%s: update without a value", pathString(join(pelems, u.GetPath().GetElem()))))
			continue
		}
		if pw.entry != nil && u.GetPath().GetOrigin() == "" {
			e, out, ok := t.walkRel(c.res, pw.entry, u.GetPath())
			if !ok {
				c.res.Unknown = append(c.res.Unknown, label(join(pelems, stripElems(u.GetPath().GetElem()))))
				continue
			}
			t.schemaValue(c, e, c.join(pw.elems, out), u.GetVal())
			continue
		}
		t.one(c, originOf(prefix, u.GetPath()), join(pelems, stripElems(u.GetPath().GetElem())), u.GetVal())
	}
}

// rootFor returns the schema root a path with this origin and first
// element belongs to, or nil for a vendor-native path.
func (t *Translator) rootFor(origin, first string) *yang.Entry {
	switch {
	case first == "meshd" && (origin == "" || origin == "meshd"):
		return t.meshRoot
	case (origin == "" || origin == "openconfig") && t.ocRoot.Dir[first] != nil:
		return t.ocRoot
	}
	return nil
}

func originOf(prefix, p *gpb.Path) string {
	if o := p.GetOrigin(); o != "" {
		return o
	}
	return prefix.GetOrigin()
}

func join(a, b []*gpb.PathElem) []*gpb.PathElem {
	out := make([]*gpb.PathElem, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}

// stripElems drops module prefixes from element names ("openconfig-network-
// instance:network-instances" → "network-instances"), copying only when
// one has to go.
func stripElems(elems []*gpb.PathElem) []*gpb.PathElem {
	for i, e := range elems {
		if strings.IndexByte(e.GetName(), ':') < 0 {
			continue
		}
		out := append([]*gpb.PathElem(nil), elems...)
		for j := i; j < len(out); j++ {
			if n := out[j].GetName(); strings.IndexByte(n, ':') >= 0 {
				out[j] = &gpb.PathElem{Name: stripPrefix(n), Key: out[j].GetKey()}
			}
		}
		return out
	}
	return elems
}

func (t *Translator) one(c *ctx, origin string, elems []*gpb.PathElem, v *gpb.TypedValue) {
	if len(elems) == 0 {
		c.res.Unknown = append(c.res.Unknown, "/")
		return
	}
	if root := t.rootFor(origin, elems[0].GetName()); root != nil {
		t.schemaPath(c, root, elems, v)
		return
	}
	t.nativePath(c, elems, v)
}

// schemaPath handles a path of a schema meshd holds (OpenConfig or meshd's).
func (t *Translator) schemaPath(c *ctx, root *yang.Entry, elems []*gpb.PathElem, v *gpb.TypedValue) {
	e, out, ok := t.walk(root, elems)
	if !ok {
		c.res.Unknown = append(c.res.Unknown, label(elems))
		return
	}
	t.schemaValue(c, e, out, v)
}

// schemaValue emits the leaves of a value at a schema entry.
func (t *Translator) schemaValue(c *ctx, e *yang.Entry, out []*gpb.PathElem, v *gpb.TypedValue) {
	if v == nil {
		c.emit(out, nil)
		return
	}
	raw, isJSON := jsonBytes(v)
	if !isJSON {
		if !e.IsLeaf() && !e.IsLeafList() {
			c.res.invalid(fmt.Errorf("%s: scalar value for a container", pathString(out)))
			return
		}
		tv, err := coerce(e, v)
		if err != nil {
			c.res.invalid(fmt.Errorf("%s: %w", pathString(out), err))
			return
		}
		c.emit(out, tv)
		return
	}
	jv, err := decodeJSON(raw)
	if err != nil {
		c.res.invalid(fmt.Errorf("%s: %w", pathString(out), err))
		return
	}
	t.explode(c, e, out, jv)
}

// explode walks a decoded JSON value along the schema, emitting one change
// per leaf. Key leaves directly under a list entry are left out: the path
// carries them already.
func (t *Translator) explode(c *ctx, e *yang.Entry, path []*gpb.PathElem, jv any) {
	switch {
	case e.IsLeaf() || e.IsLeafList():
		tv, err := jsonScalar(jv)
		if err == nil {
			tv, err = coerce(e, tv)
		}
		if err != nil {
			c.res.invalid(fmt.Errorf("%s: %w", pathString(path), err))
			return
		}
		c.emit(path, tv)
	case e.IsList() && len(path) > 0 && len(path[len(path)-1].GetKey()) == 0:
		// A whole list: each entry names its keys in its members.
		arr, ok := jv.([]any)
		if !ok {
			c.res.invalid(fmt.Errorf("%s: list value is not an array", pathString(path)))
			return
		}
		last := path[len(path)-1]
		for _, item := range arr {
			obj, ok := item.(map[string]any)
			if !ok {
				c.res.invalid(fmt.Errorf("%s: list entry is not an object", pathString(path)))
				continue
			}
			keys, err := t.entryKeys(e, obj)
			if err != nil {
				c.res.invalid(fmt.Errorf("%s: %w", pathString(path), err))
				continue
			}
			p := append(append([]*gpb.PathElem(nil), path[:len(path)-1]...), &gpb.PathElem{Name: last.GetName(), Key: keys})
			t.explodeDir(c, e, p, obj)
		}
	default:
		obj, ok := jv.(map[string]any)
		if !ok {
			c.res.invalid(fmt.Errorf("%s: container value is not an object", pathString(path)))
			return
		}
		t.explodeDir(c, e, path, obj)
	}
}

func (t *Translator) explodeDir(c *ctx, e *yang.Entry, path []*gpb.PathElem, obj map[string]any) {
	var keyNames []string
	if e.IsList() {
		keyNames = strings.Fields(e.Key)
	}
	for name, v := range obj {
		n := stripPrefix(name)
		if isKeyName(keyNames, n) {
			continue
		}
		child := e.Dir[n]
		if child == nil {
			c.res.Unknown = append(c.res.Unknown, label(path)+"/"+n)
			continue
		}
		if child.IsList() {
			arr, ok := v.([]any)
			if !ok {
				c.res.invalid(fmt.Errorf("%s/%s: list value is not an array", pathString(path), n))
				continue
			}
			for _, item := range arr {
				obj, ok := item.(map[string]any)
				if !ok {
					c.res.invalid(fmt.Errorf("%s/%s: list entry is not an object", pathString(path), n))
					continue
				}
				keys, err := t.entryKeys(child, obj)
				if err != nil {
					c.res.invalid(fmt.Errorf("%s/%s: %w", pathString(path), n, err))
					continue
				}
				t.explodeDir(c, child, appendElem(path, &gpb.PathElem{Name: n, Key: keys}), obj)
			}
			continue
		}
		t.explode(c, child, appendElem(path, &gpb.PathElem{Name: n}), v)
	}
}

func isKeyName(keys []string, n string) bool {
	for _, k := range keys {
		if k == n {
			return true
		}
	}
	return false
}

func appendElem(path []*gpb.PathElem, e *gpb.PathElem) []*gpb.PathElem {
	out := make([]*gpb.PathElem, len(path)+1)
	copy(out, path)
	out[len(path)] = e
	return out
}

// entryKeys reads a list entry's keys from its JSON members.
func (t *Translator) entryKeys(list *yang.Entry, obj map[string]any) (map[string]string, error) {
	names := strings.Fields(list.Key)
	keys := make(map[string]string, len(names))
	enums := t.listEnumKeys(list)
	for _, k := range names {
		v, ok := obj[k]
		if !ok {
			// JSON_IETF may qualify a member with its module.
			for name, vv := range obj {
				if stripPrefix(name) == k {
					v, ok = vv, true
					break
				}
			}
		}
		if !ok {
			return nil, fmt.Errorf("list entry without key %q", k)
		}
		s := fmt.Sprint(v)
		if enums[k] {
			s = stripPrefix(s)
		}
		keys[k] = s
	}
	return keys, nil
}

// walk follows elems through the schema, returning the entry reached and
// the elements normalised: the BGP protocol instance keyed as meshd keys
// it, and enum or identity key values without module prefixes.
func (t *Translator) walk(root *yang.Entry, elems []*gpb.PathElem) (*yang.Entry, []*gpb.PathElem, bool) {
	e := root
	out := elems
	copied := false
	set := func(i int, pe *gpb.PathElem) {
		if !copied {
			out = append([]*gpb.PathElem(nil), elems...)
			copied = true
		}
		out[i] = pe
	}
	for i, pe := range elems {
		parent := e
		if e = e.Dir[pe.GetName()]; e == nil {
			return nil, nil, false
		}
		if len(pe.GetKey()) == 0 || !e.IsList() {
			continue
		}
		if pe.GetName() == "protocol" && parent.Name == "protocols" {
			if isBGP(pe.GetKey()) {
				if pe.GetKey()["identifier"] != "BGP" || pe.GetKey()["name"] != "BGP" || len(pe.GetKey()) != 2 {
					set(i, &gpb.PathElem{Name: "protocol", Key: map[string]string{"identifier": "BGP", "name": "BGP"}})
				}
				continue
			}
		}
		enums := t.listEnumKeys(e)
		for k, v := range pe.GetKey() {
			if enums[k] && strings.IndexByte(v, ':') >= 0 {
				keys := make(map[string]string, len(pe.GetKey()))
				for kk, vv := range pe.GetKey() {
					if enums[kk] {
						vv = stripPrefix(vv)
					}
					keys[kk] = vv
				}
				set(i, &gpb.PathElem{Name: pe.GetName(), Key: keys})
				break
			}
		}
	}
	return e, out, true
}

// isBGP reports whether a protocol list key names a BGP instance, however
// the router spells it: identifier "BGP" with any module prefix, or no
// identifier and a name such as "bgp".
func isBGP(keys map[string]string) bool {
	if id, ok := keys["identifier"]; ok && id != "*" {
		return stripPrefix(id) == "BGP"
	}
	return strings.EqualFold(keys["name"], "bgp")
}

// listEnumKeys returns which keys of a list are enumerations or identities,
// looking through OpenConfig's leafref keys to the config or state leaf.
func (t *Translator) listEnumKeys(list *yang.Entry) map[string]bool {
	if m, ok := t.enumKeys.Load(list); ok {
		return m.(map[string]bool)
	}
	m := map[string]bool{}
	for _, k := range strings.Fields(list.Key) {
		for _, leaf := range []*yang.Entry{list.Dir[k], dirOf(list.Dir["config"], k), dirOf(list.Dir["state"], k)} {
			if leaf == nil || leaf.Type == nil {
				continue
			}
			if kind := leaf.Type.Kind; kind == yang.Yenum || kind == yang.Yidentityref {
				m[k] = true
			}
		}
	}
	t.enumKeys.Store(list, m)
	return m
}

func dirOf(e *yang.Entry, name string) *yang.Entry {
	if e == nil {
		return nil
	}
	return e.Dir[name]
}

// nativePath maps a vendor-native path through the tables.
func (t *Translator) nativePath(c *ctx, elems []*gpb.PathElem, v *gpb.TypedValue) {
	names := label(elems)
	if v == nil {
		for _, tb := range t.tables {
			if _, p, ok := tb.lookup(elems, names[1:]); ok {
				c.emit(p.GetElem(), nil)
				return
			}
		}
		c.res.Unknown = append(c.res.Unknown, names)
		return
	}
	raw, isJSON := jsonBytes(v)
	if !isJSON {
		t.nativeLeaf(c, elems, names, v)
		return
	}
	jv, err := decodeJSON(raw)
	if err != nil {
		c.res.invalid(fmt.Errorf("%s: %w", pathString(elems), err))
		return
	}
	t.nativeExplode(c, elems, jv)
}

func (t *Translator) nativeLeaf(c *ctx, elems []*gpb.PathElem, names string, v *gpb.TypedValue) {
	for _, tb := range t.tables {
		r, p, ok := tb.lookup(elems, names[1:])
		if !ok || r.leaf == nil {
			continue
		}
		tv, err := r.transformValue(v)
		if err == nil {
			tv, err = coerce(r.leaf, tv)
		}
		if err != nil {
			c.res.invalid(fmt.Errorf("%s: %w", pathString(elems), err))
			return
		}
		c.emit(p.GetElem(), tv)
		return
	}
	c.res.Unknown = append(c.res.Unknown, names)
}

// nativeExplode walks a native JSON value without a schema, using the
// tables' list keys, and maps every leaf it finds.
func (t *Translator) nativeExplode(c *ctx, path []*gpb.PathElem, jv any) {
	switch x := jv.(type) {
	case map[string]any:
		for name, v := range x {
			n := stripPrefix(name)
			if arr, ok := v.([]any); ok && len(arr) > 0 {
				if _, isObj := arr[0].(map[string]any); isObj {
					t.nativeList(c, path, n, arr)
					continue
				}
			}
			t.nativeExplode(c, appendElem(path, &gpb.PathElem{Name: n}), v)
		}
	case []any:
		// A whole native list at the path's end.
		if len(path) > 0 && len(path[len(path)-1].GetKey()) == 0 {
			if len(x) > 0 {
				if _, isObj := x[0].(map[string]any); isObj {
					t.nativeList(c, path[:len(path)-1], path[len(path)-1].GetName(), x)
					return
				}
			}
		}
		t.nativeScalar(c, path, jv)
	default:
		t.nativeScalar(c, path, jv)
	}
}

func (t *Translator) nativeScalar(c *ctx, path []*gpb.PathElem, jv any) {
	tv, err := jsonScalar(jv)
	if err != nil {
		c.res.invalid(fmt.Errorf("%s: %w", pathString(path), err))
		return
	}
	t.nativeLeaf(c, path, label(path), tv)
}

func (t *Translator) nativeList(c *ctx, path []*gpb.PathElem, name string, arr []any) {
	var keyNames []string
	for _, tb := range t.tables {
		if k, ok := tb.ListKeys(name); ok {
			keyNames = k
			break
		}
	}
	if keyNames == nil {
		c.res.Unknown = append(c.res.Unknown, label(path)+"/"+name)
		return
	}
	for _, item := range arr {
		obj, ok := item.(map[string]any)
		if !ok {
			c.res.invalid(fmt.Errorf("%s/%s: list entry is not an object", pathString(path), name))
			continue
		}
		keys := make(map[string]string, len(keyNames))
		rest := make(map[string]any, len(obj))
		for k, v := range obj {
			rest[stripPrefix(k)] = v
		}
		for _, k := range keyNames {
			v, ok := rest[k]
			if !ok {
				c.res.invalid(fmt.Errorf("%s/%s: list entry without key %q", pathString(path), name, k))
				keys = nil
				break
			}
			keys[k] = fmt.Sprint(v)
			delete(rest, k)
		}
		if keys == nil {
			continue
		}
		t.nativeExplode(c, appendElem(path, &gpb.PathElem{Name: name, Key: keys}), rest)
	}
}

// jsonBytes returns the JSON of a JSON or JSON_IETF value.
func jsonBytes(v *gpb.TypedValue) ([]byte, bool) {
	switch x := v.GetValue().(type) {
	case *gpb.TypedValue_JsonIetfVal:
		return x.JsonIetfVal, true
	case *gpb.TypedValue_JsonVal:
		return x.JsonVal, true
	}
	return nil, false
}

var errJSON = errors.New("bad JSON value")

func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %w", errJSON, err)
	}
	return v, nil
}

// label is a path's element names without keys: a bounded metric label.
func label(elems []*gpb.PathElem) string {
	var b strings.Builder
	for _, e := range elems {
		b.WriteByte('/')
		b.WriteString(e.GetName())
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

func pathString(elems []*gpb.PathElem) string {
	return change.PathKey(&gpb.Path{Elem: elems})
}
