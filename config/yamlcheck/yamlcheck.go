// Package yamlcheck decodes a YAML config into Go structs after checking
// the document against them, so that an error is said in the config's own
// words: the key path, the line, what was expected and what was found
// (`targets.r1: unknown key "adress" (line 14); did you mean "address"?`,
// `bmp.aliases.r1: want a list of strings, got a string (line 7)`), never
// in the Go type names yaml.v3's own errors carry.
package yamlcheck

import (
	"cmp"
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a YAML document.
type Error struct {
	Path string // the key path, "bmp.aliases.r1" or "bmp.listen[0]"; "" for the document
	Line int    // 0 when unknown
	Msg  string
}

func (e *Error) Error() string {
	// "path: what was wrong (line N); a hint", or "line N: ..." for the
	// document itself.
	msg, hint, _ := strings.Cut(e.Msg, "; ")
	var b strings.Builder
	switch {
	case e.Path != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s: %s (line %d)", e.Path, msg, e.Line)
	case e.Path != "":
		fmt.Fprintf(&b, "%s: %s", e.Path, msg)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: %s", e.Line, msg)
	default:
		b.WriteString(msg)
	}
	if hint != "" {
		b.WriteString("; " + hint)
	}
	return b.String()
}

// Option changes how Decode checks.
type Option func(*checker)

// ForeignKeys makes Decode skip unknown keys that look like none it knows
// (no known key within one edit, or one in three letters): files shared with
// another tool (gnmic's targets files) carry keys for that tool alone. A
// near miss ("adress") is still an error.
func ForeignKeys() Option { return func(c *checker) { c.foreign = true } }

// Decode checks the YAML document data against v's type, then decodes it
// into v (a pointer). An empty document leaves v as it is. The error
// joins one *Error per problem, in line order.
func Decode(data []byte, v any, opts ...Option) error {
	root, err := Parse(data)
	if err != nil || root == nil {
		return err
	}
	return DecodeNode(root, v, "", opts...)
}

// Parse parses a YAML document and returns its root node, nil for an
// empty document. A syntax error is an *Error.
func Parse(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxError(err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// DecodeNode is Decode for a node of a document, found at the key path
// path ("" for the document itself): errors name their keys below path.
func DecodeNode(n *yaml.Node, v any, path string, opts ...Option) error {
	if errs := CheckNode(n, reflect.TypeOf(v), path, opts...); len(errs) > 0 {
		return Join(errs)
	}
	// Node.Decode ignores unknown keys: the check has refused those that
	// are not foreign.
	if err := n.Decode(v); err != nil {
		// The check above should have caught it; say it without Go types
		// all the same.
		return plain(err)
	}
	return nil
}

// CheckNode checks a node found at the key path path against the Go type
// t, and returns its problems.
func CheckNode(n *yaml.Node, t reflect.Type, path string, opts ...Option) []*Error {
	c := &checker{}
	for _, o := range opts {
		o(c)
	}
	c.check(n, t, path)
	return c.errs
}

// Join joins errors in line order into one error, nil for none.
func Join(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

// A Checker decodes itself (it is also a yaml.Unmarshaler) and checks its
// own node, so that its problems are found, and said, with the rest of
// the document's. Types that keep another tool's keys (gnmic's targets)
// are Checkers.
type Checker interface {
	CheckYAML(n *yaml.Node, path string) []*Error
}

type checker struct {
	foreign bool
	errs    []*Error
	// aliased holds the anchored nodes checked through an alias, by Go
	// type: each is checked once, so nested aliases ("billion laughs")
	// cost no more than the document's size.
	aliased map[aliasKey]bool
}

type aliasKey struct {
	n *yaml.Node
	t reflect.Type
}

func (c *checker) fail(n *yaml.Node, path, format string, args ...any) {
	c.errs = append(c.errs, &Error{Path: path, Line: n.Line, Msg: fmt.Sprintf(format, args...)})
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	checkerType     = reflect.TypeFor[Checker]()
	durationType    = reflect.TypeFor[time.Duration]()
	timeType        = reflect.TypeFor[time.Time]()
	textType        = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func (c *checker) check(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		k := aliasKey{n, t}
		if c.aliased[k] {
			return
		}
		if c.aliased == nil {
			c.aliased = map[aliasKey]bool{}
		}
		c.aliased[k] = true
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // leaves the Go value as it is, whatever its type
	}
	for t.Kind() == reflect.Pointer {
		if t.Implements(unmarshalerType) {
			c.self(n, t, path)
			return
		}
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		c.self(n, reflect.PointerTo(t), path)
		return // the type says its own errors
	}
	switch {
	case t == durationType || t == timeType:
		c.scalar(n, t, path)
	case t.Kind() == reflect.Struct && reflect.PointerTo(t).Implements(textType):
		// A struct read from text (netip.Prefix, netip.Addr), as yaml.v3
		// decodes it.
		c.scalar(n, t, path)
	case t.Kind() == reflect.Struct:
		if !c.want(n, yaml.MappingNode, t, path) {
			return
		}
		fields, anyKey := structFields(t)
		c.mapping(n, path, func(key *yaml.Node, val *yaml.Node) {
			f, ok := fields[key.Value]
			if !ok {
				if anyKey != nil {
					c.check(val, anyKey, join(path, key.Value))
					return
				}
				c.unknown(key, val, path, fields)
				return
			}
			c.check(val, f, join(path, key.Value))
		})
	case t.Kind() == reflect.Map:
		if !c.want(n, yaml.MappingNode, t, path) {
			return
		}
		c.mapping(n, path, func(key *yaml.Node, val *yaml.Node) {
			c.check(key, t.Key(), path)
			c.check(val, t.Elem(), join(path, key.Value))
		})
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		if !c.want(n, yaml.SequenceNode, t, path) {
			return
		}
		for i, e := range n.Content {
			c.check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case t.Kind() == reflect.Interface:
	default:
		c.scalar(n, t, path)
	}
}

// self lets a type that decodes itself check its node, when it is a
// Checker (pt is a pointer type).
func (c *checker) self(n *yaml.Node, pt reflect.Type, path string) {
	if pt.Implements(checkerType) {
		c.errs = append(c.errs, reflect.New(pt.Elem()).Interface().(Checker).CheckYAML(n, path)...)
	}
}

// mapping calls f for each key and value of a mapping node, following
// merge keys (<<).
func (c *checker) mapping(n *yaml.Node, path string, f func(key, val *yaml.Node)) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			for v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			switch v.Kind {
			case yaml.MappingNode:
				c.mapping(v, path, f)
			case yaml.SequenceNode:
				for _, m := range v.Content {
					for m.Kind == yaml.AliasNode && m.Alias != nil {
						m = m.Alias
					}
					c.mapping(m, path, f)
				}
			}
			continue
		}
		f(k, v)
	}
}

func (c *checker) unknown(key, _ *yaml.Node, path string, fields map[string]reflect.Type) {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	best, d := closest(key.Value, names)
	// A near miss: one edit, or one in three letters for longer keys.
	near := best != "" && d <= max(1, len(key.Value)/3)
	if c.foreign && !near {
		return
	}
	if near {
		c.fail(key, path, "unknown key %q; did you mean %q?", key.Value, best)
		return
	}
	slices.Sort(names)
	c.fail(key, path, "unknown key %q; known keys: %s", key.Value, strings.Join(names, ", "))
}

// want checks a node's kind against a composite Go type.
func (c *checker) want(n *yaml.Node, kind yaml.Kind, t reflect.Type, path string) bool {
	if n.Kind == kind {
		return true
	}
	c.fail(n, path, "want %s, got %s", describe(t), found(n))
	return false
}

// scalar checks a scalar by decoding it into a value of its type.
func (c *checker) scalar(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.ScalarNode {
		c.fail(n, path, "want %s, got %s", describe(t), found(n))
		return
	}
	if t.Kind() == reflect.String {
		return // yaml.v3 turns any scalar into a string
	}
	p := reflect.New(t)
	if err := n.Decode(p.Interface()); err != nil {
		c.fail(n, path, "want %s, got %s", describe(t), found(n))
	}
}

// describe names what a Go type takes, in config words.
func describe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		return "a duration (like 10s, 1m30s)"
	case t == timeType:
		return "a time (RFC 3339)"
	case t.Kind() == reflect.Struct && reflect.PointerTo(t).Implements(textType):
		return "a " + t.Name() + " as text"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list of " + plural(t.Elem())
	case reflect.Map:
		return "a mapping of names to " + plural(t.Elem())
	case reflect.Struct:
		return "a mapping (key: value)"
	}
	return "a value"
}

