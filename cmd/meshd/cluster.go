package main

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshd/meshd/cluster"
	"github.com/meshd/meshd/config"
)

func init() { register(newClusterCmd) }

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "The replicas sharing the fleet through etcd"}
	var cfgPath string
	var etcd []string
	var targets, asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster's members, their leases and which replica owns each target",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cc cluster.Config
			if len(etcd) > 0 && !cmd.Flags().Changed("config") {
				// etcd named and no config: the cluster's defaults
				// (prefix /meshd), as from a host that runs no replica.
				cc.Endpoints = etcd
				cc.SetDefaults()
			} else {
				cfg, err := config.Load(cfgPath)
				if err != nil {
					return err
				}
				cc = cfg.Cluster
				if len(etcd) > 0 {
					cc.Endpoints = etcd
				}
			}
			if len(cc.Endpoints) == 0 {
				return errors.New(cfgPath + ": no cluster.endpoints: this meshd runs alone")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			st, err := cluster.ReadStatus(ctx, cc)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(st)
			}
			return st.Write(cmd.OutOrStdout(), targets)
		},
	}
	status.Flags().StringVarP(&cfgPath, "config", "c", "meshd.yaml", "meshd's config (its cluster: section)")
	status.Flags().StringSliceVar(&etcd, "etcd", nil, "etcd's client URLs, instead of the config's cluster.endpoints (the config may then be left out)")
	status.Flags().BoolVar(&targets, "targets", false, "list every target's owner and fencing token")
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(status)
	return cmd
}
