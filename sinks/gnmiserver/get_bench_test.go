package gnmiserver

import (
	"context"
	"fmt"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/merge"
	"github.com/meshd/meshd/stage"
)

// BenchmarkGet times a JSON_IETF Get of a router of 100 neighbors, whole
// and one neighbor's state, rendered by ygot from the merge core's
// structs ("ygot") and, for comparison, from the served tree's own leaves
// ("leaves": the sink given a state source without stage.Trees).
func BenchmarkGet(b *testing.B) {
	cfg := Config{Listen: "127.0.0.1:0"}
	dopts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	for _, mode := range []struct {
		name string
		snap func(*merge.Core) stage.Snapshotter
	}{
		{"ygot", nil},
		{"leaves", func(c *merge.Core) stage.Snapshotter { return struct{ stage.Snapshotter }{c} }},
	} {
		f := startHook(b, 1<<16, nil, mode.snap, cfg, dopts)
		at := time.Now()
		for i := range 100 {
			if res := f.core.Apply(afiSafiPrefixes("r1", fmt.Sprintf("192.0.2.%d", i+1), uint64(i), at)); res.Err != nil {
				b.Fatal(res.Err)
			}
		}
		last := "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=192.0.2.100]/state"
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := f.get(b, "r1", last, gpb.Encoding_PROTO); err == nil {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the sink does not serve the last neighbor after 10s")
			}
			time.Sleep(10 * time.Millisecond)
		}
		for _, q := range []struct{ name, path string }{{"router", "/"}, {"neighbor-state", last}} {
			req := &gpb.GetRequest{Prefix: &gpb.Path{Target: "r1"}, Path: []*gpb.Path{change.MustPath(q.path)}, Encoding: gpb.Encoding_JSON_IETF}
			b.Run(mode.name+"/"+q.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := f.c.Get(context.Background(), req); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
