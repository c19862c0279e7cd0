//go:build integration

package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
)

// `meshd get` against a server of four routers labels each router's data
// as openconfig/gnmi's reference client, gnmi_cli, shows it for the same
// Get: by the target in each notification's prefix. With --target, both
// get the one router.
func TestGetRouterLabelsMatchGNMICLI(t *testing.T) {
	bin := testenv.Binary(t, "gnmi_cli")
	addr := startFleetTarget(t)
	const path = "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=10.0.0.9]/state/peer-as"
	for _, target := range []string{"", "r2"} {
		t.Run("target="+target, func(t *testing.T) {
			req := &gpb.GetRequest{Path: []*gpb.Path{change.MustPath(path)}, Encoding: gpb.Encoding_PROTO}
			args := []string{"-a", addr, "--insecure", "-e", "proto", "--path", path}
			if target != "" {
				req.Prefix = &gpb.Path{Target: target}
				args = append(args, "--target", target)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "-address", addr, "-insecure", "-get", "-proto", prototext.Format(req))
			var cliOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &cliOut, &cliOut
			if err := cmd.Run(); err != nil {
				t.Fatalf("gnmi_cli -get: %v\n%s", err, cliOut.String())
			}
			resp := &gpb.GetResponse{}
			if err := prototext.Unmarshal(cliOut.Bytes(), resp); err != nil {
				t.Fatalf("gnmi_cli printed no GetResponse: %v\n%s", err, cliOut.String())
			}
			want := map[string]float64{}
			for _, n := range resp.GetNotification() {
				for _, u := range n.GetUpdate() {
					want[n.GetPrefix().GetTarget()] = float64(u.GetVal().GetUintVal())
				}
			}
			if n := map[string]int{"": 4, "r2": 1}[target]; len(want) != n {
				t.Fatalf("gnmi_cli shows %d routers (%v), want %d\n%s", len(want), want, n, cliOut.String())
			}

			out, err := runCmd(t, newGetCmd(), args...)
			if err != nil {
				t.Fatalf("meshd get: %v\n%s", err, out)
			}
			got := map[string]float64{}
			for _, r := range jsonLines(t, out) {
				router, _ := r["router"].(string)
				v, _ := r["value"].(float64)
				got[router] = v
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("meshd get: router → peer-as %v; gnmi_cli: target → peer-as %v\nmeshd get printed:\n%s\ngnmi_cli printed:\n%s", got, want, out, cliOut.String())
			}
		})
	}
}
