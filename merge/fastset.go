package merge

import (
	"math"
	"reflect"
	"sync"
	"unsafe"

	"github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ygot/ygot"
)

// A leaf already in the tree is updated by setting its Go field directly
// when its type is a plain scalar or enumeration; ytypes.SetNode walks the
// struct's tags and schema for every call, which costs about ten times
// more. Anything else (unions, decimals, values that do not convert
// exactly) falls back to SetNode, which also reports the error.

// setter sets one leaf field from a typed value: the field's address and
// what kind of field it is. A leaf holds one, so it is kept to 11 bytes:
// a reflect.Value is 24 and a closure over it ~50 more. The address is an
// interior pointer into the generated struct, which keeps the struct
// alive as a reflect.Value would. The zero setter sets nothing.
type setter struct {
	p    unsafe.Pointer
	enum uint16 // an enumeration's index in enumTable
	k    fieldKind
}

type fieldKind uint8

const (
	fieldNone    fieldKind = iota
	fieldEnum              // int64, a ygot enumeration
	fieldStrings           // []string, a leaf-list of strings
	fieldString            // *string
	fieldBool              // *bool
	fieldUint8             // *uint8; the other widths follow in order
	fieldUint16
	fieldUint32
	fieldUint64
	fieldInt8 // *int8; the other widths follow in order
	fieldInt16
	fieldInt32
	fieldInt64
)

// set sets the field; ok is false when the value needs the general path
// (or the setter is the zero one). The field's Go type was checked when
// the setter was made (scalarSetter), so it is written through a pointer
// of that shape: a named type (type X uint32) has its base type's layout.
func (s setter) set(tv *gnmi.TypedValue) (ok bool) {
	switch k := s.k; k {
	case fieldNone:
		return false
	case fieldEnum:
		sv, ok := tv.GetValue().(*gnmi.TypedValue_StringVal)
		if !ok {
			return false
		}
		n, ok := enumTable.values(s.enum)[sv.StringVal]
		if !ok {
			return false
		}
		*(*int64)(s.p) = n
	case fieldStrings:
		ll, ok := tv.GetValue().(*gnmi.TypedValue_LeaflistVal)
		if !ok {
			return false
		}
		els := ll.LeaflistVal.GetElement()
		out := make([]string, len(els))
		for i, e := range els {
			sv, ok := e.GetValue().(*gnmi.TypedValue_StringVal)
			if !ok {
				return false
			}
			out[i] = sv.StringVal
		}
		*(*[]string)(s.p) = out
	case fieldString:
		sv, ok := tv.GetValue().(*gnmi.TypedValue_StringVal)
		if !ok {
			return false
		}
		put((**string)(s.p), sv.StringVal)
	case fieldBool:
		bv, ok := tv.GetValue().(*gnmi.TypedValue_BoolVal)
		if !ok {
			return false
		}
		put((**bool)(s.p), bv.BoolVal)
	case fieldUint8, fieldUint16, fieldUint32, fieldUint64:
		uv, ok := tv.GetValue().(*gnmi.TypedValue_UintVal)
		bits := 8 << (k - fieldUint8)
		if !ok || uv.UintVal > uint64(math.MaxUint64)>>(64-bits) {
			return false
		}
		// In place: a counter's every move makes no garbage.
		switch u := uv.UintVal; k {
		case fieldUint8:
			put((**uint8)(s.p), uint8(u))
		case fieldUint16:
			put((**uint16)(s.p), uint16(u))
		case fieldUint32:
			put((**uint32)(s.p), uint32(u))
		default:
			put((**uint64)(s.p), u)
		}
	case fieldInt8, fieldInt16, fieldInt32, fieldInt64:
		iv, ok := tv.GetValue().(*gnmi.TypedValue_IntVal)
		lim := int64(1) << (8<<(k-fieldInt8) - 1)
		if !ok || (k != fieldInt64 && (iv.IntVal >= lim || iv.IntVal < -lim)) {
			return false
		}
		switch n := iv.IntVal; k {
		case fieldInt8:
			put((**int8)(s.p), int8(n))
		case fieldInt16:
			put((**int16)(s.p), int16(n))
		case fieldInt32:
			put((**int32)(s.p), int32(n))
		default:
			put((**int64)(s.p), n)
		}
	default:
		return false
	}
	return true
}

// put stores v in the value a pointer field points to, allocating it the
// first time.
func put[T any](pp **T, v T) {
	if *pp == nil {
		*pp = new(T)
	}
	**pp = v
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
// the zero setter. f must be addressable (a field of a struct reached
// through its pointer).
func scalarSetter(f reflect.Value) setter {
	if !f.CanAddr() {
		return setter{}
	}
	t, p := f.Type(), f.Addr().UnsafePointer()
	switch {
	case t.Kind() == reflect.Int64:
		if _, ok := f.Interface().(ygot.GoEnum); ok {
			if i, ok := enumTable.index(t); ok {
				return setter{p: p, enum: i, k: fieldEnum}
			}
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return setter{p: p, k: fieldStrings}
	case t.Kind() == reflect.Pointer:
		if k, ok := pointerKinds[t.Elem().Kind()]; ok {
			return setter{p: p, k: k}
		}
	}
	return setter{}
}

var pointerKinds = map[reflect.Kind]fieldKind{
	reflect.String: fieldString, reflect.Bool: fieldBool,
	reflect.Uint8: fieldUint8, reflect.Uint16: fieldUint16, reflect.Uint32: fieldUint32, reflect.Uint64: fieldUint64,
	reflect.Int8: fieldInt8, reflect.Int16: fieldInt16, reflect.Int32: fieldInt32, reflect.Int64: fieldInt64,
}

// enumTable numbers the enumeration types setters have met, so a setter
// holds a 2-byte index instead of a type. Entries are written once,
// under mu, before their index is handed out, and never change: readers
// take no lock. The OpenConfig and meshd models have a few hundred
// enumerations; a type past the table's end gets no setter and goes the
// general way.
var enumTable enums

type enums struct {
	mu     sync.Mutex
	byType map[reflect.Type]uint16
	vals   [4096]map[string]int64 // YANG name -> value, by index
	n      int
}

// index returns the enumeration type's index, adding it if need be.
func (e *enums) index(t reflect.Type) (uint16, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if i, ok := e.byType[t]; ok {
		return i, true
	}
	m := enumValues(t)
	if m == nil || e.n == len(e.vals) {
		return 0, false
	}
	if e.byType == nil {
		e.byType = map[reflect.Type]uint16{}
	}
	i := uint16(e.n)
	e.vals[i], e.byType[t] = m, i
	e.n++
	return i, true
}

// values returns the names and values of the enumeration at index i.
func (e *enums) values(i uint16) map[string]int64 { return e.vals[i] }

// enumNames maps an enumeration type's YANG names to its values, from
// the table when it has room for the type.
func enumNames(t reflect.Type) map[string]int64 {
	if i, ok := enumTable.index(t); ok {
		return enumTable.values(i)
	}
	return enumValues(t)
}

// enumValues maps an enumeration type's YANG names to its values.
func enumValues(t reflect.Type) map[string]int64 {
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
	return m
}