// plural names the elements of a list or mapping.
func plural(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		return "durations"
	case t.Kind() == reflect.String:
		return "strings"
	case t.Kind() == reflect.Bool:
		return "true/false values"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Float64:
		return "numbers"
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		return "lists of " + plural(t.Elem())
	case t.Kind() == reflect.Map || t.Kind() == reflect.Struct:
		return "mappings"
	}
	return "values"
}

// found names what a node holds.
func found(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		switch n.Tag {
		case "!!int", "!!float":
			return "the number " + v
		case "!!bool":
			return v
		case "!!str":
			return "a string (" + strconv.Quote(v) + ")"
		}
		return strconv.Quote(v)
	}
	return "nothing"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// structFields maps a struct's YAML keys to their types, through inline
// fields; anyKey is the element type of an inline map, which takes every
// other key.
func structFields(t reflect.Type) (fields map[string]reflect.Type, anyKey reflect.Type) {
	fields = map[string]reflect.Type{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			if tag == "-" {
				continue
			}
			name, flags, _ := strings.Cut(tag, ",")
			if slices.Contains(strings.Split(flags, ","), "inline") {
				ft := f.Type
				for ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Map {
					anyKey = ft.Elem()
				} else {
					walk(ft)
				}
				continue
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name) // yaml.v3's default
			}
			fields[name] = f.Type
		}
	}
	walk(t)
	return fields, anyKey
}

// closest returns the name nearest to s and its edit distance.
func closest(s string, names []string) (string, int) {
	best, bd := "", 1<<30
	for _, n := range names {
		if d := distance(s, n); d < bd || d == bd && n < best {
			best, bd = n, d
		}
	}
	return best, bd
}

// distance is the Levenshtein distance, with a swap of two neighbours
// counted as one edit (the commonest typo).
func distance(a, b string) int {
	ra, rb := []rune(strings.ToLower(a)), []rune(strings.ToLower(b))
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError rewords a YAML syntax error ("yaml: line 3: mapping values
// are not allowed in this context").
func syntaxError(err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Line: line, Msg: "YAML syntax: " + m[2]}
	}
	return &Error{Msg: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
}

var goTypes = regexp.MustCompile(`(?:cannot unmarshal !!(\w+) ` + "`([^`]*)`" + ` into [\w.\[\]*]+|field (\S+) not found in type [\w.]+)`)

// plain strips Go type names from a yaml.v3 decode error.
func plain(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	var errs []error
	for _, e := range te.Errors {
		e = goTypes.ReplaceAllStringFunc(e, func(s string) string {
			m := goTypes.FindStringSubmatch(s)
			if m[3] != "" {
				return fmt.Sprintf("unknown key %q", m[3])
			}
			return fmt.Sprintf("%q (a %s) is not valid here", m[2], m[1])
		})
		errs = append(errs, errors.New(e))
	}
	return errors.Join(errs...)
}
