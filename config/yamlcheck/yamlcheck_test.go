package yamlcheck

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type inner struct {
	Name  string        `yaml:"name"`
	Every time.Duration `yaml:"every"`
	On    *bool         `yaml:"on"`
}

type extra struct {
	Port uint16         `yaml:"port"`
	Nets []netip.Prefix `yaml:"nets"`
}

type doc struct {
	Items  []inner            `yaml:"items"`
	ByName map[string]*inner  `yaml:"by-name"`
	Ratio  float64            `yaml:"ratio"`
	Rest   map[string]string  `yaml:"rest"`
	Nested map[string][]int64 `yaml:"nested"`
	extra  `yaml:",inline"`
}

type open struct {
	Known string         `yaml:"known"`
	Other map[string]any `yaml:",inline"`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name, yaml string
		foreign    bool
		want       string // the error; "" for none
	}{
		{"empty", "", false, ""},
		{"comment only", "# nothing\n", false, ""},
		{"good", "items: [{name: a, every: 1s, on: true}]\nby-name: {x: {name: b}, y: }\nratio: 0.5\nport: 179\n", false, ""},
		{"unknown key in a list item", "items:\n  - name: a\n  - nmae: b\n", false, `items[1]: unknown key "nmae" (line 3); did you mean "name"?`},
		{"far unknown key", "items: [{colour: red}]\n", false, `items[0]: unknown key "colour" (line 1); known keys: every, name, on`},
		{"transposed letters", "items: [{nmae: a}]\n", false, `items[0]: unknown key "nmae" (line 1); did you mean "name"?`},
		{"inline struct", "prot: 1\n", false, `line 1: unknown key "prot"; did you mean "port"?`},
		{"number too big", "port: 70000\n", false, `port: want a whole number, 0 or more, got the number 70000 (line 1)`},
		{"negative unsigned", "port: -1\n", false, `port: want a whole number, 0 or more, got the number -1 (line 1)`},
		{"prefixes", "nets: [10.0.0.0/8, \"2001:db8::/32\"]\n", false, ""},
		{"not a prefix", "nets: [10.0.0.0]\n", false, `nets[0]: want a Prefix as text, got a string ("10.0.0.0") (line 1)`},
		{"a prefix as a mapping", "nets: [{prefix: 10.0.0.0/8}]\n", false, `nets[0]: want a Prefix as text, got a mapping (line 1)`},
		{"float", "ratio: half\n", false, `ratio: want a number, got a string ("half") (line 1)`},
		{"map of lists", "nested: {a: [1, x]}\n", false, `nested.a[1]: want a whole number, got a string ("x") (line 1)`},
		{"pointer bool", "by-name: {x: {on: maybe}}\n", false, `by-name.x.on: want true or false, got a string ("maybe") (line 1)`},
		{"map not list", "items: {name: a}\n", false, `items: want a list of mappings, got a mapping (line 1)`},
		{"list for a string", "rest: {a: [1]}\n", false, `rest.a: want a string, got a list (line 1)`},
		{"anchors and merge keys", "base: &b {name: a, every: 2s}\nitems: [{<<: *b, on: false}]\n", false, `line 1: unknown key "base"; known keys: by-name, items, nested, nets, port, ratio, rest`},
		{"merge key with a bad value", "items: [{<<: {every: soon}, name: a}]\n", false, `items[0].every: want a duration (like 10s, 1m30s), got a string ("soon") (line 1)`},
		{"foreign key skipped", "items: [{name: a, outputs: [x]}]\n", true, ""},
		{"foreign near miss", "items: [{nam: a}]\n", true, `items[0]: unknown key "nam" (line 1); did you mean "name"?`},
		{"syntax", "items: [\n", false, `line 1: YAML syntax: did not find expected node content`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d doc
			var opts []Option
			if tc.foreign {
				opts = append(opts, ForeignKeys())
			}
			err := Decode([]byte(tc.yaml), &d, opts...)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("error:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
	// An inline map takes every other key, checked against its type.
	var o open
	if err := Decode([]byte("known: a\nanything: [1]\n"), &o); err != nil || o.Other["anything"] == nil {
		t.Errorf("inline map: %v %+v", err, o)
	}
	// What decodes is what yaml.v3 gives.
	var d doc
	if err := Decode([]byte("base: &b {every: 2s}\n"), &d, ForeignKeys()); err != nil {
		t.Fatal(err)
	}
	if err := Decode([]byte("items: [{name: a, every: 90s}]\nport: 179\n"), &d); err != nil || d.Items[0].Every != 90*time.Second || d.Port != 179 {
		t.Errorf("decoded %+v, %v", d, err)
	}
}

// FuzzDecode: Decode never panics, and what it accepts yaml.v3's own
// strict decoder accepts too (the check lets no Go-typed error through),
// with the same result.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"items: [{name: a, every: 1s, on: true}]\nby-name: {x: {name: b}}\nratio: 0.5\nport: 179\n",
		"base: &b {name: a}\nitems: [{<<: *b}]\n",
		"nested: {a: [1, 2]}\nrest: {x: y}\n",
		"port: 70000\n", "items: {name: a}\n", "- 1\n", "? [a]\n: b\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d doc
		if err := Decode(b, &d); err != nil {
			return
		}
		var strict doc
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&strict); err != nil && !errors.Is(err, io.EOF) {
			if strings.Contains(err.Error(), "already defined") {
				return // duplicate keys: yaml.v3 refuses them only into structs
			}
			t.Fatalf("Decode accepted what yaml.v3 refuses: %v", err)
		}
		if !reflect.DeepEqual(d, strict) {
			t.Fatalf("Decode gave %+v, yaml.v3 %+v", d, strict)
		}
	})
}
