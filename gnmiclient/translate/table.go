package translate

import (
	_ "embed"
	"fmt"
	"strings"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/goyang/pkg/yang"
	"gopkg.in/yaml.v3"

	"github.com/meshd/meshd/change"
)

//go:embed srlinux.yaml
var srlinuxTable []byte

// TableFile is the YAML form of a mapping table from a vendor's native
// paths to OpenConfig paths (see srlinux.yaml for the format).
type TableFile struct {
	Bases map[string]TableBase `yaml:"bases"`
	Rules []TableRule          `yaml:"rules"`
}

// TableBase is a pair of list-entry paths the rules are relative to.
type TableBase struct {
	Native     string            `yaml:"native"`
	OpenConfig string            `yaml:"openconfig"`
	Keys       map[string]string `yaml:"keys"` // $var -> transform
}

// TableRule maps one native leaf onto one OpenConfig leaf.
type TableRule struct {
	Base       string `yaml:"base"`
	Native     string `yaml:"native"`
	OpenConfig string `yaml:"openconfig"`
	Transform  string `yaml:"transform"`
}

// Table is a compiled mapping table.
type Table struct {
	byNames map[string][]*rule // native element names joined by "/"
	// listKeys gives the key names of the native lists the table knows,
	// by list name, for exploding native JSON containers without a schema.
	listKeys map[string][]string
}

type patElem struct {
	name string
	keys []patKey
}

type patKey struct {
	name string
	val  string // literal, or the variable name when isVar
	vari bool
}

type rule struct {
	native    []patElem
	oc        []patElem
	keyXform  map[string]string
	transform string
	leaf      *yang.Entry // the OpenConfig leaf; nil for a subtree (base) rule
}

// SRLinux returns the built-in table for SR Linux's native BGP paths.
func SRLinux(ocRoot *yang.Entry) (*Table, error) {
	return ParseTable(srlinuxTable, ocRoot)
}

// ParseTable compiles a YAML mapping table, checking every OpenConfig path
// it names against the OpenConfig schema rooted at ocRoot.
func ParseTable(data []byte, ocRoot *yang.Entry) (*Table, error) {
	var f TableFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("mapping table: %w", err)
	}
	t := &Table{byNames: map[string][]*rule{}, listKeys: map[string][]string{}}
	bases := map[string]*rule{}
	for name, b := range f.Bases {
		r, err := compileRule(b.Native, b.OpenConfig, "", b.Keys)
		if err != nil {
			return nil, fmt.Errorf("mapping table: base %s: %w", name, err)
		}
		if e := walkNames(ocRoot, r.oc); e == nil || !e.IsList() {
			return nil, fmt.Errorf("mapping table: base %s: %s is not an OpenConfig list entry", name, b.OpenConfig)
		}
		bases[name] = r
		t.add(r)
	}
	for i, rr := range f.Rules {
		b := bases[rr.Base]
		if b == nil {
			return nil, fmt.Errorf("mapping table: rule %d (%s): unknown base %q", i, rr.Native, rr.Base)
		}
		r, err := compileRule(rr.Native, rr.OpenConfig, rr.Transform, nil)
		if err != nil {
			return nil, fmt.Errorf("mapping table: rule %d (%s): %w", i, rr.Native, err)
		}
		r.native = append(append([]patElem(nil), b.native...), r.native...)
		r.oc = append(append([]patElem(nil), b.oc...), r.oc...)
		r.keyXform = b.keyXform
		r.leaf = walkNames(ocRoot, r.oc)
		if r.leaf == nil || !r.leaf.IsLeaf() && !r.leaf.IsLeafList() {
			return nil, fmt.Errorf("mapping table: rule %d: %s is not an OpenConfig leaf", i, rr.OpenConfig)
		}
		switch r.transform {
		case "", "enum", "date-and-time":
		default:
			return nil, fmt.Errorf("mapping table: rule %d: unknown transform %q", i, r.transform)
		}
		t.add(r)
	}
	return t, nil
}

func (t *Table) add(r *rule) {
	names := make([]string, len(r.native))
	for i, e := range r.native {
		names[i] = e.name
		if len(e.keys) > 0 {
			ks := make([]string, len(e.keys))
			for j, k := range e.keys {
				ks[j] = k.name
			}
			t.listKeys[e.name] = ks
		}
	}
	k := strings.Join(names, "/")
	t.byNames[k] = append(t.byNames[k], r)
}

