package translate

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/goyang/pkg/yang"
)

// errType is wrapped by every value that cannot become its leaf's type.
var errType = errors.New("wrong type for leaf")

// jsonScalar turns a decoded JSON value (decoded with UseNumber) into a
// typed value without a schema: numbers as int, uint or double, arrays as
// leaf-lists. The schema-aware coerce makes it right afterwards.
func jsonScalar(v any) (*gpb.TypedValue, error) {
	switch x := v.(type) {
	case string:
		return &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: x}}, nil
	case bool:
		return &gpb.TypedValue{Value: &gpb.TypedValue_BoolVal{BoolVal: x}}, nil
	case json.Number:
		s := string(x)
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return &gpb.TypedValue{Value: &gpb.TypedValue_IntVal{IntVal: i}}, nil
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return &gpb.TypedValue{Value: &gpb.TypedValue_UintVal{UintVal: u}}, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: number %q", errType, s)
		}
		return &gpb.TypedValue{Value: &gpb.TypedValue_DoubleVal{DoubleVal: f}}, nil
	case []any:
		// [null] is how JSON_IETF writes a leaf of type empty.
		if len(x) == 1 && x[0] == nil {
			return &gpb.TypedValue{Value: &gpb.TypedValue_BoolVal{BoolVal: true}}, nil
		}
		el := make([]*gpb.TypedValue, 0, len(x))
		for _, e := range x {
			tv, err := jsonScalar(e)
			if err != nil {
				return nil, err
			}
			el = append(el, tv)
		}
		return &gpb.TypedValue{Value: &gpb.TypedValue_LeaflistVal{LeaflistVal: &gpb.ScalarArray{Element: el}}}, nil
	case nil:
		return nil, fmt.Errorf("%w: null", errType)
	}
	return nil, fmt.Errorf("%w: JSON %T", errType, v)
}

// coerce converts a value to the type the schema gives its leaf, so every
// source stores one type per leaf whatever encoding the router chose
// (JSON_IETF sends 64-bit integers as strings, some routers send uint
// counters as int, enums and identities come with module prefixes).
func coerce(e *yang.Entry, tv *gpb.TypedValue) (*gpb.TypedValue, error) {
	if e.Type == nil {
		return tv, nil
	}
	if e.IsLeafList() {
		ll, ok := tv.GetValue().(*gpb.TypedValue_LeaflistVal)
		if !ok {
			// A single value for a leaf-list is a list of one.
			v, err := coerceType(e.Type, tv)
			if err != nil {
				return nil, err
			}
			return &gpb.TypedValue{Value: &gpb.TypedValue_LeaflistVal{LeaflistVal: &gpb.ScalarArray{Element: []*gpb.TypedValue{v}}}}, nil
		}
		out := make([]*gpb.TypedValue, len(ll.LeaflistVal.GetElement()))
		for i, el := range ll.LeaflistVal.GetElement() {
			v, err := coerceType(e.Type, el)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return &gpb.TypedValue{Value: &gpb.TypedValue_LeaflistVal{LeaflistVal: &gpb.ScalarArray{Element: out}}}, nil
	}
	return coerceType(e.Type, tv)
}

func coerceType(t *yang.YangType, tv *gpb.TypedValue) (*gpb.TypedValue, error) {
	switch t.Kind {
	case yang.Ystring:
		if s, ok := tv.GetValue().(*gpb.TypedValue_StringVal); ok {
			return &gpb.TypedValue{Value: s}, nil
		}
		return nil, fmt.Errorf("%w: string leaf, got %T", errType, tv.GetValue())
	case yang.Yenum, yang.Yidentityref:
		if s, ok := tv.GetValue().(*gpb.TypedValue_StringVal); ok {
			if strings.IndexByte(s.StringVal, ':') < 0 {
				return tv, nil
			}
			return &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: stripPrefix(s.StringVal)}}, nil
		}
		return nil, fmt.Errorf("%w: enumeration leaf, got %T", errType, tv.GetValue())
	case yang.Ybool:
		switch x := tv.GetValue().(type) {
		case *gpb.TypedValue_BoolVal:
			return tv, nil
		case *gpb.TypedValue_StringVal:
			if b, err := strconv.ParseBool(x.StringVal); err == nil {
				return &gpb.TypedValue{Value: &gpb.TypedValue_BoolVal{BoolVal: b}}, nil
			}
		}
		return nil, fmt.Errorf("%w: boolean leaf, got %v", errType, tv.GetValue())
	case yang.Yempty:
		return &gpb.TypedValue{Value: &gpb.TypedValue_BoolVal{BoolVal: true}}, nil
	case yang.Yuint8, yang.Yuint16, yang.Yuint32, yang.Yuint64:
		u, err := asUint(tv)
		if err != nil {
			return nil, err
		}
		if max := uintMax(t.Kind); u > max {
			return nil, fmt.Errorf("%w: %d out of range for %s", errType, u, t.Kind)
		}
		if _, ok := tv.GetValue().(*gpb.TypedValue_UintVal); ok {
			return tv, nil
		}
		return &gpb.TypedValue{Value: &gpb.TypedValue_UintVal{UintVal: u}}, nil
	case yang.Yint8, yang.Yint16, yang.Yint32, yang.Yint64:
		i, err := asInt(tv)
		if err != nil {
			return nil, err
		}
		if _, ok := tv.GetValue().(*gpb.TypedValue_IntVal); ok {
			return tv, nil
		}
		return &gpb.TypedValue{Value: &gpb.TypedValue_IntVal{IntVal: i}}, nil
	case yang.Ydecimal64:
		return asDecimal(tv, t.FractionDigits)
	case yang.Ybinary:
		switch x := tv.GetValue().(type) {
		case *gpb.TypedValue_BytesVal:
			return tv, nil
		case *gpb.TypedValue_StringVal:
			b, err := base64.StdEncoding.DecodeString(x.StringVal)
			if err != nil {
				return nil, fmt.Errorf("%w: binary leaf: %v", errType, err)
			}
			return &gpb.TypedValue{Value: &gpb.TypedValue_BytesVal{BytesVal: b}}, nil
		}
		return nil, fmt.Errorf("%w: binary leaf, got %T", errType, tv.GetValue())
	case yang.Yunion:
		// Strings first: the unions the BGP and probe models use are
		// addresses and names; numbers go to the first numeric member.
		if _, isStr := tv.GetValue().(*gpb.TypedValue_StringVal); isStr {
			return tv, nil
		}
		var firstErr error
		for _, m := range t.Type {
			v, err := coerceType(m, tv)
			if err == nil {
				return v, nil
			}
			if firstErr == nil {
				firstErr = err
			}
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("%w: empty union", errType)
		}
		return nil, firstErr
	}
	// Leafrefs and anything else: the merge core's schema check decides.
	return tv, nil
}

