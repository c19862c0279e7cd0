package merge

import (
	"math"
	"reflect"
	"sync"

	"github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ygot/ygot"
)

// A leaf already in the tree is updated by setting its Go field directly
// when its type is a plain scalar or enumeration; ytypes.SetNode walks the
// struct's tags and schema for every call, which costs about ten times
// more. Anything else (unions, leaf-lists, values that do not convert
// exactly) falls back to SetNode, which also reports the error.

// setter sets one leaf field from a typed value; ok is false when the
// value needs the general path.
type setter func(*gnmi.TypedValue) (ok bool)

// fieldSetter finds the field of parent whose path tag is rel (the leaf's
// path relative to parent, such as "state/peer-as") and returns a setter
// for it, or nil.
func fieldSetter(parent ygot.GoStruct, rel string) setter {
	v := reflect.ValueOf(parent)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	sv := v.Elem()
	st := sv.Type()
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		if !tagHas(f.Tag.Get("path"), rel) {
			continue
		}
		return scalarSetter(sv.Field(i))
	}
	return nil
}

// tagHas reports whether a ygot path tag ("state/peer-as|peer-as") has
// rel as one of its alternatives.
func tagHas(tag, rel string) bool {
	for len(tag) > 0 {
		alt := tag
		if i := indexByte(tag, '|'); i >= 0 {
			alt, tag = tag[:i], tag[i+1:]
		} else {
			tag = ""
		}
		if alt == rel {
			return true
		}
	}
	return false
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func scalarSetter(f reflect.Value) setter {
	t := f.Type()
	if t.Kind() == reflect.Int64 {
		if _, ok := f.Interface().(ygot.GoEnum); ok {
			names := enumValues(t)
			if names == nil {
				return nil
			}
			return func(tv *gnmi.TypedValue) bool {
				s, ok := tv.GetValue().(*gnmi.TypedValue_StringVal)
				if !ok {
					return false
				}
				n, ok := names[s.StringVal]
				if !ok {
					return false
				}
				f.SetInt(n)
				return true
			}
		}
		return nil
	}
	if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String {
		// A leaf-list of strings.
		return func(tv *gnmi.TypedValue) bool {
			ll, ok := tv.GetValue().(*gnmi.TypedValue_LeaflistVal)
			if !ok {
				return false
			}
			out := reflect.MakeSlice(t, len(ll.LeaflistVal.GetElement()), len(ll.LeaflistVal.GetElement()))
			for i, e := range ll.LeaflistVal.GetElement() {
				sv, ok := e.GetValue().(*gnmi.TypedValue_StringVal)
				if !ok {
					return false
				}
				out.Index(i).SetString(sv.StringVal)
			}
			f.Set(out)
			return true
		}
	}
	if t.Kind() != reflect.Pointer {
		return nil
	}
	et := t.Elem()
	bits := et.Bits
	switch et.Kind() {
	case reflect.String:
		return func(tv *gnmi.TypedValue) bool {
			s, ok := tv.GetValue().(*gnmi.TypedValue_StringVal)
			if !ok {
				return false
			}
			p := reflect.New(et)
			p.Elem().SetString(s.StringVal)
			f.Set(p)
			return true
		}
	case reflect.Bool:
		return func(tv *gnmi.TypedValue) bool {
			b, ok := tv.GetValue().(*gnmi.TypedValue_BoolVal)
			if !ok {
				return false
			}
			p := reflect.New(et)
			p.Elem().SetBool(b.BoolVal)
			f.Set(p)
			return true
		}
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		max := uint64(math.MaxUint64) >> (64 - bits())
		return func(tv *gnmi.TypedValue) bool {
			u, ok := tv.GetValue().(*gnmi.TypedValue_UintVal)
			if !ok || u.UintVal > max {
				return false
			}
			p := reflect.New(et)
			p.Elem().SetUint(u.UintVal)
			f.Set(p)
			return true
		}
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		lim := int64(1) << (bits() - 1)
		return func(tv *gnmi.TypedValue) bool {
			i, ok := tv.GetValue().(*gnmi.TypedValue_IntVal)
			if !ok || i.IntVal >= lim || i.IntVal < -lim {
				return false
			}
			p := reflect.New(et)
			p.Elem().SetInt(i.IntVal)
			f.Set(p)
			return true
		}
	}
	// float64 leaves are decimal64 in YANG: leave their conversion and
	// precision checks to ygot.
	return nil
}

var enumCache sync.Map // reflect.Type -> map[string]int64

// enumValues maps an enumeration type's YANG names to its values.
func enumValues(t reflect.Type) map[string]int64 {
	if m, ok := enumCache.Load(t); ok {
		return m.(map[string]int64)
	}
	e, ok := reflect.Zero(t).Interface().(ygot.GoEnum)
	if !ok {
		return nil
	}
	defs, ok := e.ΛMap()[t.Name()]
	if !ok {
		return nil
	}
	m := make(map[string]int64, len(defs))
	for v, d := range defs {
		m[d.Name] = v
	}
	enumCache.Store(t, m)
	return m
}
