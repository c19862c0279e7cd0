package gnmitarget

import (
	"reflect"
	"strings"

	"github.com/openconfig/goyang/pkg/yang"
	"github.com/openconfig/ygot/ygot"
)

// identities maps a leaf's schema path (no keys, no module prefixes) to
// the defining module of every identity its value may name. Enumerations
// have no defining module in ΛMap and are left out: RFC 7951 §6.4 writes
// them bare.
type identities struct {
	byPath map[string][]string          // schema path → enum type names
	byType map[string]map[string]string // enum type name → identity → module
}

// WithIdentityModules gives, for schema paths keyed as in WithEnumTypes'
// maps, the defining module of each identity the leaf there may name: what
// WithEnumTypes reads from generated enum types, for a schema built without
// them (the probe agent's hand-built OpenConfig subset, probe/ocschema).
func WithIdentityModules(byPath map[string]map[string]string) Option {
	return func(o *options) { o.identityModules = append(o.identityModules, byPath) }
}

func newIdentities(maps []map[string][]reflect.Type, modMaps []map[string]map[string]string) identities {
	id := identities{byPath: map[string][]string{}, byType: map[string]map[string]string{}}
	for _, m := range maps {
		for path, types := range m {
			for _, t := range types {
				e, ok := reflect.Zero(t).Interface().(ygot.GoEnum)
				if !ok {
					continue
				}
				name := t.Name()
				if _, done := id.byType[name]; !done {
					mods := map[string]string{}
					for _, d := range e.ΛMap()[name] {
						if d.DefiningModule != "" {
							mods[d.Name] = d.DefiningModule
						}
					}
					id.byType[name] = mods
				}
				if len(id.byType[name]) > 0 {
					id.byPath[path] = append(id.byPath[path], name)
				}
			}
		}
	}
	for _, m := range modMaps {
		for path, mods := range m {
			if len(mods) == 0 {
				continue
			}
			// Keyed apart from the enum type names, which are Go
			// identifiers and so hold no '/'.
			name := "identities:" + path
			id.byType[name] = mods
			id.byPath[path] = append(id.byPath[path], name)
		}
	}
	return id
}

// identityModules returns, for a leaf's schema entry, identity name →
// defining module; nil when the leaf holds no identityref. A leafref (the
// key leaf of an OpenConfig list points at config/ or state/) is followed
// to the leaf it refers to.
func (s *Server) identityModules(e *yang.Entry) map[string]string {
	if e == nil || len(s.idents.byPath) == 0 {
		return nil
	}
	if v, ok := s.identCache.Load(e); ok {
		return v.(map[string]string)
	}
	target := e
	for i := 0; i < 4 && target != nil && target.Type != nil && target.Type.Kind == yang.Yleafref; i++ {
		target = followLeafref(target, target.Type.Path)
	}
	var mods map[string]string
	if target != nil {
		names := s.idents.byPath[schemaPath(target)]
		switch len(names) {
		case 0:
		case 1:
			mods = s.idents.byType[names[0]]
		default: // a union of identityrefs
			mods = map[string]string{}
			for _, n := range names {
				for k, v := range s.idents.byType[n] {
					mods[k] = v
				}
			}
		}
	}
	s.identCache.Store(e, mods)
	return mods
}

// qualify writes an identityref value as RFC 7951 §6.8 wants it,
// "module:NAME"; other values, and values already qualified, are returned
// as they are.
func (s *Server) qualify(v string, e *yang.Entry) string {
	if strings.IndexByte(v, ':') >= 0 {
		return v
	}
	if m := s.identityModules(e)[v]; m != "" {
		return m + ":" + v
	}
	return v
}

// followLeafref resolves a relative leafref path ("../config/name") from
// the leaf e; nil when it cannot (absolute paths are not needed by the
// OpenConfig list keys this is for).
func followLeafref(e *yang.Entry, path string) *yang.Entry {
	if path == "" || path[0] == '/' {
		return nil
	}
	for _, part := range strings.Split(path, "/") {
		switch {
		case e == nil:
			return nil
		case part == "..":
			e = e.Parent
			for e != nil && (e.IsChoice() || e.IsCase()) {
				e = e.Parent
			}
		case part == "." || part == "":
		default:
			e = childEntry(e, stripModule(part))
		}
	}
	return e
}

// schemaPath is the path ΛEnumTypes is keyed by: data node names from below
// the root, without choice and case nodes.
func schemaPath(e *yang.Entry) string {
	var names []string
	for ; e != nil && e.Parent != nil; e = e.Parent {
		if e.IsChoice() || e.IsCase() {
			continue
		}
		names = append(names, e.Name)
	}
	var b strings.Builder
	for i := len(names) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(names[i])
	}
	return b.String()
}
