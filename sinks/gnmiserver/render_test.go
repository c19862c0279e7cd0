package gnmiserver

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ondatra/gnmi/oc"
	"github.com/openconfig/ygot/ygot"
	"github.com/openconfig/ygot/ytypes"

	"github.com/meshd/meshd/change"
	mygot "github.com/meshd/meshd/ygot"
)

// Get's JSON_IETF is the merge core's structs as ygot renders them: ygot's
// own unmarshaller reads a whole router's Get back into structs equal to
// the core's (state, then config through the shadow paths), for the
// OpenConfig root and meshd's alike. (The served tree's own renderer left
// the meshd root unqualified, "meshd" for "meshd-bgp:meshd", and wrote
// uint64 leaves such as verdict/state/last-seen-bmp as JSON numbers, not
// the strings RFC 7951 §6.1 wants.)
func TestGetRenderedFromStructs(t *testing.T) {
	f := start(t, 1024)
	at := time.Now()
	const addr = "192.0.2.1"
	chs := afiSafiPrefixes("r1", addr, 3, at)
	// A config leaf: the compressed structs keep it only as a shadow path.
	chs = append(chs, change.Change{Router: "r1", Path: change.NeighborPath("default", addr, "config", "description"),
		Value: change.String("to r2"), Time: at, Source: change.SourceGNMI})
	if res := f.core.Apply(chs); res.Err != nil || res.Invalid > 0 {
		t.Fatalf("Apply: %+v", res)
	}
	resp := f.waitGet(t, "r1", "/", gpb.Encoding_JSON_IETF, "Get /", func(r *gpb.GetResponse, err error) bool {
		return err == nil && strings.Contains(string(r.GetNotification()[0].GetUpdate()[0].GetVal().GetJsonIetfVal()), "to r2")
	})
	b := resp.GetNotification()[0].GetUpdate()[0].GetVal().GetJsonIetfVal()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"openconfig-network-instance:network-instances", "meshd-bgp:meshd"} {
		if top[m] == nil {
			t.Errorf("Get / has no member %s: %.300s", m, b)
		}
	}

	gotOC, gotCfg, gotM := &oc.Root{}, &oc.Root{}, &mygot.Root{}
	if err := oc.Unmarshal(b, gotOC, &ytypes.IgnoreExtraFields{}); err != nil {
		t.Fatalf("ygot cannot read the OpenConfig part back: %v\n%s", err, b)
	}
	if err := oc.Unmarshal(b, gotCfg, &ytypes.IgnoreExtraFields{}, &ytypes.PreferShadowPath{}); err != nil {
		t.Fatalf("ygot cannot read the config back: %v", err)
	}
	if err := mygot.Unmarshal(b, gotM, &ytypes.IgnoreExtraFields{}); err != nil {
		t.Fatalf("ygot cannot read the meshd part back: %v\n%s", err, b)
	}
	f.core.View("r1", func(wantOC *oc.Root, wantM *mygot.Root) {
		for _, c := range []struct {
			name      string
			got, want ygot.GoStruct
		}{{"OpenConfig", gotOC, wantOC}, {"meshd", gotM, wantM}} {
			n, err := ygot.Diff(c.want, c.got)
			if err != nil {
				t.Fatalf("%s: Diff: %v", c.name, err)
			}
			if len(n.GetUpdate())+len(n.GetDelete()) > 0 {
				t.Errorf("%s read back from Get differs from the core's structs: %v", c.name, n)
			}
		}
	})
	nb := gotCfg.GetNetworkInstance("default").GetProtocol(oc.PolicyTypes_INSTALL_PROTOCOL_TYPE_BGP, "BGP").GetBgp().GetNeighbor(addr)
	if nb.GetDescription() != "to r2" {
		t.Errorf("config/description read back = %q, want %q", nb.GetDescription(), "to r2")
	}

	// The data types: CONFIG is the config leaves (and the keys that
	// place them), STATE none of them.
	const nbr = "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=192.0.2.1]"
	for _, tc := range []struct {
		typ        gpb.GetRequest_DataType
		has, hasNo string
	}{
		{gpb.GetRequest_CONFIG, `"description":"to r2"`, "session-state"},
		{gpb.GetRequest_STATE, "session-state", "to r2"},
		{gpb.GetRequest_ALL, "session-state", ""},
	} {
		p := change.MustPath(nbr)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := f.c.Get(ctx, &gpb.GetRequest{Prefix: &gpb.Path{Target: "r1"}, Path: []*gpb.Path{p}, Encoding: gpb.Encoding_JSON_IETF, Type: tc.typ})
		cancel()
		if err != nil {
			t.Fatalf("Get %v: %v", tc.typ, err)
		}
		s := string(resp.GetNotification()[0].GetUpdate()[0].GetVal().GetJsonIetfVal())
		if !strings.Contains(s, tc.has) || (tc.hasNo != "" && strings.Contains(s, tc.hasNo)) {
			t.Errorf("Get %v of the neighbor = %s; want %q in it and not %q", tc.typ, s, tc.has, tc.hasNo)
		}
		if tc.typ == gpb.GetRequest_ALL && !strings.Contains(s, "to r2") {
			t.Errorf("Get ALL of the neighbor = %s; want the config leaf too", s)
		}
	}
}
