package merge

import (
	"reflect"
	"testing"

	"github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ondatra/gnmi/oc"

	"github.com/meshd/meshd/change"
)

// fieldsUnderTest has a field of every shape a setter handles.
type fieldsUnderTest struct {
	S   *string
	B   *bool
	U8  *uint8
	U16 *uint16
	U32 *uint32
	U64 *uint64
	I8  *int8
	I16 *int16
	I32 *int32
	I64 *int64
	L   []string
	E   oc.E_Bgp_Neighbor_SessionState
	F   *float64    // decimal64: left to ygot
	Any interface{} // a union: left to ygot
}

func TestSetter(t *testing.T) {
	leaflist := &gnmi.TypedValue{Value: &gnmi.TypedValue_LeaflistVal{LeaflistVal: &gnmi.ScalarArray{Element: []*gnmi.TypedValue{change.String("a"), change.String("b")}}}}
	mixedList := &gnmi.TypedValue{Value: &gnmi.TypedValue_LeaflistVal{LeaflistVal: &gnmi.ScalarArray{Element: []*gnmi.TypedValue{change.String("a"), change.Uint(1)}}}}
	intv := func(n int64) *gnmi.TypedValue { return &gnmi.TypedValue{Value: &gnmi.TypedValue_IntVal{IntVal: n}} }
	boolv := &gnmi.TypedValue{Value: &gnmi.TypedValue_BoolVal{BoolVal: true}}
	tests := []struct {
		field string
		v     *gnmi.TypedValue
		ok    bool
		want  any // the field's value after a set that took
	}{
		{"S", change.String("ESTABLISHED"), true, "ESTABLISHED"},
		{"S", change.Uint(1), false, nil},
		{"B", boolv, true, true},
		{"U8", change.Uint(255), true, uint8(255)},
		{"U8", change.Uint(256), false, nil},
		{"U16", change.Uint(65535), true, uint16(65535)},
		{"U16", change.Uint(65536), false, nil},
		{"U32", change.Uint(1 << 32), false, nil},
		{"U32", change.Uint(1<<32 - 1), true, uint32(1<<32 - 1)},
		{"U64", change.Uint(1<<64 - 1), true, uint64(1<<64 - 1)},
		{"U64", intv(1), false, nil},
		{"I8", intv(-128), true, int8(-128)},
		{"I8", intv(128), false, nil},
		{"I16", intv(-32769), false, nil},
		{"I32", intv(1<<31 - 1), true, int32(1<<31 - 1)},
		{"I64", intv(-1 << 63), true, int64(-1 << 63)},
		{"I64", change.Uint(1), false, nil},
		{"L", leaflist, true, []string{"a", "b"}},
		{"L", mixedList, false, nil},
		{"E", change.String("ESTABLISHED"), true, oc.Bgp_Neighbor_SessionState_ESTABLISHED},
		{"E", change.String("NOT-A-STATE"), false, nil},
		{"F", &gnmi.TypedValue{Value: &gnmi.TypedValue_DoubleVal{DoubleVal: 1}}, false, nil},
		{"Any", change.String("x"), false, nil},
	}
	for _, tt := range tests {
		var s fieldsUnderTest
		f := reflect.ValueOf(&s).Elem().FieldByName(tt.field)
		set := scalarSetter(f)
		if got := set.set(tt.v); got != tt.ok {
			t.Errorf("%s set(%v) = %v, want %v", tt.field, tt.v, got, tt.ok)
			continue
		}
		if !tt.ok {
			continue
		}
		got := f.Interface()
		if f.Kind() == reflect.Pointer {
			got = f.Elem().Interface()
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s after set(%v) = %#v, want %#v", tt.field, tt.v, got, tt.want)
		}
	}
}

// A counter's next value is written where the last one is: no new
// allocation, and the field keeps its pointer.
func TestSetterInPlace(t *testing.T) {
	var s fieldsUnderTest
	set := scalarSetter(reflect.ValueOf(&s).Elem().FieldByName("U64"))
	set.set(change.Uint(1))
	p := s.U64
	if n := testing.AllocsPerRun(100, func() { set.set(change.Uint(2)) }); n != 0 {
		t.Errorf("set allocated %v times", n)
	}
	if s.U64 != p || *p != 2 {
		t.Errorf("U64 = %p %d, want %p 2", s.U64, *s.U64, p)
	}
}

// A field reached by value, not through its struct's pointer, has no
// address to keep: no setter.
func TestSetterNeedsAddress(t *testing.T) {
	if set := scalarSetter(reflect.ValueOf(fieldsUnderTest{}).FieldByName("U64")); set.k != fieldNone {
		t.Errorf("setter for an unaddressable field: %+v", set)
	}
}
