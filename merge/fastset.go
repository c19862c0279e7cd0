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

// typed returns the value the field holds as a TypedValue: the value a
// set that took was given (set takes only the kind of value it gives back
// here).
func (s setter) typed() *gnmi.TypedValue {
	switch k := s.k; k {
	case fieldEnum:
		return &gnmi.TypedValue{Value: &gnmi.TypedValue_StringVal{StringVal: s.stringVal()}}
	case fieldStrings:
		ss := *(*[]string)(s.p)
		els := make([]*gnmi.TypedValue, len(ss))
		vals := make([]gnmi.TypedValue_StringVal, len(ss))
		for i := range ss {
			vals[i].StringVal = ss[i]
			els[i] = &gnmi.TypedValue{Value: &vals[i]}
		}
		return &gnmi.TypedValue{Value: &gnmi.TypedValue_LeaflistVal{LeaflistVal: &gnmi.ScalarArray{Element: els}}}
	case fieldString:
		return &gnmi.TypedValue{Value: &gnmi.TypedValue_StringVal{StringVal: s.stringVal()}}
	case fieldBool:
		return &gnmi.TypedValue{Value: &gnmi.TypedValue_BoolVal{BoolVal: get((**bool)(s.p))}}
	case fieldUint8, fieldUint16, fieldUint32, fieldUint64:
		return &gnmi.TypedValue{Value: &gnmi.TypedValue_UintVal{UintVal: s.uintVal()}}
	case fieldInt8, fieldInt16, fieldInt32, fieldInt64:
		return &gnmi.TypedValue{Value: &gnmi.TypedValue_IntVal{IntVal: s.intVal()}}
	}
	return nil
}

// equal reports whether the field holds tv, without making a TypedValue.
func (s setter) equal(tv *gnmi.TypedValue) bool {
	switch k := s.k; k {
	case fieldEnum, fieldString:
		sv, ok := tv.GetValue().(*gnmi.TypedValue_StringVal)
		if k == fieldString && *(**string)(s.p) == nil {
			return false
		}
		return ok && s.stringVal() == sv.StringVal && (k == fieldString || sv.StringVal != "")
	case fieldStrings:
		ll, ok := tv.GetValue().(*gnmi.TypedValue_LeaflistVal)
		ss := *(*[]string)(s.p)
		if !ok || len(ll.LeaflistVal.GetElement()) != len(ss) {
			return false
		}
		for i, e := range ll.LeaflistVal.GetElement() {
			sv, ok := e.GetValue().(*gnmi.TypedValue_StringVal)
			if !ok || sv.StringVal != ss[i] {
				return false
			}
		}
		return true
	case fieldBool:
		bv, ok := tv.GetValue().(*gnmi.TypedValue_BoolVal)
		return ok && *(**bool)(s.p) != nil && bv.BoolVal == get((**bool)(s.p))
	case fieldUint8, fieldUint16, fieldUint32, fieldUint64:
		uv, ok := tv.GetValue().(*gnmi.TypedValue_UintVal)
		return ok && *(*unsafe.Pointer)(s.p) != nil && uv.UintVal == s.uintVal()
	case fieldInt8, fieldInt16, fieldInt32, fieldInt64:
		iv, ok := tv.GetValue().(*gnmi.TypedValue_IntVal)
		return ok && *(*unsafe.Pointer)(s.p) != nil && iv.IntVal == s.intVal()
	}
	return false
}

// uintVal, intVal and stringVal read the field the way the TypedValue
// getters read the value it was set from: the zero value for another
// kind, or for a field not set.
func (s setter) uintVal() uint64 {
	switch s.k {
	case fieldUint8:
		return uint64(get((**uint8)(s.p)))
	case fieldUint16:
		return uint64(get((**uint16)(s.p)))
	case fieldUint32:
		return uint64(get((**uint32)(s.p)))
	case fieldUint64:
		return get((**uint64)(s.p))
	}
	return 0
}

func (s setter) intVal() int64 {
	switch s.k {
	case fieldInt8:
		return int64(get((**int8)(s.p)))
	case fieldInt16:
		return int64(get((**int16)(s.p)))
	case fieldInt32:
		return int64(get((**int32)(s.p)))
	case fieldInt64:
		return get((**int64)(s.p))
	}
	return 0
}

func (s setter) stringVal() string {
	switch s.k {
	case fieldString:
		return get((**string)(s.p))
	case fieldEnum:
		return enumTable.name(s.enum, *(*int64)(s.p))
	}
	return ""
}

// get reads the value a pointer field points to; the zero value if none.
func get[T any](pp **T) T {
	if *pp == nil {
		var zero T
		return zero
	}
	return **pp
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
		tag := f.Tag.Get("path")
		if !tagHas(tag, rel) || aliased(tag) {
			continue
		}
		return scalarSetter(sv.Field(i))
	}
	return setter{}
}

// aliased reports whether a ygot path tag names more than one path
// ("state/neighbor-address|neighbor-address": a list key's leaf and its
// state leaf share a field). The field then holds the last value either
// path was given, so a leaf at one of them cannot be read from it.
func aliased(tag string) bool { return indexByte(tag, '|') >= 0 }

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
	names  [4096][]string         // value -> YANG name ("" for none), by index
	n      int
}

// maxEnumValue bounds the values of an enumeration given a setter, so
// that its names are a slice indexed by value. ygot numbers an
// enumeration's names from 1 (0 is unset); YANG's explicit values rarely
// go past a few hundred.
const maxEnumValue = 4096

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
	var names []string
	for name, v := range m {
		if v < 0 || v >= maxEnumValue {
			return 0, false
		}
		if int(v) >= len(names) {
			names = append(names, make([]string, int(v)+1-len(names))...)
		}
		names[v] = name
	}
	if e.byType == nil {
		e.byType = map[reflect.Type]uint16{}
	}
	i := uint16(e.n)
	e.vals[i], e.names[i], e.byType[t] = m, names, i
	e.n++
	return i, true
}

// values returns the names and values of the enumeration at index i.
func (e *enums) values(i uint16) map[string]int64 { return e.vals[i] }

// name returns the YANG name of value v of the enumeration at index i,
// or "" (the value of an unset enumeration, 0, has none).
func (e *enums) name(i uint16, v int64) string {
	if names := e.names[i]; v >= 0 && v < int64(len(names)) {
		return names[v]
	}
	return ""
}

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
