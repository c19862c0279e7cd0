package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/meshd/meshd/bench/internal/gnmisub"
)

// clients are the bench's gNMI subscribers, in this process or in a child
// process (so that the server's CPU and memory are measured apart from
// theirs; both share the machine's cores all the same).
type clients interface {
	syncTime() time.Duration
	start() error
	stop() (result, error)
	close()
}

// result is what the subscribers saw while measuring, with the clients'
// CPU and RSS when they run in a child process.
type result struct {
	gnmisub.Result
	CPU time.Duration // the clients' CPU while measuring (child only)
	RSS string        // the clients' RSS (child only)
}

// subscriberSet is n STREAM ON_CHANGE subscribers on the whole tree
// (gnmisub), with the CPU they used while measuring.
type subscriberSet struct {
	set  *gnmisub.Set
	cpu0 time.Duration
}

func connect(ctx context.Context, addr string, n int, withSync bool) (*subscriberSet, error) {
	set, err := gnmisub.Connect(ctx, addr, n, gnmisub.Config{Sync: withSync, ClientWindow: clientWindow})
	if err != nil {
		return nil, err
	}
	return &subscriberSet{set: set}, nil
}

func (s *subscriberSet) begin() {
	s.cpu0 = cpuTime()
	s.set.Begin()
}

func (s *subscriberSet) end() result {
	r := s.set.End()
	return result{Result: r, CPU: cpuTime() - s.cpu0, RSS: procStatus("VmRSS")}
}

func (s *subscriberSet) shutdown() { s.set.Close() }

// inProcClients runs the subscribers in this process.
type inProcClients struct {
	set    *subscriberSet
	cancel context.CancelFunc
}

func startInProc(ctx context.Context, addr string, n int, withSync bool) (clients, error) {
	ctx, cancel := context.WithCancel(ctx)
	set, err := connect(ctx, addr, n, withSync)
	if err != nil {
		cancel()
		return nil, err
	}
	return &inProcClients{set: set, cancel: cancel}, nil
}

func (c *inProcClients) syncTime() time.Duration { return c.set.set.SyncTime() }
func (c *inProcClients) start() error            { c.set.begin(); return nil }
func (c *inProcClients) stop() (result, error) {
	r := c.set.end()
	r.CPU, r.RSS = 0, ""
	return r, nil
}
func (c *inProcClients) close() { c.cancel(); c.set.shutdown() }

// child runs the subscribers in a re-executed copy of this binary, driven
// over its stdin ("start", "stop") and reporting on its stdout (a sync
// line, then the result as JSON).
type child struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	synced time.Duration
}

func startChild(addr string, n int, withSync bool) (clients, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-child", "-addr", addr, "-subscribers", fmt.Sprint(n), fmt.Sprintf("-sync=%v", withSync), fmt.Sprintf("-client-window=%d", clientWindow)}
	if cpuProfile != "" {
		args = append(args, "-cpuprofile", cpuProfile+".clients")
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	c.out.Buffer(make([]byte, 1<<20), 1<<20)
	line, err := c.line()
	if err != nil {
		c.close()
		return nil, err
	}
	d, err := time.ParseDuration(strings.TrimPrefix(line, "synced "))
	if err != nil {
		c.close()
		return nil, fmt.Errorf("child: %q", line)
	}
	c.synced = d
	return c, nil
}

func (c *child) line() (string, error) {
	if !c.out.Scan() {
		if err := c.out.Err(); err != nil {
			return "", fmt.Errorf("child: %w", err)
		}
		return "", errors.New("child: exited early")
	}
	return c.out.Text(), nil
}

func (c *child) syncTime() time.Duration { return c.synced }

func (c *child) start() error {
	_, err := io.WriteString(c.in, "start\n")
	return err
}

func (c *child) stop() (result, error) {
	var r result
	if _, err := io.WriteString(c.in, "stop\n"); err != nil {
		return r, err
	}
	line, err := c.line()
	if err != nil {
		return r, err
	}
	err = json.Unmarshal([]byte(line), &r)
	return r, err
}

func (c *child) close() {
	_ = c.in.Close()
	_ = c.cmd.Wait()
}

// runChild is the child process's side.
func runChild(addr string, n int, withSync bool) error {
	set, err := connect(context.Background(), addr, n, withSync)
	if err != nil {
		return err
	}
	fmt.Printf("synced %v\n", set.set.SyncTime())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "start":
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				_ = pprof.StartCPUProfile(f)
			}
			set.begin()
		case "stop":
			pprof.StopCPUProfile()
			b, err := json.Marshal(set.end())
			if err != nil {
				return err
			}
			fmt.Println(string(b))
		}
	}
	set.shutdown()
	return nil
}
