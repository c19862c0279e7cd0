package merge

import (
	"github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/proto"
)

// sameValue reports whether two typed values are equal. The scalar kinds
// that make up nearly every update are compared directly: proto.Equal
// walks both messages by reflection and costs as much as the rest of an
// unchanged update.
func sameValue(a, b *gnmi.TypedValue) bool {
	switch av := a.GetValue().(type) {
	case *gnmi.TypedValue_UintVal:
		bv, ok := b.GetValue().(*gnmi.TypedValue_UintVal)
		return ok && av.UintVal == bv.UintVal
	case *gnmi.TypedValue_IntVal:
		bv, ok := b.GetValue().(*gnmi.TypedValue_IntVal)
		return ok && av.IntVal == bv.IntVal
	case *gnmi.TypedValue_StringVal:
		bv, ok := b.GetValue().(*gnmi.TypedValue_StringVal)
		return ok && av.StringVal == bv.StringVal
	case *gnmi.TypedValue_BoolVal:
		bv, ok := b.GetValue().(*gnmi.TypedValue_BoolVal)
		return ok && av.BoolVal == bv.BoolVal
	}
	return proto.Equal(a, b)
}
