package gnmitarget

import (
	"math"
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// TestWireEncoding: what encodeResponse writes decodes, with protobuf-go,
// to the same SubscribeResponse; a notification with a field it does not
// write is left to protobuf-go.
func TestWireEncoding(t *testing.T) {
	route := &gpb.PathElem{Name: "route", Key: map[string]string{"prefix": "10.0.0.0/8", "path-id": "0"}}
	leaf := func(name string, v *gpb.TypedValue) *gpb.Update {
		return &gpb.Update{Path: &gpb.Path{Elem: []*gpb.PathElem{route, {Name: "state"}, {Name: name}}}, Val: v}
	}
	for _, tc := range []struct {
		name string
		n    *gpb.Notification
		ok   bool
	}{
		{"empty", &gpb.Notification{}, true},
		{"prefix only", &gpb.Notification{Prefix: &gpb.Path{Target: "r1"}}, true},
		{"a route's leaves", &gpb.Notification{Timestamp: 1_700_000_000_123_456_789,
			Prefix: &gpb.Path{Target: "r1", Origin: "openconfig", Elem: []*gpb.PathElem{{Name: "network-instances"}, {Name: "network-instance", Key: map[string]string{"name": "default"}}}},
			Update: []*gpb.Update{
				leaf("prefix", &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: "10.0.0.0/8"}}),
				leaf("path-id", &gpb.TypedValue{Value: &gpb.TypedValue_UintVal{UintVal: 0}}),
				leaf("attr-index", &gpb.TypedValue{Value: &gpb.TypedValue_UintVal{UintVal: math.MaxUint64}}),
				leaf("valid-route", &gpb.TypedValue{Value: &gpb.TypedValue_BoolVal{BoolVal: false}}),
				leaf("neg", &gpb.TypedValue{Value: &gpb.TypedValue_IntVal{IntVal: -5}}),
				leaf("d", &gpb.TypedValue{Value: &gpb.TypedValue_DoubleVal{DoubleVal: 0.25}}),
				leaf("j", &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: []byte(`"x"`)}}),
				leaf("jj", &gpb.TypedValue{Value: &gpb.TypedValue_JsonVal{JsonVal: []byte(`{}`)}}),
				leaf("a", &gpb.TypedValue{Value: &gpb.TypedValue_AsciiVal{AsciiVal: "ascii"}}),
				leaf("b", &gpb.TypedValue{Value: &gpb.TypedValue_BytesVal{BytesVal: []byte{0, 1}}}),
				leaf("pb", &gpb.TypedValue{Value: &gpb.TypedValue_ProtoBytes{ProtoBytes: []byte{8, 1}}}),
				leaf("member", &gpb.TypedValue{Value: &gpb.TypedValue_LeaflistVal{LeaflistVal: &gpb.ScalarArray{Element: []*gpb.TypedValue{
					{Value: &gpb.TypedValue_UintVal{UintVal: 65001}}, {Value: &gpb.TypedValue_StringVal{StringVal: ""}}}}}}),
				{Path: &gpb.Path{Elem: []*gpb.PathElem{{Name: "x", Key: map[string]string{"": ""}}}}, Val: &gpb.TypedValue{}, Duplicates: 3},
				{},
			},
			Delete: []*gpb.Path{{Elem: []*gpb.PathElem{route}}, {}},
			Atomic: true}, true},
		{"a float", &gpb.Notification{Update: []*gpb.Update{{Val: &gpb.TypedValue{Value: &gpb.TypedValue_FloatVal{FloatVal: 1}}}}}, false},
		{"an any", &gpb.Notification{Update: []*gpb.Update{{Val: &gpb.TypedValue{Value: &gpb.TypedValue_AnyVal{AnyVal: &anypb.Any{}}}}}}, false},
		{"string elements", &gpb.Notification{Prefix: &gpb.Path{Element: []string{"a"}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, ok := encodeResponse(tc.n)
			if ok != tc.ok {
				t.Fatalf("ok %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			var got gpb.SubscribeResponse
			if err := proto.Unmarshal(b, &got); err != nil {
				t.Fatalf("protobuf-go cannot decode it: %v", err)
			}
			want := &gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: tc.n}}
			if !proto.Equal(&got, want) {
				t.Errorf("decoded to\n%v\nwant\n%v", &got, want)
			}
			if n := proto.Size(want); n != len(b) {
				t.Errorf("%d bytes, protobuf-go's %d", len(b), n)
			}
		})
	}
}
