package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshd/meshd/clab/netlab"
	"github.com/meshd/meshd/internal/tools"
)

// errMismatch makes `meshd-lab verify` exit non-zero after printing its
// report.
var errMismatch = errors.New("meshd disagrees with the routers")

func newLabVerifyCmd(dir *string) *cobra.Command {
	var wait time.Duration
	var dump string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Compare what meshd shows with each router's own view; exit non-zero on any mismatch",
		Long: `verify reads every lab router's own state (FRR through vtysh, gobgpd through its
API, BIRD through birdc): each session's state, peer AS, established transitions
and prefixes received, accepted and sent per AFI-SAFI, and the origin AS and AS
path of every route. It compares them with meshd's gNMI target, InfluxDB's last
values and /api/sessions, prints every mismatch (router, neighbor, AFI-SAFI,
field, the router's value, meshd's value in each view) and every check that
cannot be made and why, and exits non-zero if there is a mismatch.

Each round reads the routers, then meshd, then the routers again; a value of
meshd's agrees if it is the router's value before or after (or, for a number,
between them). Rounds repeat until one agrees or --wait passes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			l, err := netlab.Load(*dir)
			if err != nil {
				return err
			}
			l.SetBin(tools.Look)
			rep, err := l.Verify(ctx, netlab.VerifyOptions{Wait: wait, Dump: dump, Progress: cmd.ErrOrStderr()})
			if rep != nil {
				rep.Write(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			if len(rep.Mismatches) > 0 {
				cmd.SilenceUsage = true
				return fmt.Errorf("%w: %d mismatches", errMismatch, len(rep.Mismatches))
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Second, "re-check until everything agrees or this long has passed")
	cmd.Flags().StringVar(&dump, "dump", "", "write each router's raw output of the last round into this folder")
	return cmd
}
