package yamlcheck

import (
	"testing"

	"gopkg.in/yaml.v3"
)

// evens decodes itself and refuses odd numbers, as a Checker.
type evens []int

func (evens) CheckYAML(n *yaml.Node, path string) []*Error {
	var errs []*Error
	for _, e := range n.Content {
		var v int
		if e.Decode(&v) != nil || v%2 != 0 {
			errs = append(errs, &Error{Path: path, Line: e.Line, Msg: "not even: " + e.Value})
		}
	}
	return errs
}

func (e *evens) UnmarshalYAML(n *yaml.Node) error {
	var v []int
	if err := n.Decode(&v); err != nil {
		return err
	}
	*e = v
	return nil
}

// TestChecker: a type that decodes itself and is a Checker has its
// problems reported with the rest of the document's, in line order.
func TestChecker(t *testing.T) {
	type doc struct {
		Name  string `yaml:"name"`
		Evens evens  `yaml:"evens"`
		More  *evens `yaml:"more"`
	}
	tests := []struct {
		name, in, err string
	}{
		{"good", "name: a\nevens: [2, 4]\nmore: [6]\n", ""},
		{"odd", "evens: [2, 3]\n", "evens: not even: 3 (line 1)"},
		{"odd and unknown", "evens: [2, 3]\nnmae: a\nmore:\n  - 5\n",
			"evens: not even: 3 (line 1)\nline 2: unknown key \"nmae\"; did you mean \"name\"?\nmore: not even: 5 (line 4)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d doc
			err := Decode([]byte(tc.in), &d)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.err {
				t.Fatalf("error:\n%s\nwant:\n%s", got, tc.err)
			}
			if tc.err == "" && (len(d.Evens) != 2 || d.More == nil || (*d.More)[0] != 6) {
				t.Errorf("decoded %+v", d)
			}
		})
	}
}
