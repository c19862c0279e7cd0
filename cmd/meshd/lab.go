package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshd/meshd/clab/netlab"
	"github.com/meshd/meshd/internal/sessions"
	"github.com/meshd/meshd/internal/tools"
)

func init() { register(newLabCmd) }

func newLabCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run meshd's namespace lab: BGP routers in network namespaces that meshd watches",
	}
	cmd.PersistentFlags().StringVar(&dir, "dir", netlab.DefaultDir, "folder for the lab's state, configs and logs")

	var routers int
	var watch time.Duration
	up := &cobra.Command{
		Use:   "up",
		Short: "Bring the lab up and show a live table of what meshd sees (Ctrl-C leaves the lab running)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			l, err := netlab.Up(ctx, netlab.Options{Routers: routers, Dir: dir, Bin: tools.Look, Progress: out})
			if err != nil {
				return err
			}
			self, _ := os.Executable()
			if err := l.StartForwarder(self); err != nil {
				return err
			}
			fmt.Fprintf(out, `
lab is up (%d routers). meshd runs in namespace %s; from this host:
  gNMI target    127.0.0.1:%d   (gnmic -a 127.0.0.1:%d --insecure get --path /network-instances)
  InfluxDB       http://127.0.0.1:%d  database "meshd"
  metrics        http://127.0.0.1:%d/metrics   sessions http://127.0.0.1:%d/api/sessions
  dashboards     dashboards/ (Grafana and Chronograf, InfluxQL)
  logs, configs  %s
  faults         meshd lab fault reset r1 r2 | down r1 r2 | up r1 r2 | delay r1 r2 20ms |
                 loss r1 r2 5%% | clear r1 r2 | reroute r1 r3 r2 | hijack r3 10.200.1.0/25
  tear down      meshd lab down
`, routers, netlab.MgmtNS, netlab.GNMIPort, netlab.GNMIPort, netlab.InfluxPort, netlab.HTTPPort, netlab.HTTPPort, dir)
			return watchTable(ctx, out, watch)
		},
	}
	up.Flags().IntVar(&routers, "routers", 4, "number of routers (2 to 60)")
	up.Flags().DurationVar(&watch, "watch", 0, "show the table for this long and return (0: until Ctrl-C)")

	down := &cobra.Command{
		Use:   "down",
		Short: "Stop and remove everything the lab made (works after a crash too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return netlab.Down(dir, cmd.OutOrStdout())
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Print the sessions meshd sees in the lab",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := netlab.Load(dir); err != nil {
				return err
			}
			rows, err := labRows()
			if err != nil {
				return err
			}
			sessions.WriteTable(cmd.OutOrStdout(), rows)
			return nil
		},
	}
	fault := &cobra.Command{
		Use:   "fault KIND R1 R2 [VALUE] | fault hijack R PREFIX",
		Short: "Inject a fault: down, up, reset, delay R1 R2 20ms, loss R1 R2 5%, clear R1 R2, reroute R1 R2 R3, hijack R3 PREFIX",
		Long: `Faults between two directly linked routers: down and up (the link), reset (the BGP
sessions), delay and loss (frames from R1 to R2; 'delay R1 R2 0' or 'clear R1 R2' removes
them). reroute R1 R2 R3 sends R1-R2 traffic through R3, an extra hop (unroute R1 R2 R3
undoes it; R3 must be linked to both, as chords give with 5 or more routers). hijack R
PREFIX makes router R originate PREFIX.`,
		Args: cobra.RangeArgs(3, 4),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := netlab.Load(dir)
			if err != nil {
				return err
			}
			l.SetBin(tools.Look)
			switch args[0] {
			case "hijack":
				return l.Hijack(args[1], args[2])
			case "reroute", "unroute":
				if len(args) != 4 {
					return fmt.Errorf("%s R1 R2 VIA: name the router to go through", args[0])
				}
				return l.Reroute(args[1], args[2], args[3], args[0] == "unroute")
			}
			arg := ""
			if len(args) == 4 {
				arg = args[3]
			}
			return l.Fault(args[0], args[1], args[2], arg)
		},
	}
	wireCmd := &cobra.Command{
		Use:    "wire",
		Hidden: true,
		Short:  "Bridge the lab's links in user space, with delay and loss (started by lab up)",
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return netlab.RunWire(ctx, dir)
		},
	}
	forward := &cobra.Command{
		Use:    "forward",
		Hidden: true,
		Short:  "Forward the lab's ports to this host's loopback (started by lab up)",
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return netlab.Forward(ctx)
		},
	}
	cmd.AddCommand(up, down, status, fault, forward, wireCmd, newLabVerifyCmd(&dir))
	return cmd
}

func labRows() ([]sessions.Row, error) {
	c := netlab.NSHTTPClient(netlab.MgmtNS)
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/api/sessions", netlab.HTTPPort))
	if err != nil {
		return nil, fmt.Errorf("meshd in the lab: %w", err)
	}
	defer resp.Body.Close()
	var rows []sessions.Row
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil {
		return nil, fmt.Errorf("meshd in the lab: sessions: %w", err)
	}
	return rows, nil
}

func watchTable(ctx context.Context, w io.Writer, d time.Duration) error {
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		rows, err := labRows()
		fmt.Fprintf(w, "\n%s  (refreshes every 2s; Ctrl-C to stop watching, the lab stays up)\n", time.Now().Format("15:04:05"))
		if err != nil {
			fmt.Fprintln(w, err)
		} else {
			sessions.WriteTable(w, rows)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
