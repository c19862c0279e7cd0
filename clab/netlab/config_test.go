package netlab

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/meshd/meshd/config"
)

// TestMeshdConfigLoads holds the configs the lab gives meshd to meshd's
// own loader, with and without --rpki, so a lab never starts a meshd
// that refuses its config.
func TestMeshdConfigLoads(t *testing.T) {
	for _, c := range []struct {
		name  string
		rpki  bool
		check func(*config.Config) string
	}{
		{"plain", false, func(c *config.Config) string {
			if c.RPKI.Enabled() || c.Monitor.Enabled() {
				return "rpki or monitor configured without --rpki"
			}
			return ""
		}},
		{"rpki", true, func(c *config.Config) string {
			if len(c.RPKI.Caches) != 1 || len(c.Monitor.Prefixes) != 8 || len(c.Monitor.OwnASNs) != 4 || c.Monitor.VisibilityLoss != 4 {
				return "rpki/monitor sections not as written"
			}
			for _, w := range c.Monitor.Prefixes {
				if w.Prefix.Addr().Is4() && w.MaxLength != 25 {
					return w.Prefix.String() + ": max-length not 25"
				}
			}
			return ""
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			topo, err := NewTopology(4)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			l := &Lab{Topo: topo, State: State{Dir: dir, RPKI: c.rpki}}
			path := filepath.Join(dir, "meshd.yaml")
			if err := os.WriteFile(path, []byte(l.MeshdConfig()), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatalf("meshd refuses the lab's config: %v\n%s", err, l.MeshdConfig())
			}
			if msg := c.check(cfg); msg != "" {
				t.Errorf("%s\n%s", msg, l.MeshdConfig())
			}
		})
	}
}
