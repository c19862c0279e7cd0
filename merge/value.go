package merge

import (
	"math"
	"unsafe"

	"github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/proto"
)

// A leaf's value has one home. Where the generated struct's field holds
// it exactly as the source sent it (a scalar or enumeration whose setter
// took the value, see fastset.go), the leaf points at the field and reads
// the value from there: the field's setter is the leaf's value, and a
// leaf is 24 bytes instead of 40 with a copy of its value beside it. That
// is field mode.
//
// Any other leaf holds its own value (value mode): one the tree holds in
// another form (a decimal, a union, an enumeration named with its module,
// a list key's leaf, whose field is shared with its state leaf), or not at
// all (a config leaf, which the compressed OpenConfig structs keep only as
// a shadow path). A scalar is held inline: a number that fits the leaf's
// 48 spare bits, a bool, or a string as its data pointer and length;
// a bigger number or a double in an 8-byte box; anything else (leaf-lists,
// decimals, bytes) keeps its TypedValue.

// valueKind is the kind of a value-mode leaf's value.
type valueKind uint8

const (
	kindNone valueKind = iota // field mode, or a leaf not yet set
	kindUint
	kindInt
	kindString
	kindBool
	kindDouble
	kindOther
)

// aux48 is the leaf's 48 spare bits: a field-mode leaf's enumeration
// index, a value-mode leaf's number or string length.
func (l *leaf) aux48() uint64     { return uint64(l.lo) | uint64(l.hi)<<32 }
func (l *leaf) setAux48(n uint64) { l.lo, l.hi = uint32(n), uint16(n>>32) }

func (l *leaf) fieldKind() fieldKind { return fieldKind(l.k & 0x0f) }
func (l *leaf) kind() valueKind      { return valueKind(l.k >> 4) }

// fast returns the setter of a field-mode leaf, else the zero setter.
func (l *leaf) fast() setter {
	if fk := l.fieldKind(); fk != fieldNone {
		return setter{p: l.ref, enum: uint16(l.lo), k: fk}
	}
	return setter{}
}

// setField puts the leaf in field mode: its value is what s's field holds.
func (l *leaf) setField(s setter) {
	l.ref, l.k = s.p, uint8(s.k)
	l.setAux48(uint64(s.enum))
}

// setValue puts the leaf in value mode, holding tv's value.
func (l *leaf) setValue(tv *gnmi.TypedValue) {
	var kind valueKind
	var num uint64
	switch v := tv.GetValue().(type) {
	case *gnmi.TypedValue_UintVal:
		kind, num = kindUint, v.UintVal
	case *gnmi.TypedValue_IntVal:
		kind, num = kindInt, uint64(v.IntVal)
	case *gnmi.TypedValue_BoolVal:
		kind = kindBool
		if v.BoolVal {
			num = 1
		}
	case *gnmi.TypedValue_DoubleVal:
		kind, num = kindDouble, math.Float64bits(v.DoubleVal)
	case *gnmi.TypedValue_StringVal:
		l.ref, l.k = unsafe.Pointer(unsafe.StringData(v.StringVal)), uint8(kindString)<<4
		l.setAux48(uint64(len(v.StringVal)))
		return
	default:
		l.ref, l.k = unsafe.Pointer(tv), uint8(kindOther)<<4
		return
	}
	if num < 1<<48 {
		l.ref = nil
		l.setAux48(num)
	} else if l.kind() == kind && l.ref != nil {
		*(*uint64)(l.ref) = num // the box this leaf already has
	} else {
		box := new(uint64) // not &num: that would put num on the heap every call
		*box = num
		l.ref = unsafe.Pointer(box)
	}
	l.k = uint8(kind) << 4
}

// num is a value-mode number: inline, or in its box when ref is set.
func (l *leaf) num() uint64 {
	if l.ref != nil {
		return *(*uint64)(l.ref)
	}
	return l.aux48()
}

func (l *leaf) str() string { return unsafe.String((*byte)(l.ref), int(l.aux48())) }

// typed returns the value as a TypedValue, made anew unless the leaf
// keeps the one it was sent.
func (l *leaf) typed() *gnmi.TypedValue {
	if l.fieldKind() != fieldNone {
		return l.fast().typed()
	}
	switch l.kind() {
	case kindUint:
		return &gnmi.TypedValue{Value: &gnmi.TypedValue_UintVal{UintVal: l.num()}}
	case kindInt:
		return &gnmi.TypedValue{Value: &gnmi.TypedValue_IntVal{IntVal: int64(l.num())}}
	case kindString:
		return &gnmi.TypedValue{Value: &gnmi.TypedValue_StringVal{StringVal: l.str()}}
	case kindBool:
		return &gnmi.TypedValue{Value: &gnmi.TypedValue_BoolVal{BoolVal: l.num() != 0}}
	case kindDouble:
		return &gnmi.TypedValue{Value: &gnmi.TypedValue_DoubleVal{DoubleVal: math.Float64frombits(l.num())}}
	case kindOther:
		return (*gnmi.TypedValue)(l.ref)
	}
	return nil
}

// equal reports whether the leaf holds tv. The scalar kinds are compared
// directly: proto.Equal walks both messages by reflection and costs as
// much as the rest of an unchanged update.
func (l *leaf) equal(tv *gnmi.TypedValue) bool {
	if l.fieldKind() != fieldNone {
		return l.fast().equal(tv)
	}
	switch v := tv.GetValue().(type) {
	case *gnmi.TypedValue_UintVal:
		return l.kind() == kindUint && l.num() == v.UintVal
	case *gnmi.TypedValue_IntVal:
		return l.kind() == kindInt && l.num() == uint64(v.IntVal)
	case *gnmi.TypedValue_BoolVal:
		return l.kind() == kindBool && (l.num() != 0) == v.BoolVal
	case *gnmi.TypedValue_DoubleVal:
		return l.kind() == kindDouble && l.num() == math.Float64bits(v.DoubleVal)
	case *gnmi.TypedValue_StringVal:
		return l.kind() == kindString && l.str() == v.StringVal
	}
	return l.kind() == kindOther && proto.Equal((*gnmi.TypedValue)(l.ref), tv)
}

// uintVal and stringVal read a value the way the TypedValue getters do:
// the zero value for another kind.
func (l *leaf) uintVal() uint64 {
	if l.fieldKind() != fieldNone {
		return l.fast().uintVal()
	}
	if l.kind() == kindUint {
		return l.num()
	}
	return 0
}

func (l *leaf) stringVal() string {
	if l.fieldKind() != fieldNone {
		return l.fast().stringVal()
	}
	if l.kind() == kindString {
		return l.str()
	}
	return ""
}