func uintMax(k yang.TypeKind) uint64 {
	switch k {
	case yang.Yuint8:
		return math.MaxUint8
	case yang.Yuint16:
		return math.MaxUint16
	case yang.Yuint32:
		return math.MaxUint32
	}
	return math.MaxUint64
}

func asUint(tv *gpb.TypedValue) (uint64, error) {
	switch x := tv.GetValue().(type) {
	case *gpb.TypedValue_UintVal:
		return x.UintVal, nil
	case *gpb.TypedValue_IntVal:
		if x.IntVal >= 0 {
			return uint64(x.IntVal), nil
		}
	case *gpb.TypedValue_StringVal:
		if u, err := strconv.ParseUint(x.StringVal, 10, 64); err == nil {
			return u, nil
		}
	case *gpb.TypedValue_DoubleVal:
		if x.DoubleVal >= 0 && x.DoubleVal == math.Trunc(x.DoubleVal) && x.DoubleVal < math.MaxUint64 {
			return uint64(x.DoubleVal), nil
		}
	}
	return 0, fmt.Errorf("%w: unsigned integer leaf, got %v", errType, tv.GetValue())
}

func asInt(tv *gpb.TypedValue) (int64, error) {
	switch x := tv.GetValue().(type) {
	case *gpb.TypedValue_IntVal:
		return x.IntVal, nil
	case *gpb.TypedValue_UintVal:
		if x.UintVal <= math.MaxInt64 {
			return int64(x.UintVal), nil
		}
	case *gpb.TypedValue_StringVal:
		if i, err := strconv.ParseInt(x.StringVal, 10, 64); err == nil {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%w: integer leaf, got %v", errType, tv.GetValue())
}

func asDecimal(tv *gpb.TypedValue, digits int) (*gpb.TypedValue, error) {
	var f float64
	switch x := tv.GetValue().(type) {
	case *gpb.TypedValue_DecimalVal: //nolint:staticcheck // decimal64 is the YANG type
		return tv, nil
	case *gpb.TypedValue_DoubleVal:
		f = x.DoubleVal
	case *gpb.TypedValue_FloatVal: //nolint:staticcheck // routers still send it
		f = float64(x.FloatVal)
	case *gpb.TypedValue_IntVal:
		f = float64(x.IntVal)
	case *gpb.TypedValue_UintVal:
		f = float64(x.UintVal)
	case *gpb.TypedValue_StringVal:
		v, err := strconv.ParseFloat(x.StringVal, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: decimal64 leaf: %q", errType, x.StringVal)
		}
		f = v
	default:
		return nil, fmt.Errorf("%w: decimal64 leaf, got %T", errType, tv.GetValue())
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%w: decimal64 leaf: %v", errType, f)
	}
	scale := math.Pow10(digits)
	return &gpb.TypedValue{Value: &gpb.TypedValue_DecimalVal{DecimalVal: &gpb.Decimal64{Digits: int64(math.Round(f * scale)), Precision: uint32(digits)}}}, nil //nolint:staticcheck // decimal64 is the YANG type
}
