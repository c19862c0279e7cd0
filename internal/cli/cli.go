// Package cli is what meshd's binaries (meshd, meshd-probe, meshd-lab)
// share on the command line: the root command with the logging flags, the
// version command, and the exit on error. It imports nothing but cobra,
// so it adds nothing to the probe agent.
package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Build is what the linker sets in each binary's main package
// (-ldflags "-X main.version=... -X main.commit=...").
type Build struct {
	Version, Commit string
}

// Flags are the logging flags every binary takes.
type Flags struct {
	LogLevel  string
	LogFormat string
}

// Root returns a root command named name that installs the logger its
// flags ask for before any subcommand runs, with a version subcommand.
func Root(name, short string, b Build, f *Flags) *cobra.Command {
	return Adopt(&cobra.Command{Use: name, Short: short}, b, f)
}

// Adopt makes cmd a binary's root command, as Root does: for a binary
// whose root command does the work itself (meshd-probe).
func Adopt(cmd *cobra.Command, b Build, f *Flags) *cobra.Command {
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error {
		l, err := NewLogger(f.LogLevel, f.LogFormat, os.Stderr)
		if err != nil {
			return err
		}
		slog.SetDefault(l)
		return nil
	}
	cmd.PersistentFlags().StringVar(&f.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	cmd.PersistentFlags().StringVar(&f.LogFormat, "log-format", "text", "log format: text or json")
	cmd.AddCommand(VersionCmd(cmd.Name(), b))
	return cmd
}

// Execute runs root and exits 1 with the error on stderr if it fails.
func Execute(root *cobra.Command) {
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, root.Name()+":", err)
		os.Exit(1)
	}
}

// NewLogger returns a slog logger writing to w at level, as text or json.
func NewLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// VersionCmd prints the binary's name, version, commit and Go version. The
// commit falls back to the one go build stamped in, when the linker set
// none.
func VersionCmd(name string, b Build) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print " + name + "'s version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := b.Commit
			if c == "" {
				if bi, ok := debug.ReadBuildInfo(); ok {
					for _, s := range bi.Settings {
						if s.Key == "vcs.revision" {
							c = s.Value
						}
					}
				}
			}
			if c == "" {
				c = "unknown"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\ncommit %s\n%s %s/%s\n", name, b.Version, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
