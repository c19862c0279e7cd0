package change

import gpb "github.com/openconfig/gnmi/proto/gnmi"

// Small constructors for typed values, so sources do not build protos by hand.

// String returns a string typed value.
func String(s string) *gpb.TypedValue {
	return &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: s}}
}

// Uint returns an unsigned integer typed value.
func Uint(u uint64) *gpb.TypedValue {
	return &gpb.TypedValue{Value: &gpb.TypedValue_UintVal{UintVal: u}}
}

// Int returns a signed integer typed value.
func Int(i int64) *gpb.TypedValue {
	return &gpb.TypedValue{Value: &gpb.TypedValue_IntVal{IntVal: i}}
}

// Bool returns a boolean typed value.
func Bool(v bool) *gpb.TypedValue {
	return &gpb.TypedValue{Value: &gpb.TypedValue_BoolVal{BoolVal: v}}
}

// Float returns a double typed value.
func Float(f float64) *gpb.TypedValue {
	return &gpb.TypedValue{Value: &gpb.TypedValue_DoubleVal{DoubleVal: f}}
}

// Decimal returns a decimal64 typed value with the given fraction digits
// (the YANG decimal64 leaves of meshd's model take 3).
func Decimal(f float64, digits uint32) *gpb.TypedValue {
	scale := 1.0
	for i := uint32(0); i < digits; i++ {
		scale *= 10
	}
	d := f * scale
	if d < 0 {
		d -= 0.5
	} else {
		d += 0.5
	}
	return &gpb.TypedValue{Value: &gpb.TypedValue_DecimalVal{DecimalVal: &gpb.Decimal64{Digits: int64(d), Precision: digits}}} //nolint:staticcheck // decimal64 is what the YANG type maps to
}

// StringList returns a leaf-list of strings.
func StringList(ss []string) *gpb.TypedValue {
	el := make([]*gpb.TypedValue, len(ss))
	for i, s := range ss {
		el[i] = String(s)
	}
	return &gpb.TypedValue{Value: &gpb.TypedValue_LeaflistVal{LeaflistVal: &gpb.ScalarArray{Element: el}}}
}
