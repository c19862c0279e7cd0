package main

import (
	"bufio"
	"bytes"
	"errors"
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
		Short: "Print each BMP message of a capture (pcap, pcapng) or raw BMP stream as one JSON line",
		Long: `decode reads a capture file, classic pcap or pcapng (TCP flows are
reassembled; every flow that starts like a BMP stream is decoded), or a raw
BMP byte stream ("-" for stdin), telling them apart by their first bytes,
and prints one JSON object per message with meshd's normalised fields.

A capture that starts after a peer's Peer Up does not say whether the peer's
routes carry ADD-PATH path IDs; decode then reads them the one way that
parses (as Wireshark does) and says so in the message's "warnings". A
summary goes to stderr. The exit status is 1 when anything could not be
decoded: an unreadable file, a broken stream, a malformed message.`,
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
			name := args[0]
			var data []byte
			var err error
			if name == "-" {
				name = "stdin"
				data, err = io.ReadAll(cmd.InOrStdin())
			} else {
				data, err = os.ReadFile(name)
			}
			if err != nil {
				return err
			}
			out := bufio.NewWriter(cmd.OutOrStdout())
			err = decodeBMP(out, cmd.ErrOrStderr(), name, data, vrfMap)
			if ferr := out.Flush(); err == nil {
				err = ferr
			}
			return err
		},
	}
	cmd.Flags().StringSliceVar(&vrfs, "vrf", nil, "map a route distinguisher to a network instance, RD=NAME (repeatable)")
	return cmd
}

// decodeBMP writes data's BMP messages as JSON lines to out and a summary
// to errw; the error says what could not be decoded.
func decodeBMP(out, errw io.Writer, name string, data []byte, vrfs map[string]string) error {
	type stream struct {
		flow string
		data []byte
		gaps int
	}
	var streams []stream
	format := pcapstream.Format(data)
	var readErr error
	switch {
	case format != "":
		flows, err := pcapstream.Read(bytes.NewReader(data))
		if err != nil && len(flows) == 0 {
			return fmt.Errorf("%s: %s: %w", name, format, err)
		}
		readErr = err
		for _, f := range flows {
			if len(f.Data) < 6 || f.Data[0] != 3 {
				continue // not a BMP stream (e.g. the collector's direction)
			}
			streams = append(streams, stream{f.String(), f.Data, f.Gaps})
		}
		if len(streams) == 0 {
			if readErr != nil {
				return fmt.Errorf("%s: %s: %w", name, format, readErr)
			}
			return fmt.Errorf("%s: %s capture: no TCP flow carries a BMP stream", name, format)
		}
	case len(data) == 0:
		return fmt.Errorf("%s: empty", name)
	case len(data) >= 6 && data[0] == 3:
		format = "BMP stream"
		streams = []stream{{data: data}}
	default:
		return fmt.Errorf("%s: not a pcap, pcapng or BMP stream (starts with % x)", name, data[:min(len(data), 8)])
	}
	var problems []string
	for _, s := range streams {
		sum, err := decode.WriteJSONLines(out, s.flow, s.data, vrfs)
		if err != nil {
			return err
		}
		where := name
		if s.flow != "" {
			where += " " + s.flow
		}
		line := fmt.Sprintf("%s: %s", where, count(sum.Messages, "message"))
		if sum.Errors > 0 {
			line += fmt.Sprintf(", %d malformed", sum.Errors)
			problems = append(problems, fmt.Sprintf("%s: %s malformed", where, count(sum.Errors, "message")))
		}
		if sum.Warned > 0 {
			line += fmt.Sprintf(", %d with warnings (ADD-PATH guessed: see their \"warnings\")", sum.Warned)
		}
		if s.gaps > 0 {
			line += fmt.Sprintf(", %d holes in the TCP stream (segments not captured)", s.gaps)
		}
		if sum.Framing != nil {
			line += ", stopped: " + sum.Framing.Error()
			problems = append(problems, fmt.Sprintf("%s: %v", where, sum.Framing))
		}
		fmt.Fprintln(errw, line)
	}
	if readErr != nil {
		problems = append(problems, fmt.Sprintf("%s: %s: %v", name, format, readErr))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
