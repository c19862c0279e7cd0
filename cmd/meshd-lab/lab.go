package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshd/meshd/clab/netlab"
	"github.com/meshd/meshd/internal/sessions"
	"github.com/meshd/meshd/internal/tools"
)

// addLabCmds adds the lab's commands to the root command cmd.
func addLabCmds(cmd *cobra.Command) {
	var dir string
	cmd.PersistentFlags().StringVar(&dir, "dir", netlab.DefaultDir, "folder for the lab's state, configs and logs")

	var routers, replicas int
	var rpki bool
	var watch time.Duration
	up := &cobra.Command{
		Use:   "up",
		Short: "Bring the lab up and show a live table of what meshd sees (Ctrl-C leaves the lab running)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			l, err := netlab.Up(ctx, netlab.Options{Routers: routers, Replicas: replicas, RPKI: rpki, Dir: dir, Bin: tools.Look, Progress: out})
			if err != nil {
				return err
			}
			if err := l.StartForwarder(); err != nil {
				return err
			}
			fmt.Fprint(out, labBanner(l.Topo, replicas, rpki, dir))
			return watchTable(ctx, out, watch, 2*time.Second, labRows(dir), func() bool { return netlab.IsUp(dir) })
		},
	}
	up.Flags().IntVar(&routers, "routers", 4, "number of routers (2 to 60)")
	up.Flags().IntVar(&replicas, "replicas", 0, fmt.Sprintf("run etcd and this many meshd replicas sharing the routers (cluster mode, 2 to %d; 0: one meshd)", netlab.MaxReplicas))
	up.Flags().BoolVar(&rpki, "rpki", false, "run an RPKI cache (stayrtr) with a VRP for each router's prefixes, and have meshd validate routes and watch the prefixes (alerts)")
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
			rows, note, err := labRows(dir)()
			if err != nil {
				return err
			}
			sessions.WriteTable(cmd.OutOrStdout(), rows)
			if note != "" {
				fmt.Fprintln(cmd.OutOrStdout(), note)
			}
			return nil
		},
	}
	fault := &cobra.Command{
		Use:   "fault KIND R1 R2 [VALUE|VIA] | fault hijack R PREFIX | fault KIND-replica N [DURATION]",
		Short: "Inject a fault: " + netlab.FaultNames(),
		Long:  faultHelp(),
		// Flags go before KIND, so that a value such as -5ms reaches the
		// fault's own check ("a delay cannot be negative") instead of
		// being taken for a flag.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				if strings.HasPrefix(a, "--") {
					return fmt.Errorf("%s: flags go before the fault's kind (meshd-lab fault --dir D delay r1 r2 20ms)", a)
				}
			}
			f, err := netlab.ParseFault(args)
			if err != nil {
				return err
			}
			l, err := netlab.Load(dir)
			if err != nil {
				return err
			}
			l.SetBin(tools.Look)
			// Ctrl-C during pause-replica continues the replica early.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if f.Kind == "pause-replica" && f.Pause > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "pausing replica %d for %v (Ctrl-C continues it early)\n", f.Replica, f.Pause)
			}
			msg, err := l.Apply(ctx, f)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	fault.Flags().SetInterspersed(false)
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
			return netlab.Forward(ctx, dir)
		},
	}
	balancer := &cobra.Command{
		Use:    "bmp-balancer",
		Hidden: true,
		Short:  "Pass the routers' BMP connections to live replicas (started by lab up --replicas)",
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return netlab.ServeBalancer(ctx, dir)
		},
	}
	cmd.AddCommand(up, down, status, fault, forward, wireCmd, balancer, newLabVerifyCmd(&dir))
}

