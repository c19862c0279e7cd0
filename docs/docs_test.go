// Package docs holds meshd's documents; its test checks that every
// document they name, and every section a link points to, exists.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	mdName  = regexp.MustCompile(`[\w./-]*[\w-]+\.md\b`)
	mdLink  = regexp.MustCompile(`\]\(([^)\s]+\.md)(#[^)\s]*)?\)`)
	heading = regexp.MustCompile(`(?m)^#+\s+(.*)$`)
)

// anchor is the GitHub anchor of a heading.
func anchor(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r == ' ' || r == '-':
			b.WriteRune('-')
		case r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestDocumentsExist(t *testing.T) {
	files, _ := filepath.Glob("*.md")
	files = append(files, filepath.Join("..", "README.md"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		// Every .md file the text names, linked or not.
		for _, name := range mdName.FindAllString(text, -1) {
			if strings.Contains(name, "://") {
				continue
			}
			found := false
			for _, dir := range []string{filepath.Dir(f), ".."} {
				if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
					found = true
				}
			}
			if !found {
				t.Errorf("%s names %s, which the repository does not have", f, name)
			}
		}
		// Every link's section.
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			if m[2] == "" {
				continue
			}
			target, err := os.ReadFile(filepath.Join(filepath.Dir(f), m[1]))
			if err != nil {
				continue // reported above
			}
			ok := false
			for _, h := range heading.FindAllStringSubmatch(string(target), -1) {
				ok = ok || "#"+anchor(h[1]) == m[2]
			}
			if !ok {
				t.Errorf("%s links to %s%s: no such section", f, m[1], m[2])
			}
		}
	}
}
