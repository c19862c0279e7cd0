package config

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path"
	"strconv"
	"strings"
)

// memory-limit is the Go runtime's soft memory limit for meshd
// (runtime/debug.SetMemoryLimit): past it the garbage collector runs
// more often to keep the process under it, instead of letting the heap
// grow to twice what is live (GOGC) through a sync or a burst. It is
// soft: a fleet whose live state is bigger than the limit is slowed by
// the collector (which the runtime caps at about half the CPU), never
// stopped.
//
// The default, auto, is 90% of the memory meshd may use: its cgroup's
// limit when it runs under one (a container, a systemd unit with
// MemoryMax=), else the machine's RAM. That is where running out of
// memory begins, so the collector works harder exactly when the
// alternative is the OOM killer, and never otherwise. A fixed default (1
// GiB, say) would be too big for a 512 MiB container and would make a
// bigger fleet's meshd collect garbage without pause. The 10% left is
// for what the runtime does not count against its limit (the binary's
// pages, the kernel's socket buffers) and page cache charged to the
// cgroup. An operator with a budget says it: `memory-limit: 1GiB`.
//
// GOMEMLIMIT in meshd's environment overrides the setting, as it does
// for any Go program (see cmd/meshd).

// autoShare is the share of the memory meshd may use that auto takes.
const autoShare = 0.9

// minMemoryLimit is the smallest limit taken: below it the collector
// would run without pause from the start (the schemas alone are tens of
// MiB).
const minMemoryLimit = 64 << 20

// MemoryLimitAuto is the memory-limit setting's default.
const MemoryLimitAuto = "auto"

var sizeUnits = []struct {
	suffix string
	mult   float64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// ParseMemoryLimit reads a memory-limit setting: a size in B, KiB, MiB,
// GiB or TiB (the units GOMEMLIMIT takes; a bare number is bytes), 0 or
// off for none (-1 is returned for auto).
func ParseMemoryLimit(s string) (int64, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", MemoryLimitAuto:
		return -1, nil
	case "0", "off", "none":
		return 0, nil
	}
	num, mult := s, 1.0
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) || n < 0 {
		return 0, fmt.Errorf("%q: want a size like 1GiB or 800MiB (units B, KiB, MiB, GiB, TiB), auto, or 0/off for none", s)
	}
	b := n * mult
	if b >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is more than any machine has", s)
	}
	if b == 0 {
		return 0, nil
	}
	if b < minMemoryLimit {
		return 0, fmt.Errorf("%q is below 64MiB, where the garbage collector would run without pause; use 0 or off for no limit", s)
	}
	return int64(b), nil
}

// MemoryLimitBytes returns the limit the config asks for, in bytes (0 for
// none), and where it comes from, for the log: "memory-limit", or what
// auto found ("auto: 90% of the cgroup's limit"). The config must have
// been validated.
func (c *Config) MemoryLimitBytes() (int64, string) {
	n, err := ParseMemoryLimit(c.MemoryLimit)
	if err != nil || n >= 0 {
		return n, "memory-limit"
	}
	avail, from := availableMemory("")
	if avail <= 0 {
		return 0, "auto: no cgroup limit or machine memory found"
	}
	return int64(float64(avail) * autoShare), fmt.Sprintf("auto: %.0f%% of %s", autoShare*100, from)
}

// availableMemory returns the memory meshd may use: the least of its
// cgroup's limit (and its ancestors') and the machine's RAM, and which
// of them it is. Files are read below root ("" in meshd; a test's
// directory in tests). 0 if nothing could be read.
func availableMemory(root string) (int64, string) {
	best, from := meminfoTotal(root), "the machine's memory"
	if cg := cgroupLimit(root); cg > 0 && (best <= 0 || cg < best) {
		best, from = cg, "the cgroup's limit"
	}
	return best, from
}

// meminfoTotal is /proc/meminfo's MemTotal in bytes, or 0.
func meminfoTotal(root string) int64 {
	f, err := os.Open(root + "/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && fs[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fs[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cgroupLimit is the least memory limit of the process's cgroup and its
// ancestors, v2 (memory.max) or v1 (memory.limit_in_bytes), or 0 for
// none. Inside a cgroup namespace the process's path is "/" and the
// limit is read from the mount's root.
func cgroupLimit(root string) int64 {
	b, err := os.ReadFile(root + "/proc/self/cgroup")
	if err != nil {
		return 0
	}
	var least int64
	take := func(file string) {
		raw, err := os.ReadFile(file)
		if err != nil {
			return
		}
		s := strings.TrimSpace(string(raw))
		n, err := strconv.ParseInt(s, 10, 64)
		// v2 says "max"; v1 says a page-rounded MaxInt64 for none.
		if err != nil || n <= 0 || n >= 1<<62 {
			return
		}
		if least == 0 || n < least {
			least = n
		}
	}
	for _, line := range strings.Split(string(b), "\n") {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dir, file string
		switch {
		case parts[0] == "0" && parts[1] == "":
			dir, file = root+"/sys/fs/cgroup", "memory.max"
		case hasController(parts[1], "memory"):
			dir, file = root+"/sys/fs/cgroup/memory", "memory.limit_in_bytes"
		default:
			continue
		}
		for p := path.Clean("/" + parts[2]); ; p = path.Dir(p) {
			take(path.Join(dir, p, file))
			if p == "/" {
				break
			}
		}
	}
	return least
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}
