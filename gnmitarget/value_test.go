package gnmitarget

import (
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/proto"
)

// A value held compactly comes back as the TypedValue it was, compares
// equal to it, and unequal to a value of another kind with the same bits.
func TestCompactValue(t *testing.T) {
	for _, v := range []*gpb.TypedValue{
		{Value: &gpb.TypedValue_StringVal{StringVal: "ESTABLISHED"}},
		{Value: &gpb.TypedValue_StringVal{}},
		{Value: &gpb.TypedValue_AsciiVal{AsciiVal: "x"}},
		{Value: &gpb.TypedValue_UintVal{UintVal: 1<<64 - 1}},
		{Value: &gpb.TypedValue_IntVal{IntVal: -3}},
		{Value: &gpb.TypedValue_BoolVal{BoolVal: true}},
		{Value: &gpb.TypedValue_BoolVal{}},
		{Value: &gpb.TypedValue_DoubleVal{DoubleVal: 250.5}},
		{Value: &gpb.TypedValue_FloatVal{FloatVal: 1.5}},                                            //nolint:staticcheck // some targets send it
		{Value: &gpb.TypedValue_DecimalVal{DecimalVal: &gpb.Decimal64{Digits: 2505, Precision: 1}}}, //nolint:staticcheck
		{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: []byte(`{"a":1}`)}},
		{Value: &gpb.TypedValue_LeaflistVal{LeaflistVal: &gpb.ScalarArray{Element: []*gpb.TypedValue{{Value: &gpb.TypedValue_UintVal{UintVal: 1}}}}}},
	} {
		c := compact(v)
		if got := c.typed(); !proto.Equal(got, v) {
			t.Errorf("%v came back as %v", v, got)
		}
		if !c.equal(v) {
			t.Errorf("%v: not equal to itself held compactly", v)
		}
	}
	// Same bits, other kinds.
	one := compact(&gpb.TypedValue{Value: &gpb.TypedValue_UintVal{UintVal: 1}})
	for _, v := range []*gpb.TypedValue{
		{Value: &gpb.TypedValue_IntVal{IntVal: 1}},
		{Value: &gpb.TypedValue_BoolVal{BoolVal: true}},
		{Value: &gpb.TypedValue_UintVal{UintVal: 2}},
		{Value: &gpb.TypedValue_StringVal{StringVal: "1"}},
	} {
		if one.equal(v) {
			t.Errorf("uint 1 held compactly equals %v", v)
		}
	}
}