// labRows reads the sessions meshd shows in the lab in dir, with a note
// to print under them when a replica did not answer (its routers are
// missing from the table, not gone).
func labRows(dir string) func() ([]sessions.Row, string, error) {
	return func() ([]sessions.Row, string, error) {
		l, err := netlab.Load(dir)
		if err != nil {
			return nil, "", err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rows, unreachable, err := l.Sessions(ctx)
		note := ""
		if unreachable != "" {
			note = fmt.Sprintf("not shown: the sessions of the replicas at %s, which did not answer", unreachable)
		}
		return rows, note, err
	}
}

// labBanner says where everything is and which faults this lab's
// topology takes (a reroute needs a router linked to both ends).
func labBanner(topo *netlab.Topology, replicas int, rpki bool, dir string) string {
	var b strings.Builder
	where := "meshd runs in namespace " + netlab.MgmtNS
	if replicas > 0 {
		where = fmt.Sprintf("%d meshd replicas share them through etcd, in namespaces %s to %s; each answers for the fleet",
			replicas, netlab.ReplicaNS(1), netlab.ReplicaNS(replicas))
	}
	fmt.Fprintf(&b, `
lab is up (%d routers). %s; from this host:
  status page    http://127.0.0.1:%d/   (the fleet, each session's RTT plots, events; live)
  gNMI target    127.0.0.1:%d   (gnmic -a 127.0.0.1:%d --insecure get --path /network-instances)
  InfluxDB       http://127.0.0.1:%d  database "meshd"
  metrics        http://127.0.0.1:%d/metrics   sessions http://127.0.0.1:%d/api/sessions
  dashboards     dashboards/ (Grafana and Chronograf, InfluxQL)
  logs, configs  %s
`, len(topo.Routers), where, netlab.HTTPPort, netlab.GNMIPort, netlab.GNMIPort, netlab.InfluxPort, netlab.HTTPPort, netlab.HTTPPort, dir)
	lab := "meshd-lab"
	if dir != netlab.DefaultDir {
		lab += " --dir " + dir
	}
	for i, ex := range topo.FaultExamples() {
		label := ""
		if i == 0 {
			label = "faults"
		}
		fmt.Fprintf(&b, "  %-14s %s fault %s\n", label, lab, ex)
	}
	if rpki {
		r := topo.Routers[min(2, len(topo.Routers))-1]
		h := topo.Routers[min(3, len(topo.Routers))-1]
		fmt.Fprintf(&b, "  %-14s %s fault invalid %s\n", "alerts", lab, r.Name)
		fmt.Fprintf(&b, "  %-14s %s fault withdraw %s %s\n", "", lab, r.Name, r.InvalidPrefix())
		fmt.Fprintf(&b, "  %-14s %s fault withdraw %s 10.200.1.0/25\n", "", lab, h.Name)
		fmt.Fprintf(&b, "  %-14s (invalid: %s's %s, RPKI-invalid by length; the hijack: sub-prefix and rpki-invalid; withdraw clears them)\n", "", r.Name, r.InvalidPrefix())
		fmt.Fprintf(&b, "  %-14s RPKI cache 127.0.0.1:%d in %s, serving %s/vrps.json (meshd follows edits)\n", "", netlab.RTRPort, netlab.MgmtNS, dir)
	}
	if _, _, _, ok := topo.RerouteExample(); !ok {
		fmt.Fprintf(&b, "  %-14s (reroute needs a router linked to both ends: --routers 5 or more)\n", "")
	}
	if replicas > 0 {
		n := min(2, replicas)
		for _, ex := range []string{fmt.Sprintf("kill-replica %d", n), fmt.Sprintf("start-replica %d", n),
			fmt.Sprintf("pause-replica %d 30s", n), fmt.Sprintf("partition-replica %d", n), fmt.Sprintf("heal-replica %d", n)} {
			fmt.Fprintf(&b, "  %-14s %s fault %s\n", "", lab, ex)
		}
		fmt.Fprintf(&b, "  %-14s meshd cluster status --etcd http://127.0.0.1:%d --targets\n", "cluster", netlab.EtcdPort)
	}
	fmt.Fprintf(&b, "  %-14s %s fault --help (all %d kinds)\n", "", lab, len(netlab.FaultKinds))
	fmt.Fprintf(&b, "  %-14s %s down\n", "tear down", lab)
	return b.String()
}

// faultHelp lists every fault kind from the one table the parser reads.
func faultHelp() string {
	var b strings.Builder
	b.WriteString("Faults between two routers of the running lab, or on its meshd replicas (flags go before KIND):\n\n")
	for _, k := range netlab.FaultKinds {
		fmt.Fprintf(&b, "  %-22s %s\n", k.Usage(), k.Help)
	}
	return b.String()
}

// watchTable prints the sessions every interval until ctx ends, d passes
// (when not 0), or the lab is gone: after `meshd-lab down` it says so once
// and returns, and an error that repeats is printed once.
func watchTable(ctx context.Context, w io.Writer, d, interval time.Duration, rowsOf func() ([]sessions.Row, string, error), up func() bool) error {
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	lastErr := ""
	for {
		if !up() {
			fmt.Fprintln(w, "\nthe lab is down (meshd-lab down): stopped watching")
			return nil
		}
		rows, note, err := rowsOf()
		switch {
		case err == nil:
			lastErr = ""
			fmt.Fprintf(w, "\n%s  (refreshes every %v; Ctrl-C to stop watching, the lab stays up)\n", time.Now().Format("15:04:05"), interval)
			sessions.WriteTable(w, rows)
			if note != "" {
				fmt.Fprintln(w, note)
			}
		case err.Error() != lastErr:
			lastErr = err.Error()
			fmt.Fprintf(w, "\n%s  %v (retrying every %v)\n", time.Now().Format("15:04:05"), err, interval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
