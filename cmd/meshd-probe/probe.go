package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/spf13/cobra"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/gnmitarget"
	"github.com/meshd/meshd/probe"
	"github.com/meshd/meshd/probe/bgpstate"
	"github.com/meshd/meshd/probe/ocschema"
	mygot "github.com/meshd/meshd/ygot"
)

type probeFlags struct {
	cfg                probe.Config
	locals             []string
	json               bool
	listen             string
	tlsCert, tlsKey    string
	tlsCA              string
	username, password string
	allowInsecure      bool
	bgp                bgpstate.Config
}

// probeCommand is the probe command parsing its flags into f.
func probeCommand(f *probeFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "meshd-probe",
		Short: "Run the on-box keepalive probe: RTT, jitter, loss and hop changes of BGP sessions, served over gNMI",
		Long: `meshd-probe watches BGP keepalives and their ACKs on the wire (AF_PACKET with a kernel
BPF filter for TCP port 179; needs CAP_NET_RAW, and CAP_SYS_ADMIN for --netns) or in a
pcap file, and serves per-peer statistics over gNMI under meshd's probe model
(/meshd/network-instances/network-instance/neighbors/neighbor/probe/state).

With --bgp frr|gobgp it also polls the local BGP daemon (FRR through vtysh, gobgpd
through its gRPC API) and serves its neighbors' state as OpenConfig leaves
(/network-instances/.../bgp/neighbors/neighbor/state and afi-safis/.../prefixes).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runProbe(ctx, cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.cfg.Router, "router", "", "router name: the gNMI target name and \"router\" in JSON (default: host name)")
	fl.StringVar(&f.cfg.NetworkInstance, "network-instance", "default", "network instance the sessions belong to")
	fl.StringVar(&f.cfg.Netns, "netns", "", "capture inside this network namespace (name in /run/netns, or a path)")
	fl.StringSliceVar(&f.cfg.Interfaces, "interface", nil, "capture on these interfaces (default: all)")
	fl.Uint16Var(&f.cfg.Port, "port", 179, "BGP TCP port")
	fl.StringVar(&f.cfg.Pcap, "pcap", "", "read this pcap or pcapng file instead of capturing")
	fl.StringSliceVar(&f.locals, "local", nil, "the local speaker's addresses (default: the namespace's interface addresses)")
	fl.IntVar(&f.cfg.Window, "window", 100, "RTT samples in the sliding window")
	fl.DurationVar(&f.cfg.WindowAge, "window-age", 10*time.Minute, "oldest sample kept in the window")
	fl.DurationVar(&f.cfg.LossTimeout, "loss-timeout", 10*time.Second, "the most a keepalive may wait for its ACK before it counts as lost (below it: max(1s, 3×RTT))")
	fl.BoolVar(&f.json, "json", false, "print one JSON line per sample and per path change")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:57400", "gNMI target address (empty: do not serve)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "gNMI TLS certificate file")
	fl.StringVar(&f.tlsKey, "tls-key", "", "gNMI TLS key file")
	fl.StringVar(&f.tlsCA, "tls-ca", "", "require client certificates signed by this CA")
	fl.StringVar(&f.username, "username", "", "gNMI username clients must send")
	fl.StringVar(&f.password, "password", "", "gNMI password clients must send (default: $MESHD_PROBE_PASSWORD, which keeps it out of ps)")
	fl.BoolVar(&f.allowInsecure, "allow-insecure", false, "serve gNMI beyond loopback without TLS and credentials")
	fl.StringVar(&f.bgp.Daemon, "bgp", "", "also serve the local BGP daemon's neighbor state: frr or gobgp")
	fl.StringVar(&f.bgp.VtySocket, "bgp-socket", "", "FRR's vty socket directory (vtysh --vty_socket; default: FRR's own)")
	fl.StringVar(&f.bgp.Vtysh, "vtysh", "vtysh", "vtysh binary for --bgp frr")
	fl.StringVar(&f.bgp.GoBGPAPI, "gobgp-api", "127.0.0.1:50051", "gobgpd's gRPC API address for --bgp gobgp")
	fl.DurationVar(&f.bgp.Interval, "bgp-interval", 5*time.Second, "how often to poll the BGP daemon")
	return cmd
}

// check refuses flags that cannot work together, before anything starts:
// the checks a deployment's command line (the containerlab twin's, say)
// must pass. It fills in what the flags leave to defaults.
func (f *probeFlags) check() error {
	f.cfg.LocalAddrs = f.cfg.LocalAddrs[:0]
	for _, s := range f.locals {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("--local %q: %w", s, err)
		}
		f.cfg.LocalAddrs = append(f.cfg.LocalAddrs, a)
	}
	f.bgp.SetDefaults()
	if err := f.bgp.Validate(); err != nil {
		return fmt.Errorf("--bgp: %w", err)
	}
	if f.bgp.Daemon != "" && (f.listen == "" || f.cfg.Pcap != "") {
		return errors.New("--bgp needs a gNMI target to serve on (--listen) and a live capture (no --pcap)")
	}
	if f.listen != "" && f.cfg.Pcap == "" {
		return checkExposure(f.listen, f.tlsCert != "", f.username != "", f.allowInsecure)
	}
	return nil
}

func runProbe(ctx context.Context, cmd *cobra.Command, f *probeFlags) error {
	if err := f.check(); err != nil {
		return err
	}
	cfg := f.cfg
	if f.json {
		cfg.JSON = cmd.OutOrStdout()
	}
	cfg.Logger = slog.Default().With("part", "probe")
	if cfg.Router == "" {
		cfg.Router, _ = os.Hostname()
	}
	password := f.password
	if password == "" {
		password = os.Getenv("MESHD_PROBE_PASSWORD")
	}

	var poller *bgpstate.Poller
	if f.listen != "" && cfg.Pcap == "" {
		msch, err := mygot.Schema()
		if err != nil {
			return fmt.Errorf("meshd schema: %w", err)
		}
		opts := []gnmitarget.Option{gnmitarget.WithModels(mygot.ΓModelData...), gnmitarget.WithSchema(msch.RootSchema()),
			gnmitarget.WithLogger(slog.Default().With("part", "probe-gnmi"))}
		if f.bgp.Daemon != "" {
			// The daemon's neighbor state is served in OpenConfig terms,
			// typed by the part of the schema it uses (the whole
			// generated binding would be two fifths of the binary).
			opts = append(opts, gnmitarget.WithModels(ocModels...))
			opts = append(opts, ocschema.Options()...)
		}
		if f.tlsCert != "" {
			opts = append(opts, gnmitarget.WithTLS(f.tlsCert, f.tlsKey, f.tlsCA))
		}
		if f.username != "" {
			opts = append(opts, gnmitarget.WithCredentials(f.username, password))
		}
		srv, err := gnmitarget.New(opts...)
		if err != nil {
			return err
		}
		lis, err := net.Listen("tcp", f.listen)
		if err != nil {
			return fmt.Errorf("--listen %s: %w", f.listen, err)
		}
		go func() {
			if err := srv.Serve(lis); err != nil {
				slog.Error("probe gNMI target", slog.Any("err", err))
			}
		}()
		defer srv.GracefulStop()
		slog.Info("probe serving gNMI", slog.String("addr", lis.Addr().String()), slog.String("target", cfg.Router))
		router := cfg.Router
		cfg.Publish = func(chs []change.Change) {
			ups := make([]change.Update, len(chs))
			for i, c := range chs {
				ups[i] = change.Update{Router: router, Path: c.Path, Key: change.PathKey(c.Path), Value: c.Value, Time: c.Time, Source: c.Source}
			}
			srv.Update(router, ups)
		}
		if f.bgp.Daemon != "" {
			rd, err := bgpstate.NewReader(f.bgp, cfg.NetworkInstance, cfg.Netns)
			if err != nil {
				return err
			}
			if poller, err = bgpstate.NewPoller(f.bgp, rd, router, cfg.Publish,
				bgpstate.WithLogger(slog.Default().With("part", "probe-bgp"))); err != nil {
				return err
			}
		}
	}
	if poller != nil {
		cfg.OnSessionChange = poller.Poke
		go func() { _ = poller.Run(ctx) }()
	}
	return probe.Run(ctx, cfg)
}

// ocModels are the OpenConfig models the agent reports with --bgp: the
// collector's gNMI target reports the same ones (sinks/gnmiserver.Models),
// but the agent does not carry the collector's merge core and sinks to
// import them.
var ocModels = []*gpb.ModelData{
	{Name: "openconfig-network-instance", Organization: "OpenConfig working group"},
	{Name: "openconfig-bgp", Organization: "OpenConfig working group"},
	{Name: "openconfig-bgp-types", Organization: "OpenConfig working group"},
}

// checkExposure refuses to serve gNMI beyond loopback without TLS and
// credentials unless told to.
func checkExposure(listen string, tls, creds, allow bool) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", listen, err)
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return nil
	}
	if host == "localhost" || (tls && creds) || allow {
		return nil
	}
	return errors.New("--listen " + listen + " is beyond loopback: give --tls-cert/--tls-key and --username/--password, or --allow-insecure")
}
