package netlab

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestWaitLogAndHealth starts real processes as lab daemons: one that
// gets ready, one that dies at start (as the wire did when it read a
// half-written state file), one that never says it is ready.
func TestWaitLogAndHealth(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		wantErr string // "" for ready
		alive   bool
	}{
		{"ready", `echo "lab wire: bridging 6 links" >&2; exec sleep 30`, "", true},
		{"dies at start", `echo "lab state: unexpected end of JSON input" >&2; exit 1`, "unexpected end of JSON input", false},
		{"never ready", `exec sleep 30`, "not ready after", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &Lab{State: State{Dir: t.TempDir(), PIDs: map[string]int{}}}
			if err := l.startHere("wire", "sh", "-c", tt.script); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = syscall.Kill(l.State.PIDs["wire"], syscall.SIGKILL) })
			err := l.waitLog("wire", wireReady, 2*time.Second)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("waitLog: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("waitLog: %v, want an error with %q", err, tt.wantErr)
			}
			herr := l.Health()
			if tt.alive != (herr == nil) {
				t.Fatalf("Health: %v, want alive %v", herr, tt.alive)
			}
			if !tt.alive && !strings.Contains(herr.Error(), "wire (pid") {
				t.Errorf("Health does not name the daemon: %v", herr)
			}
		})
	}
}

// TestSaveWhole reads the state file while it is rewritten: a reader
// never sees it half written.
func TestSaveWhole(t *testing.T) {
	dir := t.TempDir()
	l := &Lab{State: State{Dir: dir, Routers: 5, PIDs: map[string]int{}}}
	for i := 0; i < 200; i++ {
		l.State.PIDs[strings.Repeat("k", i%40+1)+string(rune('a'+i%26))] = i
	}
	if err := l.save(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 500; i++ {
			if err := l.save(); err != nil {
				t.Error(err)
				break
			}
		}
		close(stop)
	}()
	reads := 0
	for done := false; !done; reads++ {
		select {
		case <-stop:
			done = true
		default:
		}
		if _, err := Load(dir); err != nil {
			t.Fatalf("read %d: %v", reads, err)
		}
	}
	wg.Wait()
	if _, err := os.Stat(filepath.Join(dir, stateFile+".tmp")); err == nil {
		t.Errorf("%s.tmp left behind", stateFile)
	}
}
