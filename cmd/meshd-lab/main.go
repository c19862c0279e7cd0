// Command meshd-lab runs meshd's namespace lab: BGP routers (FRR, gobgpd,
// BIRD) in network namespaces, meshd (bin/meshd) collecting from them and
// a keepalive probe (bin/meshd-probe) beside each, faults to inject, and a
// check of what meshd shows against each router's own view. It also
// carries the user-space wire that delays and drops the lab's frames, and
// the simulated gNMI fleet of the benchmarks: tools that the collector and
// the agent must not ship.
package main

import (
	"github.com/spf13/cobra"

	"github.com/meshd/meshd/internal/cli"
)

// Set by the linker: -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

func main() { cli.Execute(newRoot()) }

func newRoot() *cobra.Command {
	var flags cli.Flags
	root := cli.Root("meshd-lab", "meshd's namespace lab: BGP routers in network namespaces that meshd watches",
		cli.Build{Version: version, Commit: commit}, &flags)
	addLabCmds(root)
	root.AddCommand(newSimCmd())
	return root
}
