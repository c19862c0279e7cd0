package gnmitarget

import (
	"math"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/proto"
)

// cval is a leaf's value as the store holds it: a scalar as its kind and
// bits (a string shares its bytes with the update it came in), anything
// else as the TypedValue itself. A TypedValue and its oneof wrapper were
// two objects and about 80 bytes per leaf, and the store held the only
// reference to them; the TypedValue is built again when a walk sends
// the leaf (initial syncs, Get, samples), while changes go out with the
// TypedValue their update brought.
type cval struct {
	s    string
	n    uint64
	ref  *gpb.TypedValue
	kind cvalKind
}

type cvalKind uint8

const (
	cvRef cvalKind = iota
	cvString
	cvASCII
	cvUint
	cvInt
	cvBool
	cvDouble
	cvFloat
)

func compact(v *gpb.TypedValue) cval {
	switch x := v.GetValue().(type) {
	case *gpb.TypedValue_StringVal:
		return cval{kind: cvString, s: x.StringVal}
	case *gpb.TypedValue_AsciiVal:
		return cval{kind: cvASCII, s: x.AsciiVal}
	case *gpb.TypedValue_UintVal:
		return cval{kind: cvUint, n: x.UintVal}
	case *gpb.TypedValue_IntVal:
		return cval{kind: cvInt, n: uint64(x.IntVal)}
	case *gpb.TypedValue_BoolVal:
		if x.BoolVal {
			return cval{kind: cvBool, n: 1}
		}
		return cval{kind: cvBool}
	case *gpb.TypedValue_DoubleVal:
		return cval{kind: cvDouble, n: math.Float64bits(x.DoubleVal)}
	case *gpb.TypedValue_FloatVal: //nolint:staticcheck // deprecated in gNMI, still sent by some targets
		return cval{kind: cvFloat, n: uint64(math.Float32bits(x.FloatVal))}
	}
	return cval{ref: v}
}

// typed is c as a TypedValue: a new one but for a value held as one.
func (c cval) typed() *gpb.TypedValue {
	switch c.kind {
	case cvString:
		return &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: c.s}}
	case cvASCII:
		return &gpb.TypedValue{Value: &gpb.TypedValue_AsciiVal{AsciiVal: c.s}}
	case cvUint:
		return &gpb.TypedValue{Value: &gpb.TypedValue_UintVal{UintVal: c.n}}
	case cvInt:
		return &gpb.TypedValue{Value: &gpb.TypedValue_IntVal{IntVal: int64(c.n)}}
	case cvBool:
		return &gpb.TypedValue{Value: &gpb.TypedValue_BoolVal{BoolVal: c.n == 1}}
	case cvDouble:
		return &gpb.TypedValue{Value: &gpb.TypedValue_DoubleVal{DoubleVal: math.Float64frombits(c.n)}}
	case cvFloat:
		return &gpb.TypedValue{Value: &gpb.TypedValue_FloatVal{FloatVal: math.Float32frombits(uint32(c.n))}} //nolint:staticcheck // as received
	}
	return c.ref
}

// typedIn is typed, building a scalar's TypedValue in dst (which the
// caller owns, one of a batch allocated at once) rather than a new one.
func (c cval) typedIn(dst *gpb.TypedValue) *gpb.TypedValue {
	switch c.kind {
	case cvRef:
		return c.ref
	case cvString:
		dst.Value = &gpb.TypedValue_StringVal{StringVal: c.s}
	case cvASCII:
		dst.Value = &gpb.TypedValue_AsciiVal{AsciiVal: c.s}
	case cvUint:
		dst.Value = &gpb.TypedValue_UintVal{UintVal: c.n}
	case cvInt:
		dst.Value = &gpb.TypedValue_IntVal{IntVal: int64(c.n)}
	case cvBool:
		dst.Value = &gpb.TypedValue_BoolVal{BoolVal: c.n == 1}
	case cvDouble:
		dst.Value = &gpb.TypedValue_DoubleVal{DoubleVal: math.Float64frombits(c.n)}
	case cvFloat:
		dst.Value = &gpb.TypedValue_FloatVal{FloatVal: math.Float32frombits(uint32(c.n))} //nolint:staticcheck // as received
	}
	return dst
}

// equal reports whether v is the value c holds.
func (c cval) equal(v *gpb.TypedValue) bool {
	if c.kind == cvRef {
		return proto.Equal(c.ref, v)
	}
	o := compact(v)
	return o.kind == c.kind && o.n == c.n && o.s == c.s
}
