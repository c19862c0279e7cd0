package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshd/meshd/gnmiclient"
	"github.com/meshd/meshd/internal/ops"
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
	var addr, caFile, user string
	var useTLS bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what a running meshd sees: its gNMI targets' sessions and every BGP session",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, scheme, err := statusClient(useTLS || caFile != "", caFile)
			if err != nil {
				return err
			}
			var unreachable string
			get := func(path string, v any) error {
				req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, scheme+"://"+addr+path, nil)
				if err != nil {
					return err
				}
				if user != "" {
					req.SetBasicAuth(user, os.Getenv("MESHD_HTTP_PASSWORD"))
				}
				resp, err := c.Do(req)
				if err != nil {
					return fmt.Errorf("meshd at %s: %w", addr, err)
				}
				defer resp.Body.Close()
				if resp.StatusCode == http.StatusNotFound {
					return nil // that part is not configured
				}
				if resp.StatusCode == http.StatusUnauthorized {
					return fmt.Errorf("meshd at %s%s asks for its account: --username, and the password in MESHD_HTTP_PASSWORD", addr, path)
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
	cmd.Flags().BoolVar(&useTLS, "tls", false, "HTTPS (meshd's http.tls-cert is set), checked against the system's CAs")
	cmd.Flags().StringVar(&caFile, "tls-ca", "", "HTTPS, checked against this CA's PEM file instead")
	cmd.Flags().StringVar(&user, "username", "", "meshd's http.username; the password is read from MESHD_HTTP_PASSWORD")
	return cmd
}

// statusClient asks meshd's listener over HTTPS when useTLS, trusting
// caFile's CAs when it is set.
func statusClient(useTLS bool, caFile string) (*http.Client, string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	if !useTLS {
		return c, "http", nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := ops.CAPool(caFile)
		if err != nil {
			return nil, "", fmt.Errorf("--tls-ca: %w", err)
		}
		tc.RootCAs = pool
	}
	c.Transport = &http.Transport{TLSClientConfig: tc}
	return c, "https", nil
}
