// Package procstat reads a process's CPU time and parent from /proc, for
// the benchmarks that report CPU seconds of meshd and of the browser that
// shows its page.
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ClockTick is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// this runs on (sysconf(_SC_CLK_TCK) needs cgo to ask).
const ClockTick = 100

// fields returns the fields of /proc/pid/stat after the command name,
// which may hold spaces and parentheses (the fields after its last ')'
// do not): [0] is the state, [1] the parent, [11] and [12] utime and
// stime.
func fields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f, nil
}

// CPU is the CPU time (user + system) process pid has used.
func CPU(pid int) (time.Duration, error) {
	f, err := fields(pid)
	if err != nil {
		return 0, err
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / ClockTick, nil
}

// TreeCPU is the CPU time of pid and every process below it now (a
// browser and its renderers). A process that ended is not counted.
func TreeCPU(pid int) (time.Duration, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	parent := map[int]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f, err := fields(p); err == nil {
			parent[p], _ = strconv.Atoi(f[1])
		}
	}
	in := func(p int) bool {
		for range 64 {
			if p == pid {
				return true
			}
			if p = parent[p]; p <= 1 {
				return false
			}
		}
		return false
	}
	var total time.Duration
	for p := range parent {
		if in(p) {
			if c, err := CPU(p); err == nil {
				total += c
			}
		}
	}
	return total, nil
}
