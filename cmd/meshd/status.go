package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshd/meshd/gnmiclient"
	"github.com/meshd/meshd/internal/sessions"
)

func init() { register(newStatusCmd) }

// jsonHandler serves what f returns as JSON.
func jsonHandler(f func() any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(f())
	})
}

func newStatusCmd() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what a running meshd sees: its gNMI targets' sessions and every BGP session",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := &http.Client{Timeout: 5 * time.Second}
			var unreachable string
			get := func(path string, v any) error {
				resp, err := c.Get("http://" + addr + path)
				if err != nil {
					return fmt.Errorf("meshd at %s: %w", addr, err)
				}
				defer resp.Body.Close()
				if resp.StatusCode == http.StatusNotFound {
					return nil // that part is not configured
				}
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("meshd at %s%s: HTTP %d", addr, path, resp.StatusCode)
				}
				if u := resp.Header.Get(sessions.UnreachableHeader); u != "" {
					unreachable = u
				}
				return json.NewDecoder(resp.Body).Decode(v)
			}
			var targets []gnmiclient.TargetStatus
			if err := get("/api/gnmi/targets", &targets); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(targets) > 0 {
				tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "TARGET\tADDRESS\tSTATE\tSINCE\tCONNECTS\tFAILURES\tLEAVES\tLAST ERROR")
				for _, t := range targets {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", t.Name, t.Address, t.State,
						t.Since.Format(time.RFC3339), t.Connects, t.Failures, t.Leaves, t.LastError)
				}
				tw.Flush()
				fmt.Fprintln(out)
			}
			var rows []sessions.Row
			if err := get("/api/sessions", &rows); err != nil {
				return err
			}
			sessions.WriteTable(out, rows)
			if unreachable != "" {
				fmt.Fprintf(out, "\nnot shown: the sessions of the replicas at %s, which did not answer\n", unreachable)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "http", "127.0.0.1:9100", "meshd's HTTP listener (http.listen in its config)")
	return cmd
}
