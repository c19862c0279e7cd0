package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/meshd/meshd/bench/gnmisim"
)

// The fleet simulator is a bench and lab tool: it lives here, not in the
// collector or the agent.
func newSimCmd() *cobra.Command {
	var cfg gnmisim.Config
	var file string
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Serve a fleet of simulated gNMI targets with BGP neighbors (for benchmarks and the lab)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, err := gnmisim.Start(ctx, cfg)
			if err != nil {
				return err
			}
			if file != "" {
				if err := s.WriteTargetsFile(file); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "meshd-lab sim: %d targets × %d neighbors, %.0f updates/s each; targets file %s\n",
				cfg.Targets, cfg.Neighbors, cfg.Rate, file)
			<-ctx.Done()
			s.Wait()
			fmt.Fprintf(cmd.ErrOrStderr(), "meshd-lab sim: %d leaf updates sent\n", s.Sent())
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Targets, "targets", 10, "simulated routers")
	f.IntVar(&cfg.Neighbors, "neighbors", 10, "BGP neighbors per router")
	f.Float64Var(&cfg.Rate, "rate", 10, "leaf updates per second per router after sync")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1", "address to listen on")
	f.IntVar(&cfg.BasePort, "base-port", 0, "first port (one per router); 0 lets the kernel choose")
	f.StringVar(&cfg.Prefix, "name-prefix", "sim", "router name prefix")
	f.StringVar(&file, "targets-file", "sim-targets.yaml", "write a gnmic-format targets file for the fleet here")
	return cmd
}
