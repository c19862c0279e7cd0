package gnmitarget

import (
	"math"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/encoding/protowire"
)

// Notifications a Subtree walks (a router's RIB, a million routes) are
// marshalled here, not by protobuf-go: protobuf-go marshals a PathElem's
// key map through reflection, allocating for each key and value, and
// every leaf of a route repeats the route's keyed element. In ribview's
// BenchmarkWalk that marshalling was half of a walk's allocations. This
// writes the wire form of the fields meshd's notifications use (paths,
// scalar values, leaf-lists, JSON); a notification with any other field
// set is left to protobuf-go (ok false). TestWireEncoding checks the
// bytes decode, with protobuf-go, to the same message.

// Field numbers of gnmi.proto.
const (
	fRespUpdate = 1 // SubscribeResponse.update

	fNotifTimestamp = 1
	fNotifPrefix    = 2
	fNotifUpdate    = 4
	fNotifDelete    = 5
	fNotifAtomic    = 6

	fUpdatePath       = 1
	fUpdateVal        = 3
	fUpdateDuplicates = 4

	fPathOrigin = 2
	fPathElem   = 3
	fPathTarget = 4

	fElemName = 1
	fElemKey  = 2

	fValString   = 1
	fValInt      = 2
	fValUint     = 3
	fValBool     = 4
	fValBytes    = 5
	fValLeaflist = 8
	fValJSON     = 10
	fValJSONIETF = 11
	fValASCII    = 12
	fValProto    = 13
	fValDouble   = 14

	fArrayElement = 1
)

// encodeResponse returns n as a SubscribeResponse's update in wire form;
// ok false when n holds a field this does not write.
func encodeResponse(n *gpb.Notification) (b []byte, ok bool) {
	ns, ok := notifSize(n)
	if !ok {
		return nil, false
	}
	b = make([]byte, 0, protowire.SizeTag(fRespUpdate)+protowire.SizeBytes(ns))
	b = protowire.AppendTag(b, fRespUpdate, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(ns))
	return appendNotif(b, n), true
}

func notifSize(n *gpb.Notification) (int, bool) {
	s := 0
	if n.GetTimestamp() != 0 {
		s += protowire.SizeTag(fNotifTimestamp) + protowire.SizeVarint(uint64(n.Timestamp))
	}
	if p := n.GetPrefix(); p != nil {
		ps, ok := pathSize(p)
		if !ok {
			return 0, false
		}
		s += protowire.SizeTag(fNotifPrefix) + protowire.SizeBytes(ps)
	}
	for _, u := range n.GetUpdate() {
		us, ok := updateSize(u)
		if !ok {
			return 0, false
		}
		s += protowire.SizeTag(fNotifUpdate) + protowire.SizeBytes(us)
	}
	for _, d := range n.GetDelete() {
		ds, ok := pathSize(d)
		if !ok {
			return 0, false
		}
		s += protowire.SizeTag(fNotifDelete) + protowire.SizeBytes(ds)
	}
	if n.GetAtomic() {
		s += protowire.SizeTag(fNotifAtomic) + 1
	}
	return s, true
}

func appendNotif(b []byte, n *gpb.Notification) []byte {
	if n.GetTimestamp() != 0 {
		b = appendVarint(b, fNotifTimestamp, uint64(n.Timestamp))
	}
	if p := n.GetPrefix(); p != nil {
		b = appendSub(b, fNotifPrefix, p)
	}
	for _, u := range n.GetUpdate() {
		us, _ := updateSize(u)
		b = protowire.AppendTag(b, fNotifUpdate, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(us))
		b = appendUpdate(b, u)
	}
	for _, d := range n.GetDelete() {
		b = appendSub(b, fNotifDelete, d)
	}
	if n.GetAtomic() {
		b = appendVarint(b, fNotifAtomic, 1)
	}
	return b
}

// appendSub appends path p as field num.
func appendSub(b []byte, num protowire.Number, p *gpb.Path) []byte {
	ps, _ := pathSize(p)
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(ps))
	return appendPath(b, p)
}

func updateSize(u *gpb.Update) (int, bool) {
	if u.GetValue() != nil {
		return 0, false // the deprecated Value
	}
	s := 0
	if p := u.GetPath(); p != nil {
		ps, ok := pathSize(p)
		if !ok {
			return 0, false
		}
		s += protowire.SizeTag(fUpdatePath) + protowire.SizeBytes(ps)
	}
	if v := u.GetVal(); v != nil {
		vs, ok := valueSize(v)
		if !ok {
			return 0, false
		}
		s += protowire.SizeTag(fUpdateVal) + protowire.SizeBytes(vs)
	}
	if u.GetDuplicates() != 0 {
		s += protowire.SizeTag(fUpdateDuplicates) + protowire.SizeVarint(uint64(u.Duplicates))
	}
	return s, true
}

func appendUpdate(b []byte, u *gpb.Update) []byte {
	if p := u.GetPath(); p != nil {
		b = appendSub(b, fUpdatePath, p)
	}
	if v := u.GetVal(); v != nil {
		vs, _ := valueSize(v)
		b = protowire.AppendTag(b, fUpdateVal, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(vs))
		b = appendValue(b, v)
	}
	if u.GetDuplicates() != 0 {
		b = appendVarint(b, fUpdateDuplicates, uint64(u.Duplicates))
	}
	return b
}

func pathSize(p *gpb.Path) (int, bool) {
	if len(p.GetElement()) > 0 {
		return 0, false // the deprecated string elements
	}
	s := 0
	if p.GetOrigin() != "" {
		s += protowire.SizeTag(fPathOrigin) + protowire.SizeBytes(len(p.Origin))
	}
	for _, e := range p.GetElem() {
		s += protowire.SizeTag(fPathElem) + protowire.SizeBytes(elemSize(e))
	}
	if p.GetTarget() != "" {
		s += protowire.SizeTag(fPathTarget) + protowire.SizeBytes(len(p.Target))
	}
	return s, true
}

