package gnmitarget

import (
	"context"
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/goyang/pkg/yang"

	"github.com/meshd/meshd/change"
)

// WithIdentityModules qualifies an identityref leaf, and the list key
// leaf that is a leafref to it, as WithEnumTypes does from generated
// enums; a leaf it does not name stays bare.
func TestWithIdentityModules(t *testing.T) {
	root := &yang.Entry{Name: "root", Kind: yang.DirectoryEntry, Dir: map[string]*yang.Entry{}}
	add := func(parent *yang.Entry, e *yang.Entry) *yang.Entry {
		e.Parent = parent
		if e.Kind == yang.DirectoryEntry {
			e.Dir = map[string]*yang.Entry{}
		}
		parent.Dir[e.Name] = e
		return e
	}
	fams := add(root, &yang.Entry{Name: "fams", Kind: yang.DirectoryEntry, Annotation: map[string]any{"schemapath": "/ex-mod/fams"}})
	fam := add(fams, &yang.Entry{Name: "fam", Kind: yang.DirectoryEntry, Key: "name", ListAttr: yang.NewDefaultListAttr()})
	add(fam, &yang.Entry{Name: "name", Kind: yang.LeafEntry, Type: &yang.YangType{Kind: yang.Yleafref, Path: "../state/name"}})
	state := add(fam, &yang.Entry{Name: "state", Kind: yang.DirectoryEntry})
	add(state, &yang.Entry{Name: "name", Kind: yang.LeafEntry, Type: &yang.YangType{Kind: yang.Yidentityref}})
	add(state, &yang.Entry{Name: "other", Kind: yang.LeafEntry, Type: &yang.YangType{Kind: yang.Yidentityref}})

	for _, tc := range []struct {
		name string
		opts []Option
		want string
	}{
		{"with", []Option{WithSchema(root), WithIdentityModules(map[string]map[string]string{"/fams/fam/state/name": {"V4": "ex-types"}})},
			`{"ex-mod:fams":{"fam":[{"name":"ex-types:V4","state":{"name":"ex-types:V4","other":"V4"}}]}}`},
		{"without", []Option{WithSchema(root)}, `{"ex-mod:fams":{"fam":[{"name":"V4","state":{"name":"V4","other":"V4"}}]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			s.Update("r1", []change.Update{
				leafUp(mustPath(t, "/fams/fam[name=V4]/state/name"), change.String("V4"), t0),
				leafUp(mustPath(t, "/fams/fam[name=V4]/state/other"), change.String("V4"), t0),
			})
			resp, err := s.Get(context.Background(), &gpb.GetRequest{Prefix: &gpb.Path{Target: "r1"},
				Path: []*gpb.Path{{}}, Encoding: gpb.Encoding_JSON_IETF})
			if err != nil {
				t.Fatal(err)
			}
			if got := string(resp.GetNotification()[0].GetUpdate()[0].GetVal().GetJsonIetfVal()); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
