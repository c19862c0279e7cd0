package netlab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// logTailLines is how much of a dead daemon's log a report quotes.
const logTailLines = 8

// logTail is the last n lines of a lab daemon's log.
func (l *Lab) logTail(key string, n int) string {
	b, err := os.ReadFile(filepath.Join(l.State.Dir, key+".log"))
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// deadError says that lab daemon key is no longer running, with the end
// of its log.
func (l *Lab) deadError(key string) error {
	return fmt.Errorf("%s (pid %d) is no longer running; the end of %s.log:\n%s",
		key, l.State.PIDs[key], key, indent(l.logTail(key, logTailLines)))
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// Health checks that every process the lab started still runs. A dead
// router daemon, wire or InfluxDB is the lab's failure, not meshd's, and
// a verify that compared meshd with such a lab would blame meshd.
func (l *Lab) Health() error {
	keys := make([]string, 0, len(l.State.PIDs))
	for k := range l.State.PIDs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		if l.State.Faulted[k] == "killed" {
			continue // the operator's fault, not the lab's failure
		}
		if _, ok := l.running(k); !ok {
			errs = append(errs, l.deadError(k))
		}
	}
	return errors.Join(errs...)
}

// waitLog waits until lab daemon key's log holds marker, and fails at
// once, with the log's end, if the daemon exits first.
func (l *Lab) waitLog(key, marker string, timeout time.Duration) error {
	path := filepath.Join(l.State.Dir, key+".log")
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(marker)) {
			return nil
		}
		if _, ok := l.running(key); !ok {
			return l.deadError(key)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v (no %q in its log); its end:\n%s", key, timeout, marker, indent(l.logTail(key, logTailLines)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
