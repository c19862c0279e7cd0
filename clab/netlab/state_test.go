package netlab

import (
	"os"
	"os/exec"
	"testing"
)

// Down and the fault commands signal a saved PID only while it is still
// the process the lab started.
func TestRunning(t *testing.T) {
	self := os.Getpid()
	st, err := procStart(self)
	if err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	l := &Lab{State: State{
		PIDs:    map[string]int{"same": self, "reused": self, "old": self, "gone": dead.Process.Pid},
		Started: map[string]uint64{"same": st, "reused": st + 1, "gone": 1},
	}}
	for key, want := range map[string]bool{"same": true, "reused": false, "old": true, "gone": false, "never": false} {
		if _, got := l.running(key); got != want {
			t.Errorf("running(%q) = %v, want %v", key, got, want)
		}
	}
}
