package merge

import (
	"math"
	"unsafe"

	"github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/proto"
)

// value is a leaf's value held inline. A *gnmi.TypedValue costs a
// message, a oneof wrapper and a pointer, ~90 bytes a leaf more than the
// scalars nearly every leaf holds; other kinds (leaf-lists, decimals,
// bytes) keep their TypedValue. A string is held as its data pointer and
// length (num), so that a value is two words and a kind, not four.
type value struct {
	num  uint64         // uint, int (as bits), bool (0/1), double (as bits), a string's length
	ref  unsafe.Pointer // a string's bytes (kindString), the *gnmi.TypedValue (kindOther)
	kind valueKind
}

type valueKind uint8

const (
	kindNone valueKind = iota
	kindUint
	kindInt
	kindString
	kindBool
	kindDouble
	kindOther
)

func valueOf(tv *gnmi.TypedValue) value {
	switch v := tv.GetValue().(type) {
	case *gnmi.TypedValue_UintVal:
		return value{kind: kindUint, num: v.UintVal}
	case *gnmi.TypedValue_IntVal:
		return value{kind: kindInt, num: uint64(v.IntVal)}
	case *gnmi.TypedValue_StringVal:
		return value{kind: kindString, num: uint64(len(v.StringVal)), ref: unsafe.Pointer(unsafe.StringData(v.StringVal))}
	case *gnmi.TypedValue_BoolVal:
		var n uint64
		if v.BoolVal {
			n = 1
		}
		return value{kind: kindBool, num: n}
	case *gnmi.TypedValue_DoubleVal:
		return value{kind: kindDouble, num: math.Float64bits(v.DoubleVal)}
	}
	return value{kind: kindOther, ref: unsafe.Pointer(tv)}
}

// typed returns the value as a TypedValue, made anew for scalars.
func (v value) typed() *gnmi.TypedValue {
	switch v.kind {
	case kindUint:
		return &gnmi.TypedValue{Value: &gnmi.TypedValue_UintVal{UintVal: v.num}}
	case kindInt:
		return &gnmi.TypedValue{Value: &gnmi.TypedValue_IntVal{IntVal: int64(v.num)}}
	case kindString:
		return &gnmi.TypedValue{Value: &gnmi.TypedValue_StringVal{StringVal: v.stringVal()}}
	case kindBool:
		return &gnmi.TypedValue{Value: &gnmi.TypedValue_BoolVal{BoolVal: v.num != 0}}
	case kindDouble:
		return &gnmi.TypedValue{Value: &gnmi.TypedValue_DoubleVal{DoubleVal: math.Float64frombits(v.num)}}
	}
	return v.other()
}

// equal reports whether the value equals tv. The scalar kinds are
// compared directly: proto.Equal walks both messages by reflection and
// costs as much as the rest of an unchanged update.
func (v value) equal(tv *gnmi.TypedValue) bool {
	switch v.kind {
	case kindNone:
		return false
	case kindOther:
		return proto.Equal(v.other(), tv)
	}
	w := valueOf(tv)
	return w.kind == v.kind && w.num == v.num && (v.kind != kindString || w.stringVal() == v.stringVal())
}

// uintVal, stringVal and other read a value the way the TypedValue
// getters do: the zero value for another kind.
func (v value) uintVal() uint64 {
	if v.kind == kindUint {
		return v.num
	}
	return 0
}

func (v value) stringVal() string {
	if v.kind == kindString {
		return unsafe.String((*byte)(v.ref), int(v.num))
	}
	return ""
}

func (v value) other() *gnmi.TypedValue {
	if v.kind == kindOther {
		return (*gnmi.TypedValue)(v.ref)
	}
	return nil
}
