// Command webassets puts the status page's chart library into the folder
// the binary embeds (make web-assets): for each file it copies, the
// package's tarball from the npm registry at the version and integrity
// (sha512) sinks/web/package-lock.json pins. It needs neither npm nor
// Node.js, so a machine with Go alone builds the page whole.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// npmRegistry is npm's public registry, the one package-lock.json names.
const npmRegistry = "https://registry.npmjs.org"

func main() {
	lock := flag.String("lock", "sinks/web/package-lock.json", "the npm lock file that pins the packages")
	out := flag.String("out", "sinks/web/assets/vendor", "where the files go")
	registry := flag.String("registry", npmRegistry, "the npm registry")
	flag.Parse()
	// package/file pairs: the files of each package the page loads.
	want := map[string][]string{"uplot": {"dist/uPlot.iife.min.js", "dist/uPlot.min.css"}}
	if err := run(*registry, *lock, *out, want); err != nil {
		fmt.Fprintln(os.Stderr, "webassets:", err)
		os.Exit(1)
	}
}

type lockFile struct {
	Packages map[string]struct {
		Version   string `json:"version"`
		Integrity string `json:"integrity"`
	} `json:"packages"`
}

func run(registry, lockPath, out string, want map[string][]string) error {
	b, err := os.ReadFile(lockPath)
	if err != nil {
		return err
	}
	var lf lockFile
	if err := json.Unmarshal(b, &lf); err != nil {
		return fmt.Errorf("%s: %w", lockPath, err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for name, files := range want {
		p, ok := lf.Packages["node_modules/"+name]
		if !ok || p.Version == "" || !strings.HasPrefix(p.Integrity, "sha512-") {
			return fmt.Errorf("%s pins no version and sha512 integrity for %s", lockPath, name)
		}
		tgz, err := fetch(fmt.Sprintf("%s/%s/-/%s-%s.tgz", registry, name, name, p.Version))
		if err != nil {
			return err
		}
		sum := sha512.Sum512(tgz)
		if got := "sha512-" + base64.StdEncoding.EncodeToString(sum[:]); got != p.Integrity {
			return fmt.Errorf("%s %s: the registry's tarball is %s, the lock pins %s", name, p.Version, got, p.Integrity)
		}
		if err := extract(tgz, files, out); err != nil {
			return fmt.Errorf("%s %s: %w", name, p.Version, err)
		}
		fmt.Printf("webassets: %s %s (%s) -> %s\n", name, p.Version, strings.Join(files, ", "), out)
	}
	return nil
}

func fetch(url string) ([]byte, error) {
	c := &http.Client{Timeout: 2 * time.Minute}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// extract writes the named files of an npm tarball (under package/) into
// out, each by its base name.
func extract(tgz []byte, files []string, out string) error {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return err
	}
	left := map[string]bool{}
	for _, f := range files {
		left["package/"+f] = true
	}
	tr := tar.NewReader(zr)
	for len(left) > 0 {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if !left[h.Name] {
			continue
		}
		delete(left, h.Name)
		b, err := io.ReadAll(io.LimitReader(tr, 16<<20))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, path.Base(h.Name)), b, 0o644); err != nil {
			return err
		}
	}
	for f := range left {
		return fmt.Errorf("the tarball has no %s", f)
	}
	return nil
}
