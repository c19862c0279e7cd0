// Package tools finds the external programs meshd's lab and tests run
// (influxd, gobgpd, FRR's daemons), wherever `make tools` put them.
package tools

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Look finds a program on PATH, in GOPATH/bin or in FRR's folder.
func Look(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var dirs []string
	if gp := goPath(); gp != "" {
		dirs = append(dirs, filepath.Join(gp, "bin"))
	}
	dirs = append(dirs, "/usr/lib/frr", "/usr/sbin", "/sbin")
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH, in GOPATH/bin or /usr/lib/frr", name)
}

func goPath() string {
	if gp := os.Getenv("GOPATH"); gp != "" {
		return strings.Split(gp, string(os.PathListSeparator))[0]
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, "go")
	}
	return ""
}
