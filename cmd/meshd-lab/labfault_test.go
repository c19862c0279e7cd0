package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshd/meshd/clab/netlab"
	"github.com/meshd/meshd/internal/sessions"
	"github.com/meshd/meshd/internal/testenv"
)

// fakeLab leaves a lab's state file in a folder, as `lab up` would, for
// the commands that read it before they touch a namespace.
func fakeLab(t *testing.T, routers int) string {
	t.Helper()
	dir := t.TempDir()
	st := `{"dir":` + strconv.Quote(dir) + `,"routers":` + strconv.Itoa(routers) + `,"pids":{}}`
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(st), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The fault command's errors, each checked before the lab is touched.
func TestLabFaultErrors(t *testing.T) {
	dir := fakeLab(t, 4)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"delay", "r1", "r2", "-5ms"}, "delay -5ms: a delay cannot be negative"},
		{[]string{"loss", "r1", "r2", "-5%"}, "loss -5%: a loss cannot be negative"},
		{[]string{"delay", "r1", "r99", "10ms"}, "delay r1→r99 10ms: no router r99 (this lab has r1 to r4)"},
		{[]string{"delay", "r1", "r3", "10ms"}, "no direct link between r1 and r3 (r1 is linked to r2, r4)"},
		{[]string{"flap", "r1", "r2"}, `unknown fault "flap": want one of down, up, reset, delay, loss, clear, reroute, unroute, hijack`},
		{[]string{"reroute", "r1", "r3", "r2"}, "no direct link between r1 and r3"},
		{[]string{"delay", "r1", "r2", "20ms", "--dir", dir}, "--dir: flags go before the fault's kind"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, err := runCmd(t, newRoot(), append([]string{"fault", "--dir", dir}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q (output %q)", err, tt.want, out)
			}
		})
	}
}

var faultLine = regexp.MustCompile("meshd-lab (?:--dir [^ ]+ )?fault ([^#\n`]*[^ #\n`])")

// Every fault the banner shows is one the lab it describes takes.
func TestLabBannerFaults(t *testing.T) {
	for _, n := range []int{2, 4, 5, 20} {
		topo, err := netlab.NewTopology(n)
		if err != nil {
			t.Fatal(err)
		}
		banner := labBanner(topo, 0, n%2 == 0, "/tmp/x")
		if !strings.Contains(banner, "meshd-lab --dir /tmp/x fault reset r1 r2") {
			t.Errorf("%d routers: the banner's faults do not name the lab's folder:\n%s", n, banner)
		}
		ms := faultLine.FindAllStringSubmatch(banner, -1)
		if len(ms) < 7 {
			t.Fatalf("%d routers: %d fault examples in the banner:\n%s", n, len(ms), banner)
		}
		for _, m := range ms {
			if !strings.HasPrefix(m[1], "--") { // --help
				checkFault(t, topo, m[1])
			}
		}
		if _, _, _, ok := topo.RerouteExample(); !ok && !strings.Contains(banner, "--routers 5") {
			t.Errorf("%d routers: the banner does not say where reroute works:\n%s", n, banner)
		}
	}
}

// Every fault the README shows works on the lab `make lab` brings up
// (4 routers), or on the size its comment names (--routers N); a replica
// fault on the README's cluster lab (--replicas 3).
func TestREADMEFaults(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sizeRe := regexp.MustCompile(`--routers (\d+)`)
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		m := faultLine.FindStringSubmatch(sc.Text())
		if m == nil || strings.HasPrefix(m[1], "--") { // --help
			continue
		}
		routers := 4
		if s := sizeRe.FindStringSubmatch(sc.Text()); s != nil {
			routers, _ = strconv.Atoi(s[1])
		}
		topo, err := netlab.NewTopology(routers)
		if err != nil {
			t.Fatal(err)
		}
		checkFault(t, topo, m[1])
		n++
	}
	if n < 6 {
		t.Errorf("README shows %d faults", n)
	}
}

func checkFault(t *testing.T, topo *netlab.Topology, words string) {
	t.Helper()
	f, err := netlab.ParseFault(strings.Fields(words))
	if err != nil {
		t.Errorf("%d routers: %q: %v", len(topo.Routers), words, err)
		return
	}
	if err := topo.Check(f); err != nil {
		t.Errorf("%d routers: %q: %v", len(topo.Routers), words, err)
	}
	if netlab.IsReplicaFault(f.Kind) {
		if err := netlab.CheckReplica(f, 3); err != nil {
			t.Errorf("%q: %v", words, err)
		}
	}
}

// After `meshd-lab down` the watching `lab up` says so once and returns,
// where it printed a netns error every 2 s; an error that repeats while
// the lab is still there is printed once.
func TestWatchTableLabGone(t *testing.T) {
	dir := fakeLab(t, 4)
	var mu sync.Mutex
	calls := 0
	rows := func() ([]sessions.Row, string, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return nil, "", errors.New("meshd in the lab: setns: no such file")
	}
	var out testenv.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- watchTable(context.Background(), &out, 0, 10*time.Millisecond, rows, func() bool { return netlab.IsUp(dir) })
	}()
	testenv.WaitFor(t, 5*time.Second, "5 refreshes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls >= 5
	})
	if err := os.Remove(filepath.Join(dir, "state.json")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("still watching 5 s after the lab went; output:\n%s", out.String())
	}
	s := out.String()
	if c := strings.Count(s, "setns: no such file"); c != 1 {
		t.Errorf("the same error printed %d times, want once:\n%s", c, s)
	}
	if c := strings.Count(s, "the lab is down"); c != 1 {
		t.Errorf("'the lab is down' printed %d times, want once:\n%s", c, s)
	}
}

// runCmd runs a command as the binary would and returns what it printed.
func runCmd(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}
