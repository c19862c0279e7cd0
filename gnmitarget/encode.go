package gnmitarget

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/goyang/pkg/yang"
)

// encodeLeaf returns a leaf's value in the requested encoding.
func (s *Server) encodeLeaf(p *gpb.Path, v *gpb.TypedValue, enc gpb.Encoding) (*gpb.TypedValue, error) {
	switch enc {
	case gpb.Encoding_PROTO:
		return v, nil
	case gpb.Encoding_JSON:
		b, err := marshalJSON(s.scalar(v, nil, false))
		if err != nil {
			return nil, err
		}
		return &gpb.TypedValue{Value: &gpb.TypedValue_JsonVal{JsonVal: b}}, nil
	case gpb.Encoding_JSON_IETF:
		b, err := marshalJSON(s.scalar(v, s.entryFor(p.GetElem()), true))
		if err != nil {
			return nil, err
		}
		return &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: b}}, nil
	}
	return nil, fmt.Errorf("encoding %v not supported", enc)
}

func marshalJSON(v any) ([]byte, error) { return json.Marshal(v) }

// entryFor finds the schema entry of a data path in the schemas given with
// WithSchema; nil when there is none. The target's root is every
// schema's root at once: its members come from all of them.
func (s *Server) entryFor(elems []*gpb.PathElem) *yang.Entry {
	if len(s.o.schemas) == 0 {
		return nil
	}
	if len(elems) == 0 {
		return s.root
	}
	for _, root := range s.o.schemas {
		e := root
		for _, el := range elems {
			if e = childEntry(e, el.GetName()); e == nil {
				break
			}
		}
		if e != nil {
			return e
		}
	}
	return nil
}

// joinRoots is one root entry whose children are those of every root.
func joinRoots(roots []*yang.Entry) *yang.Entry {
	if len(roots) == 1 {
		return roots[0]
	}
	j := &yang.Entry{Kind: yang.DirectoryEntry, Dir: map[string]*yang.Entry{}}
	for _, r := range roots {
		for n, c := range r.Dir {
			if j.Dir[n] == nil {
				j.Dir[n] = c
			}
		}
	}
	return j
}

// childEntry finds a data child by name, looking through choice and case
// nodes, which have no data node of their own.
func childEntry(e *yang.Entry, name string) *yang.Entry {
	if e == nil {
		return nil
	}
	if c := e.Dir[name]; c != nil && !c.IsChoice() && !c.IsCase() {
		return c
	}
	for _, c := range e.Dir {
		if c.IsChoice() || c.IsCase() {
			if f := childEntry(c, name); f != nil {
				return f
			}
		}
	}
	return nil
}

// moduleOf returns the module that defines a schema node, from the schema
// path ygot annotates entries with ("/module/top/..."), or its YANG
// statement's module. ygot annotates containers and lists, not every
// leaf: a leaf without either is its parent's module (a leaf augmented
// into a container from another module has its own annotation).
func moduleOf(e *yang.Entry) string {
	for ; e != nil; e = e.Parent {
		if sp, ok := e.Annotation["schemapath"].(string); ok {
			sp = strings.TrimPrefix(sp, "/")
			if i := strings.IndexByte(sp, '/'); i > 0 {
				return sp[:i]
			}
		}
		if e.Node != nil {
			if m := yang.RootNode(e.Node); m != nil {
				return m.Name
			}
		}
	}
	return ""
}

// renderer turns a subtree of leaves into a JSON value.
type renderer struct {
	s      *Server
	ietf   bool
	keep   func(*leafVal) bool
	latest int64
}

