// Package vrpfile writes the VRP files RPKI caches serve (rpki-client's JSON
// format, which stayrtr reads): the lab's cache and the tests' write
// theirs with it.
package vrpfile

import (
	"encoding/json"
	"os"
	"time"
)

// ROA is one VRP of a cache's JSON file (rpki-client's format, which
// stayrtr serves).
type ROA struct {
	Prefix    string `json:"prefix"`
	MaxLength int    `json:"maxLength"`
	ASN       uint32 `json:"asn"`
}

// Write replaces the VRP file at path atomically (a cache that
// reads it again never reads half).
func Write(path string, roas []ROA) error {
	b, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"buildtime": time.Now().UTC().Format(time.RFC3339)},
		"roas":     roas,
	})
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
