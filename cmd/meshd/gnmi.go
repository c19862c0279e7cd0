package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/gnmi/value"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/gnmiclient"
	"github.com/meshd/meshd/gnmiclient/translate"
)

func init() {
	register(newGetCmd)
	register(newSubscribeCmd)
}

// targetFlags are the connection flags get and subscribe share, named as
// gnmic names them.
type targetFlags struct {
	t        gnmiclient.Target
	insecure bool
	skip     bool
	encoding string
	raw      bool
	paths    []string
}

func (tf *targetFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&tf.t.Address, "address", "a", "", "target host:port")
	f.StringVar(&tf.t.Name, "name", "", "router name for replies that name no target (default: the address)")
	f.StringVarP(&tf.t.Username, "username", "u", "", "username (gNMI metadata)")
	f.StringVarP(&tf.t.Password, "password", "p", "", "password (gNMI metadata)")
	f.BoolVar(&tf.insecure, "insecure", false, "no TLS")
	f.BoolVar(&tf.skip, "skip-verify", false, "TLS without verifying the server's certificate")
	f.StringVar(&tf.t.TLSCA, "tls-ca", "", "CA certificate to verify the server")
	f.StringVar(&tf.t.TLSCert, "tls-cert", "", "client certificate (mTLS)")
	f.StringVar(&tf.t.TLSKey, "tls-key", "", "client key (mTLS)")
	f.StringVar(&tf.t.TLSServerName, "tls-server-name", "", "server name to verify")
	f.DurationVar(&tf.t.Timeout, "timeout", 10*time.Second, "RPC timeout")
	f.StringVarP(&tf.encoding, "encoding", "e", "json_ietf", "json_ietf, json or proto")
	f.BoolVar(&tf.raw, "raw", false, "print the notifications as received instead of meshd's translated leaves")
	// gnmic takes paths with a repeatable --path; an array flag, not a
	// slice, because a path's keys may hold commas.
	f.StringArrayVar(&tf.paths, "path", nil, "path (gnmic syntax); repeatable, and paths may also follow the flags")
	_ = cmd.MarkFlagRequired("address")
}

// allPaths returns the --path flags followed by the positional paths.
func (tf *targetFlags) allPaths(args []string) ([]string, error) {
	paths := append(append([]string(nil), tf.paths...), args...)
	if len(paths) == 0 {
		return nil, errors.New("no path: give --path PATH (repeatable) or paths after the flags")
	}
	return paths, nil
}

func (tf *targetFlags) target() *gnmiclient.Target {
	t := tf.t
	t.Insecure, t.SkipVerify = &tf.insecure, &tf.skip
	if t.Name == "" {
		t.Name = t.Address
	}
	return &t
}

// printer writes notifications as JSON lines: raw, or translated into the
// leaves meshd would store (unknown paths and bad values listed apart).
type printer struct {
	w io.Writer
	// router labels notifications whose prefix names no target; one that
	// does is labelled with its target, since a server may serve several
	// routers on one address (gnmic's gnmi-server output, meshd's own
	// target, a collector's cache).
	router string
	raw    bool
	tr     *translate.Translator
	res    translate.Result
}

func newPrinter(w io.Writer, router string, raw bool) (*printer, error) {
	p := &printer{w: w, router: router, raw: raw}
	if !raw {
		tr, err := translate.New()
		if err != nil {
			return nil, err
		}
		p.tr = tr
	}
	return p, nil
}

type leafJSON struct {
	Router  string    `json:"router"`
	Time    time.Time `json:"time"`
	Path    string    `json:"path"`
	Value   any       `json:"value"`
	Deleted bool      `json:"deleted,omitempty"`
}

func (p *printer) print(n *gpb.Notification) error {
	enc := json.NewEncoder(p.w)
	if p.raw {
		b, err := protojson.Marshal(n)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.w, "%s\n", b)
		return err
	}
	router := p.router
	if t := n.GetPrefix().GetTarget(); t != "" {
		router = t
	}
	p.res.Reset()
	p.tr.Notification(router, n, change.SourceGNMI, time.Now(), &p.res)
	for _, c := range p.res.Changes {
		l := leafJSON{Router: c.Router, Time: c.Time, Path: change.PathKey(c.Path), Deleted: c.Value == nil}
		if c.Value != nil {
			v, err := value.ToScalar(c.Value)
			if err != nil {
				v = c.Value.String()
			}
			l.Value = v
		}
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	for _, u := range p.res.Unknown {
		if err := enc.Encode(map[string]any{"router": router, "unknown-path": u}); err != nil {
			return err
		}
	}
	if p.res.Err != nil {
		return enc.Encode(map[string]any{"router": router, "invalid": p.res.Invalid, "first-error": p.res.Err.Error()})
	}
	return nil
}

func newGetCmd() *cobra.Command {
	var tf targetFlags
	var o gnmiclient.GetOptions
	cmd := &cobra.Command{
		Use:   "get [flags] [--path PATH]... [PATH...]",
		Short: "gNMI Get from one target, printed as JSON lines",
		RunE: func(cmd *cobra.Command, args []string) error {
			paths, err := tf.allPaths(args)
			if err != nil {
				return err
			}
			t := tf.target()
			o.Paths, o.Encoding = paths, tf.encoding
			resp, err := gnmiclient.GetQuery(cmd.Context(), t, o)
			if err != nil {
				return err
			}
			p, err := newPrinter(cmd.OutOrStdout(), t.Name, tf.raw)
			if err != nil {
				return err
			}
			for _, n := range resp.GetNotification() {
				if err := p.print(n); err != nil {
					return err
				}
			}
			return nil
		},
	}
	tf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&o.Prefix, "prefix", "", "common path prefix")
	f.StringVar(&o.Target, "target", "", "target name for the request prefix (servers serving several targets)")
	return cmd
}

func newSubscribeCmd() *cobra.Command {
	var tf targetFlags
	var sub gnmiclient.Subscription
	var count int
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "subscribe [flags] [--path PATH]... [PATH...]",
		Short: "gNMI Subscribe to one target (once, poll or stream), printed as JSON lines",
		RunE: func(cmd *cobra.Command, args []string) error {
			paths, err := tf.allPaths(args)
			if err != nil {
				return err
			}
			t := tf.target()
			sub.Paths, sub.Encoding = paths, tf.encoding
			p, err := newPrinter(cmd.OutOrStdout(), t.Name, tf.raw)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return gnmiclient.Subscribe(ctx, t, &sub, count, interval, p.print)
		},
	}
	tf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&sub.Mode, "mode", "once", "once, poll or stream")
	f.StringVar(&sub.StreamMode, "stream-mode", "target-defined", "on-change, sample or target-defined (stream mode)")
	f.DurationVar(&sub.SampleInterval, "sample-interval", 0, "sample interval (stream-mode sample)")
	f.DurationVar(&sub.HeartbeatInterval, "heartbeat-interval", 0, "heartbeat interval")
	f.StringVar(&sub.Prefix, "prefix", "", "common path prefix")
	f.StringVar(&sub.Target, "target", "", "target name for the request prefix (servers serving several targets)")
	f.BoolVar(&sub.UpdatesOnly, "updates-only", false, "no initial state")
	f.IntVar(&count, "count", 0, "poll: number of polls (default 1); stream: stop after this many notifications")
	f.DurationVar(&interval, "interval", 10*time.Second, "poll: time between polls")
	return cmd
}
