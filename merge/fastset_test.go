package merge

import (
	"reflect"
	"testing"

	"github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ondatra/gnmi/oc"
	"google.golang.org/protobuf/proto"

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
		// A leaf reads its value back from the field: exactly what the
		// set was given.
		var l leaf
		l.setField(set)
		if back := l.typed(); !proto.Equal(back, tt.v) {
			t.Errorf("%s after set(%v) reads back as %v", tt.field, tt.v, back)
		}
		if !l.equal(tt.v) {
			t.Errorf("%s after set(%v): equal(%v) = false", tt.field, tt.v, tt.v)
		}
	}
}

// A field-mode leaf is equal only to the value its field holds, of the
// kind its setter takes; an unset field equals nothing.
func TestSetterEqual(t *testing.T) {
	intv := func(n int64) *gnmi.TypedValue { return &gnmi.TypedValue{Value: &gnmi.TypedValue_IntVal{IntVal: n}} }
	tests := []struct {
		field   string
		set, v  *gnmi.TypedValue // set nil: the field is left unset
		want    bool
		uintVal uint64
		str     string
	}{
		{"U8", change.Uint(7), change.Uint(7), true, 7, ""},
		{"U8", change.Uint(7), change.Uint(263), false, 7, ""},
		{"U8", change.Uint(7), intv(7), false, 7, ""},
		{"U8", nil, change.Uint(0), false, 0, ""},
		{"U64", change.Uint(1 << 60), change.Uint(1 << 60), true, 1 << 60, ""},
		{"I16", intv(-5), intv(-5), true, 0, ""},
		{"I16", intv(-5), intv(65531), false, 0, ""},
		{"S", change.String("a"), change.String("a"), true, 0, "a"},
		{"S", change.String("a"), change.String("b"), false, 0, "a"},
		{"S", nil, change.String(""), false, 0, ""},
		{"B", change.Bool(false), change.Bool(false), true, 0, ""},
		{"B", change.Bool(false), change.Bool(true), false, 0, ""},
		{"E", change.String("ACTIVE"), change.String("ACTIVE"), true, 0, "ACTIVE"},
		{"E", change.String("ACTIVE"), change.String("IDLE"), false, 0, "ACTIVE"},
		{"E", nil, change.String(""), false, 0, ""},
		{"L", change.StringList([]string{"a"}), change.StringList([]string{"a"}), true, 0, ""},
		{"L", change.StringList([]string{"a"}), change.StringList([]string{"a", "b"}), false, 0, ""},
		{"L", change.StringList([]string{"a"}), change.StringList([]string{"b"}), false, 0, ""},
	}
	for _, tt := range tests {
		var s fieldsUnderTest
		set := scalarSetter(reflect.ValueOf(&s).Elem().FieldByName(tt.field))
		if tt.set != nil && !set.set(tt.set) {
			t.Fatalf("%s set(%v) did not take", tt.field, tt.set)
		}
		var l leaf
		l.setField(set)
		if got := l.equal(tt.v); got != tt.want {
			t.Errorf("%s holding %v: equal(%v) = %v, want %v", tt.field, tt.set, tt.v, got, tt.want)
		}
		if got := l.uintVal(); got != tt.uintVal {
			t.Errorf("%s holding %v: uintVal() = %d, want %d", tt.field, tt.set, got, tt.uintVal)
		}
		if got := l.stringVal(); got != tt.str {
			t.Errorf("%s holding %v: stringVal() = %q, want %q", tt.field, tt.set, got, tt.str)
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