func compileRule(native, oc, transform string, keys map[string]string) (*rule, error) {
	n, err := parsePattern(native)
	if err != nil {
		return nil, fmt.Errorf("native: %w", err)
	}
	o, err := parsePattern(oc)
	if err != nil {
		return nil, fmt.Errorf("openconfig: %w", err)
	}
	xf := map[string]string{}
	for k, v := range keys {
		if v != "enum" {
			return nil, fmt.Errorf("key %s: unknown transform %q", k, v)
		}
		xf[k] = v
	}
	return &rule{native: n, oc: o, transform: transform, keyXform: xf}, nil
}

func parsePattern(s string) ([]patElem, error) {
	p, err := change.ParsePath(strings.TrimPrefix(s, "/"))
	if err != nil {
		return nil, err
	}
	out := make([]patElem, len(p.GetElem()))
	for i, e := range p.GetElem() {
		out[i].name = e.GetName()
		for k, v := range e.GetKey() {
			pk := patKey{name: k, val: v}
			if strings.HasPrefix(v, "$") {
				pk.val, pk.vari = v[1:], true
			}
			out[i].keys = append(out[i].keys, pk)
		}
	}
	return out, nil
}

func walkNames(root *yang.Entry, elems []patElem) *yang.Entry {
	e := root
	for _, pe := range elems {
		if e = e.Dir[pe.name]; e == nil {
			return nil
		}
	}
	return e
}

// ListKeys returns the key names of a native list the table knows.
func (t *Table) ListKeys(list string) ([]string, bool) {
	k, ok := t.listKeys[list]
	return k, ok
}

// lookup finds the rule for a native path (elements already stripped of
// module prefixes) and returns the OpenConfig path it maps to.
func (t *Table) lookup(elems []*gpb.PathElem, names string) (*rule, *gpb.Path, bool) {
	for _, r := range t.byNames[names] {
		if p, ok := r.apply(elems); ok {
			return r, p, true
		}
	}
	return nil, nil, false
}

func (r *rule) apply(elems []*gpb.PathElem) (*gpb.Path, bool) {
	var vars [4]struct{ k, v string }
	nv := 0
	for i, pe := range r.native {
		for _, k := range pe.keys {
			v, ok := elems[i].GetKey()[k.name]
			if !ok {
				return nil, false
			}
			if !k.vari {
				if v != k.val {
					return nil, false
				}
				continue
			}
			if r.keyXform[k.val] == "enum" {
				v = enumName(v)
			}
			if nv < len(vars) {
				vars[nv].k, vars[nv].v = k.val, v
				nv++
			}
		}
	}
	out := &gpb.Path{Elem: make([]*gpb.PathElem, len(r.oc))}
	for i, pe := range r.oc {
		e := &gpb.PathElem{Name: pe.name}
		if len(pe.keys) > 0 {
			e.Key = make(map[string]string, len(pe.keys))
			for _, k := range pe.keys {
				v := k.val
				if k.vari {
					v = ""
					for j := 0; j < nv; j++ {
						if vars[j].k == k.val {
							v = vars[j].v
						}
					}
					if v == "" {
						return nil, false
					}
				}
				e.Key[k.name] = v
			}
		}
		out.Elem[i] = e
	}
	return out, true
}

// transformValue applies a rule's value transform.
func (r *rule) transformValue(v *gpb.TypedValue) (*gpb.TypedValue, error) {
	switch r.transform {
	case "enum":
		if s, ok := v.GetValue().(*gpb.TypedValue_StringVal); ok {
			return change.String(enumName(s.StringVal)), nil
		}
		return nil, fmt.Errorf("enum transform: want a string, got %T", v.GetValue())
	case "date-and-time":
		switch x := v.GetValue().(type) {
		case *gpb.TypedValue_StringVal:
			ts, err := time.Parse(time.RFC3339Nano, x.StringVal)
			if err != nil {
				return nil, fmt.Errorf("date-and-time transform: %w", err)
			}
			return change.Uint(uint64(ts.UnixNano())), nil
		case *gpb.TypedValue_UintVal, *gpb.TypedValue_IntVal:
			return v, nil
		}
		return nil, fmt.Errorf("date-and-time transform: want a string, got %T", v.GetValue())
	}
	return v, nil
}

// enumName turns a native enum or identity name into OpenConfig's spelling.
func enumName(s string) string {
	s = stripPrefix(s)
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case c == '-':
			b[i] = '_'
		}
	}
	return string(b)
}

func stripPrefix(s string) string {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		return s[i+1:]
	}
	return s
}