func appendPath(b []byte, p *gpb.Path) []byte {
	if p.GetOrigin() != "" {
		b = appendString(b, fPathOrigin, p.Origin)
	}
	for _, e := range p.GetElem() {
		b = protowire.AppendTag(b, fPathElem, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(elemSize(e)))
		b = appendElem(b, e)
	}
	if p.GetTarget() != "" {
		b = appendString(b, fPathTarget, p.Target)
	}
	return b
}

// A map entry is a message of its key (field 1) and value (field 2),
// both written, as protobuf-go writes them.
func entrySize(k, v string) int {
	return protowire.SizeTag(1) + protowire.SizeBytes(len(k)) + protowire.SizeTag(2) + protowire.SizeBytes(len(v))
}

func elemSize(e *gpb.PathElem) int {
	s := 0
	if e.GetName() != "" {
		s += protowire.SizeTag(fElemName) + protowire.SizeBytes(len(e.Name))
	}
	for k, v := range e.GetKey() {
		s += protowire.SizeTag(fElemKey) + protowire.SizeBytes(entrySize(k, v))
	}
	return s
}

func appendElem(b []byte, e *gpb.PathElem) []byte {
	if e.GetName() != "" {
		b = appendString(b, fElemName, e.Name)
	}
	for k, v := range e.GetKey() {
		b = protowire.AppendTag(b, fElemKey, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(entrySize(k, v)))
		b = appendString(appendString(b, 1, k), 2, v)
	}
	return b
}

// valueSize sizes the value's oneof (written even when zero: a oneof
// member has presence).
func valueSize(v *gpb.TypedValue) (int, bool) {
	switch x := v.GetValue().(type) {
	case *gpb.TypedValue_StringVal:
		return protowire.SizeTag(fValString) + protowire.SizeBytes(len(x.StringVal)), true
	case *gpb.TypedValue_IntVal:
		return protowire.SizeTag(fValInt) + protowire.SizeVarint(uint64(x.IntVal)), true
	case *gpb.TypedValue_UintVal:
		return protowire.SizeTag(fValUint) + protowire.SizeVarint(x.UintVal), true
	case *gpb.TypedValue_BoolVal:
		return protowire.SizeTag(fValBool) + 1, true
	case *gpb.TypedValue_BytesVal:
		return protowire.SizeTag(fValBytes) + protowire.SizeBytes(len(x.BytesVal)), true
	case *gpb.TypedValue_DoubleVal:
		return protowire.SizeTag(fValDouble) + protowire.SizeFixed64(), true
	case *gpb.TypedValue_JsonVal:
		return protowire.SizeTag(fValJSON) + protowire.SizeBytes(len(x.JsonVal)), true
	case *gpb.TypedValue_JsonIetfVal:
		return protowire.SizeTag(fValJSONIETF) + protowire.SizeBytes(len(x.JsonIetfVal)), true
	case *gpb.TypedValue_AsciiVal:
		return protowire.SizeTag(fValASCII) + protowire.SizeBytes(len(x.AsciiVal)), true
	case *gpb.TypedValue_ProtoBytes:
		return protowire.SizeTag(fValProto) + protowire.SizeBytes(len(x.ProtoBytes)), true
	case *gpb.TypedValue_LeaflistVal:
		as, ok := arraySize(x.LeaflistVal)
		return protowire.SizeTag(fValLeaflist) + protowire.SizeBytes(as), ok
	case nil:
		return 0, true
	}
	return 0, false
}

func arraySize(a *gpb.ScalarArray) (int, bool) {
	s := 0
	for _, e := range a.GetElement() {
		es, ok := valueSize(e)
		if !ok {
			return 0, false
		}
		s += protowire.SizeTag(fArrayElement) + protowire.SizeBytes(es)
	}
	return s, true
}

func appendValue(b []byte, v *gpb.TypedValue) []byte {
	switch x := v.GetValue().(type) {
	case *gpb.TypedValue_StringVal:
		return appendString(b, fValString, x.StringVal)
	case *gpb.TypedValue_IntVal:
		return appendVarint(b, fValInt, uint64(x.IntVal))
	case *gpb.TypedValue_UintVal:
		return appendVarint(b, fValUint, x.UintVal)
	case *gpb.TypedValue_BoolVal:
		return appendVarint(b, fValBool, protowire.EncodeBool(x.BoolVal))
	case *gpb.TypedValue_BytesVal:
		return appendBytes(b, fValBytes, x.BytesVal)
	case *gpb.TypedValue_DoubleVal:
		b = protowire.AppendTag(b, fValDouble, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, math.Float64bits(x.DoubleVal))
	case *gpb.TypedValue_JsonVal:
		return appendBytes(b, fValJSON, x.JsonVal)
	case *gpb.TypedValue_JsonIetfVal:
		return appendBytes(b, fValJSONIETF, x.JsonIetfVal)
	case *gpb.TypedValue_AsciiVal:
		return appendString(b, fValASCII, x.AsciiVal)
	case *gpb.TypedValue_ProtoBytes:
		return appendBytes(b, fValProto, x.ProtoBytes)
	case *gpb.TypedValue_LeaflistVal:
		as, _ := arraySize(x.LeaflistVal)
		b = protowire.AppendTag(b, fValLeaflist, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(as))
		for _, e := range x.LeaflistVal.GetElement() {
			es, _ := valueSize(e)
			b = protowire.AppendTag(b, fArrayElement, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(es))
			b = appendValue(b, e)
		}
	}
	return b
}

// appendString and appendBytes append a length-delimited field.
func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}
