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

// setter sets one leaf field from a typed value. It is the field itself,
// not a closure over it: a leaf holds one, and a closure cost ~50 bytes a
// leaf more. The zero setter sets nothing.
type setter struct{ f reflect.Value }

// set sets the field; ok is false when the value needs the general path
// (or the setter is the zero one).
func (s setter) set(tv *gnmi.TypedValue) (ok bool) {
	f := s.f
	switch f.Kind() {
	case reflect.Int64: // an enumeration
		sv, ok := tv.GetValue().(*gnmi.TypedValue_StringVal)
		if !ok {
			return false
		}
		n, ok := enumValues(f.Type())[sv.StringVal]
		if !ok {
			return false
		}
		f.SetInt(n)
		return true
	case reflect.Slice: // a leaf-list of strings
		ll, ok := tv.GetValue().(*gnmi.TypedValue_LeaflistVal)
		if !ok {
			return false
		}
		els := ll.LeaflistVal.GetElement()
		out := reflect.MakeSlice(f.Type(), len(els), len(els))
		for i, e := range els {
			sv, ok := e.GetValue().(*gnmi.TypedValue_StringVal)
			if !ok {
				return false
			}
			out.Index(i).SetString(sv.StringVal)
		}
		f.Set(out)
		return true
	case reflect.Pointer:
	default:
		return false
	}
	et := f.Type().Elem()
	// elem is the pointed-to value, allocated the first time: called
	// only once the value is known to fit.
	elem := func() reflect.Value {
		if f.IsNil() {
			f.Set(reflect.New(et))
		}
		return f.Elem()
	}
	switch et.Kind() {
	case reflect.String:
		sv, ok := tv.GetValue().(*gnmi.TypedValue_StringVal)
		if !ok {
			return false
		}
		elem().SetString(sv.StringVal)
	case reflect.Bool:
		bv, ok := tv.GetValue().(*gnmi.TypedValue_BoolVal)
		if !ok {
			return false
		}
		elem().SetBool(bv.BoolVal)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		uv, ok := tv.GetValue().(*gnmi.TypedValue_UintVal)
		if !ok || uv.UintVal > uint64(math.MaxUint64)>>(64-et.Bits()) {
			return false
		}
		// In place: a counter's every move makes no garbage.
		elem().SetUint(uv.UintVal)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		iv, ok := tv.GetValue().(*gnmi.TypedValue_IntVal)
		lim := int64(1) << (et.Bits() - 1)
		if !ok || iv.IntVal >= lim || iv.IntVal < -lim {
			return false
		}
		elem().SetInt(iv.IntVal)
	default:
		// float64 leaves are decimal64 in YANG: leave their conversion
		// and precision checks to ygot.
		return false
	}
	return true
}

// fieldSetter finds the field of parent whose path tag is rel (the leaf's
// path relative to parent, such as "state/peer-as") and returns a setter
// for it, or nil.
func fieldSetter(parent ygot.GoStruct, rel string) setter {
	v := reflect.ValueOf(parent)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return setter{}
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
	return setter{}
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

// scalarSetter returns a setter for a field whose type set handles, or
// the zero setter.
func scalarSetter(f reflect.Value) setter {
	t := f.Type()
	switch {
	case t.Kind() == reflect.Int64:
		if _, ok := f.Interface().(ygot.GoEnum); ok && enumValues(t) != nil {
			return setter{f}
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return setter{f}
	case t.Kind() == reflect.Pointer:
		switch t.Elem().Kind() {
		case reflect.String, reflect.Bool, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
			reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return setter{f}
		}
	}
	return setter{}
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
