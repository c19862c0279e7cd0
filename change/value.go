package change

import (
	"encoding/json"
	"errors"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/gnmi/value"
)

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

// JSONValue is a typed value as a JSON value: a scalar (decimal64 as a
// number, a leaf-list as an array), or a JSON value as it was sent.
func JSONValue(tv *gpb.TypedValue) (any, error) {
	switch v := tv.GetValue().(type) {
	case *gpb.TypedValue_JsonIetfVal:
		return rawJSON(v.JsonIetfVal)
	case *gpb.TypedValue_JsonVal:
		return rawJSON(v.JsonVal)
	}
	return value.ToScalar(tv)
}

func rawJSON(b []byte) (any, error) {
	if !json.Valid(b) {
		return nil, errors.New("value is not valid JSON")
	}
	return json.RawMessage(b), nil
}
