// Command meshd is the collector: it watches every BGP session of a fleet
// through gNMI, BMP and the routers' keepalive probes (meshd-probe),
// merges them per session, stores history in InfluxDB and re-serves the
// merged state over gNMI; `get`, `subscribe` and `bmp decode` are its
// tools. The on-box agent is cmd/meshd-probe and the namespace lab
// cmd/meshd-lab, so neither rides in this binary. This package only parses
// flags and config and wires the parts together.
package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/meshd/meshd/internal/cli"
)

// Set by the linker: -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

var subcommands []func() *cobra.Command

// register adds a subcommand; each subcommand's file calls it from init.
func register(f func() *cobra.Command) { subcommands = append(subcommands, f) }

func main() {
	var flags cli.Flags
	root := cli.Root("meshd", "meshd tells network operators how every BGP session in their fleet is doing",
		cli.Build{Version: version, Commit: commit}, &flags)
	for _, f := range subcommands {
		root.AddCommand(f())
	}
	cli.Execute(root)
}

// newLogger is the logger `run` builds from its config file.
func newLogger(level, format string, w *os.File) (*slog.Logger, error) {
	return cli.NewLogger(level, format, w)
}
