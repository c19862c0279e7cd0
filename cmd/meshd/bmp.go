package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshd/meshd/bmpbridge/decode"
	"github.com/meshd/meshd/bmpbridge/pcapstream"
)

func init() { register(newBMPCmd) }

func newBMPCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bmp", Short: "BMP tools"}
	cmd.AddCommand(newBMPDecodeCmd())
	return cmd
}

func newBMPDecodeCmd() *cobra.Command {
	var vrfs []string
	cmd := &cobra.Command{
		Use:   "decode FILE",
		Short: "Print each BMP message of a pcap capture or raw BMP stream as one JSON line",
		Long: `decode reads a classic pcap file (TCP flows are reassembled; every flow that
starts like a BMP stream is decoded) or a raw BMP byte stream ("-" for stdin)
and prints one JSON object per message with meshd's normalised fields.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vrfMap := map[string]string{}
			for _, v := range vrfs {
				rd, ni, ok := strings.Cut(v, "=")
				if !ok {
					return fmt.Errorf("--vrf %q: want RD=NAME", v)
				}
				vrfMap[rd] = ni
			}
			var data []byte
			var err error
			if args[0] == "-" {
				data, err = io.ReadAll(cmd.InOrStdin())
			} else {
				data, err = os.ReadFile(args[0])
			}
			if err != nil {
				return err
			}
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer out.Flush()
			if !pcapstream.IsPcap(data) {
				return decode.WriteJSON(out, "", data, vrfMap)
			}
			flows, err := pcapstream.Read(bytes.NewReader(data))
			if err != nil && len(flows) == 0 {
				return err
			}
			n := 0
			for _, f := range flows {
				if len(f.Data) < 6 || f.Data[0] != 3 {
					continue // not a BMP stream (e.g. the collector's direction)
				}
				n++
				if err := decode.WriteJSON(out, f.String(), f.Data, vrfMap); err != nil {
					return err
				}
			}
			if n == 0 {
				return fmt.Errorf("%s: no TCP flow carries a BMP stream", args[0])
			}
			return err
		},
	}
	cmd.Flags().StringSliceVar(&vrfs, "vrf", nil, "map a route distinguisher to a network instance, RD=NAME (repeatable)")
	return cmd
}
