package merge

import (
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ygot/ygot"
)

// walkSet sets a scalar leaf by walking the generated structs directly:
// containers are allocated, single-key list entries created through their
// generated New<List> method, and the leaf set through a scalar setter.
// It handles the shapes of nearly every change sources send and is two
// orders of magnitude cheaper than ytypes.SetNode, which parses struct
// tags and schema for every element of every call. ok is false when the
// path or value needs ytypes (multi-key list entries not there yet,
// unions, leaf-lists, decimals); the caller then falls back to it. A
// field that two paths share is set, but returns the zero setter: its
// leaf cannot be read from it (see aliased).
func walkSet(root ygot.GoStruct, elems []*gnmi.PathElem, v *gnmi.TypedValue) (setter, bool) {
	cur := reflect.ValueOf(root)
	i := 0
	for i < len(elems) {
		if cur.Kind() != reflect.Pointer || cur.IsNil() || cur.Elem().Kind() != reflect.Struct {
			return setter{}, false
		}
		st := cur.Elem()
		f, n := matchField(st.Type(), elems[i:])
		if f < 0 {
			return setter{}, false
		}
		last := elems[i+n-1]
		fv := st.Field(f)
		i += n
		switch {
		case fv.Kind() == reflect.Map:
			if i == len(elems) {
				return setter{}, false
			}
			entry, ok := listEntry(cur, st.Type().Field(f).Name, fv, last.GetKey())
			if !ok {
				return setter{}, false
			}
			cur = entry
		case fv.Kind() == reflect.Pointer && fv.Type().Elem().Kind() == reflect.Struct:
			if len(last.GetKey()) > 0 || i == len(elems) {
				return setter{}, false
			}
			if fv.IsNil() {
				fv.Set(reflect.New(fv.Type().Elem()))
			}
			cur = fv
		default:
			if i != len(elems) || len(last.GetKey()) > 0 {
				return setter{}, false
			}
			set := scalarSetter(fv)
			if !set.set(v) {
				return setter{}, false
			}
			if aliased(st.Type().Field(f).Tag.Get("path")) {
				return setter{}, true // set, but the leaf keeps its value
			}
			return set, true
		}
	}
	return setter{}, false
}

type fieldPath struct {
	index int
	names []string
}

var typeFields sync.Map // reflect.Type -> []fieldPath

// fieldsOf lists a generated struct's fields with each path (of the
// alternatives in its tag) split into names, parsed once per type.
func fieldsOf(t reflect.Type) []fieldPath {
	if fs, ok := typeFields.Load(t); ok {
		return fs.([]fieldPath)
	}
	var fs []fieldPath
	for i := 0; i < t.NumField(); i++ {
		tag, ok := t.Field(i).Tag.Lookup("path")
		if !ok || tag == "" {
			continue
		}
		for _, alt := range strings.Split(tag, "|") {
			fs = append(fs, fieldPath{index: i, names: strings.Split(strings.TrimPrefix(alt, "/"), "/")})
		}
	}
	typeFields.Store(t, fs)
	return fs
}

// matchField finds the field whose path matches the first elements; keys
// may only sit on the last element matched. It returns the field index
// and how many elements it took, or -1.
func matchField(t reflect.Type, elems []*gnmi.PathElem) (int, int) {
	best, bestN := -1, 0
	for _, fp := range fieldsOf(t) {
		n := len(fp.names)
		if n > len(elems) || n <= bestN {
			continue
		}
		ok := true
		for j, name := range fp.names {
			if elems[j].GetName() != name || (j < n-1 && len(elems[j].GetKey()) > 0) {
				ok = false
				break
			}
		}
		if ok {
			best, bestN = fp.index, n
		}
	}
	return best, bestN
}

// listEntry returns the list entry with the given keys, creating it with
// the generated New<List> method when it is missing and the list has a
// single key.
func listEntry(parent reflect.Value, fieldName string, m reflect.Value, keys map[string]string) (reflect.Value, bool) {
	kt := m.Type().Key()
	var k reflect.Value
	if kt.Kind() == reflect.Struct {
		// Multi-key list: build the key struct from its tagged fields.
		k = reflect.New(kt).Elem()
		if kt.NumField() != len(keys) {
			return reflect.Value{}, false
		}
		for i := 0; i < kt.NumField(); i++ {
			name := kt.Field(i).Tag.Get("path")
			s, ok := keys[name]
			if !ok || !convertKey(k.Field(i), s) {
				return reflect.Value{}, false
			}
		}
	} else {
		if len(keys) != 1 {
			return reflect.Value{}, false
		}
		k = reflect.New(kt).Elem()
		for _, s := range keys {
			if !convertKey(k, s) {
				return reflect.Value{}, false
			}
		}
	}
	if !m.IsNil() {
		if e := m.MapIndex(k); e.IsValid() {
			return e, true
		}
	}
	if kt.Kind() == reflect.Struct {
		return reflect.Value{}, false // let ytypes create multi-key entries
	}
	newFn := parent.MethodByName("New" + fieldName)
	if !newFn.IsValid() || newFn.Type().NumIn() != 1 || newFn.Type().In(0) != kt {
		return reflect.Value{}, false
	}
	out := newFn.Call([]reflect.Value{k})
	if len(out) != 2 || !out[1].IsNil() {
		return reflect.Value{}, false
	}
	return out[0], true
}

// convertKey sets a key value from its string form.
func convertKey(dst reflect.Value, s string) bool {
	switch dst.Kind() {
	case reflect.String:
		dst.SetString(s)
		return true
	case reflect.Int64:
		if _, ok := dst.Interface().(ygot.GoEnum); ok {
			names := enumNames(dst.Type())
			if j := strings.LastIndexByte(s, ':'); j >= 0 {
				s = s[j+1:]
			}
			n, ok := names[s]
			if !ok {
				return false
			}
			dst.SetInt(n)
			return true
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return false
		}
		dst.SetInt(n)
		return true
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, dst.Type().Bits())
		if err != nil {
			return false
		}
		dst.SetUint(n)
		return true
	}
	return false
}
