package translate

import (
	"os"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
)

// FuzzNotification feeds arbitrary notifications (as protobuf bytes) and
// arbitrary JSON values through the translator: it must never panic, and
// every change it produces must have a router and a path.
func FuzzNotification(f *testing.F) {
	for _, file := range []string{"testdata/srlinux/neighbors.textproto", "testdata/openconfig/neighbors.textproto"} {
		for _, m := range testenv.ReadRecording(f, file) {
			if n := m.GetUpdate(); n != nil {
				b, _ := proto.Marshal(n)
				f.Add(b, "")
			}
		}
	}
	if raw, err := os.ReadFile("testdata/srlinux/neighbors.textproto"); err == nil {
		f.Add([]byte{}, string(raw[:min(len(raw), 200)]))
	}
	f.Add([]byte{}, `{"afi-safi":[{"afi-safi-name":"x"}]}`)
	f.Add([]byte{}, `[1,2,{"a":null}]`)
	tr := newTranslator(f)
	f.Fuzz(func(t *testing.T, pb []byte, js string) {
		var res Result
		n := &gpb.Notification{}
		if err := proto.Unmarshal(pb, n); err == nil {
			tr.Notification("r", n, change.SourceGNMI, time.Unix(0, 0), &res)
		}
		// The same JSON at a container, a list, a leaf and a native path.
		for _, p := range []*gpb.Path{
			change.NeighborPath("default", "10.0.0.1"),
			change.NeighborPath("default", "10.0.0.1", "afi-safis"),
			change.NeighborPath("default", "10.0.0.1", "state", "peer-as"),
			change.MustPath("/network-instance[name=default]/protocols/bgp/neighbor[peer-address=1.1.1.1]"),
			change.MustPath("/network-instance[name=default]/protocols/bgp"),
		} {
			tr.Notification("r", &gpb.Notification{Update: []*gpb.Update{{Path: p, Val: &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: []byte(js)}}}}}, change.SourceGNMI, time.Unix(0, 0), &res)
		}
		for _, c := range res.Changes {
			if c.Router != "r" || c.Path == nil {
				t.Fatalf("bad change %+v", c)
			}
		}
		for _, u := range res.Unknown {
			if !strings.HasPrefix(u, "/") || strings.ContainsAny(u, "[]") {
				t.Fatalf("unknown label %q is not a key-free path", u)
			}
		}
	})
}