// render renders n, whose schema entry is e; top is set for the node a
// Get asked for, whose members RFC 7951 §4 wants qualified with their
// module, as a top-level object's are.
func (r *renderer) render(n *node, e *yang.Entry, top bool) any {
	if n.leaf != nil {
		if r.keep != nil && !r.keep(n.leaf) {
			return nil
		}
		r.latest = max(r.latest, n.leaf.ts)
		return r.s.scalar(n.leaf.v.typed(), e, r.ietf)
	}
	obj := map[string]any{}
	memberOf := func(name string, ce *yang.Entry) string {
		if r.ietf && top {
			if m := moduleOf(ce); m != "" {
				return m + ":" + name
			}
		}
		return name
	}
	for _, name := range n.names() {
		ce := childEntry(e, name)
		member := memberOf(name, ce)
		single, byKey := n.kid(name), n.lists[name]
		if single != nil && len(byKey) == 0 {
			if v := r.render(single, ce, false); v != nil {
				obj[member] = v
			}
			continue
		}
		ks := make([]string, 0, len(byKey)+1)
		for k := range byKey {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		var list []any
		if single != nil {
			ks = append([]string{""}, ks...)
		}
		for _, k := range ks {
			c := n.child(name, k)
			v, ok := r.render(c, ce, false).(map[string]any)
			if !ok {
				continue
			}
			list = append(list, v)
		}
		if len(list) > 0 {
			obj[member] = list
		}
	}
	if len(obj) == 0 {
		return nil
	}
	// A list entry holds its keys as leaves (RFC 7951 §5.4 and gNMI
	// §2.3.1's /a/b[name=b1] example), whether or not the store has them.
	for kn, kv := range n.elem.GetKey() {
		ke := childEntry(e, kn)
		if member := memberOf(kn, ke); obj[member] == nil {
			obj[member] = r.s.keyValue(kv, ke, r.ietf)
		}
	}
	return obj
}

// keyValue types a list key (a string in the path) as its leaf's type.
func (srv *Server) keyValue(s string, e *yang.Entry, ietf bool) any {
	if e == nil || e.Type == nil {
		return s
	}
	if ietf {
		s = srv.qualify(s, e)
	}
	switch e.Type.Kind {
	case yang.Yint8, yang.Yint16, yang.Yint32, yang.Yuint8, yang.Yuint16, yang.Yuint32:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case yang.Yint64, yang.Yuint64:
		if !ietf {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n
			}
		}
	case yang.Ybool:
		if b, err := strconv.ParseBool(s); err == nil {
			return b
		}
	}
	return s
}

// is64 reports whether RFC 7951 wants the leaf's number as a string.
func is64(e *yang.Entry) bool {
	if e == nil || e.Type == nil {
		return false
	}
	switch e.Type.Kind {
	case yang.Yint64, yang.Yuint64, yang.Ydecimal64:
		return true
	}
	return false
}

// scalar returns a typed value as a JSON value. With ietf, 64-bit integers
// (per the schema entry e) and decimal64 values become strings, and
// identityref values are qualified with their module (RFC 7951 §6.1, §6.8).
func (s *Server) scalar(v *gpb.TypedValue, e *yang.Entry, ietf bool) any {
	switch x := v.GetValue().(type) {
	case *gpb.TypedValue_StringVal:
		if ietf {
			return s.qualify(x.StringVal, e)
		}
		return x.StringVal
	case *gpb.TypedValue_AsciiVal:
		return x.AsciiVal
	case *gpb.TypedValue_BoolVal:
		return x.BoolVal
	case *gpb.TypedValue_IntVal:
		if ietf && is64(e) {
			return strconv.FormatInt(x.IntVal, 10)
		}
		return x.IntVal
	case *gpb.TypedValue_UintVal:
		if ietf && is64(e) {
			return strconv.FormatUint(x.UintVal, 10)
		}
		return x.UintVal
	case *gpb.TypedValue_DoubleVal:
		if ietf && is64(e) {
			return strconv.FormatFloat(x.DoubleVal, 'f', -1, 64)
		}
		return x.DoubleVal
	case *gpb.TypedValue_FloatVal: //nolint:staticcheck // old senders still use it
		return float64(x.FloatVal) //nolint:staticcheck
	case *gpb.TypedValue_DecimalVal: //nolint:staticcheck // decimal64 is what the YANG type maps to
		s := formatDecimal(x.DecimalVal.GetDigits(), x.DecimalVal.GetPrecision()) //nolint:staticcheck
		if ietf {
			return s
		}
		return json.Number(s)
	case *gpb.TypedValue_BytesVal:
		return base64.StdEncoding.EncodeToString(x.BytesVal)
	case *gpb.TypedValue_LeaflistVal:
		out := make([]any, 0, len(x.LeaflistVal.GetElement()))
		for _, el := range x.LeaflistVal.GetElement() {
			out = append(out, s.scalar(el, e, ietf))
		}
		return out
	case *gpb.TypedValue_JsonVal:
		return json.RawMessage(x.JsonVal)
	case *gpb.TypedValue_JsonIetfVal:
		return json.RawMessage(x.JsonIetfVal)
	}
	return nil
}

func formatDecimal(digits int64, prec uint32) string {
	neg := digits < 0
	u := uint64(digits)
	if neg {
		u = uint64(-digits)
	}
	s := strconv.FormatUint(u, 10)
	if prec > 0 {
		for uint32(len(s)) <= prec {
			s = "0" + s
		}
		s = s[:len(s)-int(prec)] + "." + s[len(s)-int(prec):]
	}
	if neg {
		s = "-" + s
	}
	return s
}
