// Command meshd-probe is meshd's on-box agent: it runs on a router (or in
// its network namespace), watches BGP keepalives and their ACKs on the
// wire, and serves per-peer RTT, jitter, loss and hop changes, and
// optionally the local BGP daemon's neighbor state, over gNMI to the
// collector (cmd/meshd). It carries neither the collector's sinks, the
// lab nor the simulator: TestBinaryDeps in cmd keeps it so.
package main

import (
	"github.com/meshd/meshd/internal/cli"
)

// Set by the linker: -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

func main() {
	var flags cli.Flags
	root := probeCommand(&probeFlags{})
	root.Use = "meshd-probe"
	cli.Execute(cli.Adopt(root, cli.Build{Version: version, Commit: commit}, &flags))
}
