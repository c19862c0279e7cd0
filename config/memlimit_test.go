package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseMemoryLimit(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"", -1, ""},
		{"auto", -1, ""},
		{"AUTO", -1, ""},
		{"0", 0, ""},
		{"off", 0, ""},
		{"none", 0, ""},
		{"0MiB", 0, ""},
		{"1GiB", 1 << 30, ""},
		{"800MiB", 800 << 20, ""},
		{"800 MiB", 800 << 20, ""},
		{"1.5GiB", 3 << 29, ""},
		{"2TiB", 2 << 40, ""},
		{"65536KiB", 64 << 20, ""},
		{"1073741824", 1 << 30, ""},
		{"1073741824B", 1 << 30, ""},
		{"1GB", 0, `"1GB": want a size like 1GiB or 800MiB`},
		{"1G", 0, `"1G": want a size`},
		{"lots", 0, `"lots": want a size`},
		{"-1GiB", 0, `"-1GiB": want a size`},
		{"NaNMiB", 0, `want a size`},
		{"10MiB", 0, `"10MiB" is below 64MiB`},
		{"9999999TiB", 0, "more than any machine has"},
	}
	for _, tc := range tests {
		got, err := ParseMemoryLimit(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseMemoryLimit(%q) = %d, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseMemoryLimit(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

// A config's memory-limit defaults to auto, and a bad one is an error
// naming the field and its line.
func TestLoadMemoryLimit(t *testing.T) {
	tests := []struct {
		yaml string
		want string // the setting after Load
		err  string
	}{
		{"log: {level: info}\n", "auto", ""},
		{"memory-limit: 1GiB\n", "1GiB", ""},
		{"memory-limit: 0\n", "0", ""},
		{"memory-limit: off\n", "off", ""},
		{"memory-limit: 1GB\n", "", `memory-limit: "1GB": want a size like 1GiB or 800MiB (units B, KiB, MiB, GiB, TiB), auto, or 0/off for none`},
		{"memory-limit: [1GiB]\n", "", "memory-limit: want a string, got a list (line 1)"},
		{"memory_limit: 1GiB\n", "", `unknown key "memory_limit"; did you mean "memory-limit"?`},
	}
	for _, tc := range tests {
		p := filepath.Join(t.TempDir(), "meshd.yaml")
		if err := os.WriteFile(p, []byte(tc.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: Load error %v, want %q", tc.yaml, err, tc.err)
			}
			continue
		}
		if err != nil || c.MemoryLimit != tc.want {
			t.Fatalf("%q: Load = %+v, %v; want memory-limit %q", tc.yaml, c, err, tc.want)
		}
	}
}

// auto finds the least of the cgroup's limits and the machine's memory,
// in cgroup v2 and v1 layouts.
func TestAvailableMemory(t *testing.T) {
	const ram = 2048000 << 10 // testdata's MemTotal
	tests := []struct {
		dir  string
		want int64
		from string
	}{
		{"v2", 512 << 20, "the cgroup's limit"}, // the unit's memory.max; the root's is "max"
		{"v1", 1 << 30, "the cgroup's limit"},   // docker/abc's; the root's is v1's "none"
		{"none", ram, "the machine's memory"},   // no limit
		{"big", ram, "the machine's memory"},    // a cgroup limit above the RAM
		{"missing", 0, "the machine's memory"},  // nothing readable
	}
	for _, tc := range tests {
		got, from := availableMemory(filepath.Join("testdata", "memory", tc.dir))
		if got != tc.want || from != tc.from {
			t.Errorf("%s: availableMemory = %d (%s), want %d (%s)", tc.dir, got, from, tc.want, tc.from)
		}
	}
}

func TestMemoryLimitBytes(t *testing.T) {
	for _, tc := range []struct {
		setting string
		want    int64
	}{{"1GiB", 1 << 30}, {"off", 0}, {"0", 0}} {
		c := &Config{MemoryLimit: tc.setting}
		if got, from := c.MemoryLimitBytes(); got != tc.want || from != "memory-limit" {
			t.Errorf("%q: MemoryLimitBytes = %d, %q; want %d from memory-limit", tc.setting, got, from, tc.want)
		}
	}
	// auto on this machine: 90% of what it finds, and says so.
	c := &Config{MemoryLimit: "auto"}
	avail, _ := availableMemory("")
	got, from := c.MemoryLimitBytes()
	if avail <= 0 || got != int64(float64(avail)*0.9) || !strings.HasPrefix(from, "auto: 90% of ") {
		t.Errorf("auto: MemoryLimitBytes = %d, %q; available %d", got, from, avail)
	}
}
