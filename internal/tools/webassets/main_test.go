package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tarball is an npm package's tarball holding files (name -> content).
func tarball(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "package/" + name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func integrity(b []byte) string {
	s := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(s[:])
}

// TestRun: the files come out of the pinned tarball; a tarball whose
// sha512 is not the lock's, or that lacks a file, is refused.
func TestRun(t *testing.T) {
	good := tarball(t, map[string]string{"dist/a.js": "A", "dist/a.css": "C", "README.md": "x"})
	other := tarball(t, map[string]string{"dist/a.js": "evil", "dist/a.css": "C"})
	for _, c := range []struct {
		name      string
		served    []byte
		pinned    string
		files     []string
		wantError string
	}{
		{"pinned", good, integrity(good), []string{"dist/a.js", "dist/a.css"}, ""},
		{"another tarball than the lock's", other, integrity(good), []string{"dist/a.js"}, "the lock pins"},
		{"a file the tarball lacks", good, integrity(good), []string{"dist/b.js"}, "no package/dist/b.js"},
		{"no sha512 in the lock", good, "sha1-abc", []string{"dist/a.js"}, "pins no version and sha512"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/pkg/-/pkg-1.2.3.tgz" {
					http.NotFound(w, r)
					return
				}
				w.Write(c.served)
			}))
			defer srv.Close()
			dir := t.TempDir()
			lock := filepath.Join(dir, "package-lock.json")
			os.WriteFile(lock, []byte(fmt.Sprintf(`{"packages":{"node_modules/pkg":{"version":"1.2.3","integrity":%q}}}`, c.pinned)), 0o644)
			out := filepath.Join(dir, "vendor")
			err := run(srv.URL, lock, out, map[string][]string{"pkg": c.files})
			if c.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantError) {
					t.Fatalf("run = %v, want an error with %q", err, c.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for f, want := range map[string]string{"a.js": "A", "a.css": "C"} {
				if b, err := os.ReadFile(filepath.Join(out, f)); err != nil || string(b) != want {
					t.Errorf("%s: %q %v", f, b, err)
				}
			}
		})
	}
}
