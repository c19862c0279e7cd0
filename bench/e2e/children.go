package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meshd/meshd/bench/gnmisim"
)

// binaries are the programs a run starts: meshd itself, the gNMI
// subscribers (bench/gnmiserver's child mode) and this test binary (the
// fleet simulator's child mode).
type binaries struct{ meshd, subs, self string }

// build compiles meshd and the subscribers' program into dir, from the
// module this package is in.
func build(dir string) (binaries, error) {
	b := binaries{meshd: filepath.Join(dir, "meshd"), subs: filepath.Join(dir, "gnmisubs")}
	var err error
	if b.self, err = os.Executable(); err != nil {
		return b, err
	}
	for pkg, out := range map[string]string{"../../cmd/meshd": b.meshd, "../gnmiserver": b.subs} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		if o, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %v\n%s", pkg, err, o)
		}
	}
	return b, nil
}

// roleEnv makes the test binary a child: the fleet simulator.
const roleEnv = "MESHD_E2E_ROLE"

// child is a helper process driven by lines on its stdin, answering with
// lines on its stdout, until its stdin closes.
type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startChild(cmd *exec.Cmd) (*child, error) {
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
	return c, nil
}

// line reads the child's next line.
func (c *child) line() (string, error) {
	if !c.out.Scan() {
		return "", errors.Join(fmt.Errorf("%s exited", filepath.Base(c.cmd.Path)), c.out.Err())
	}
	return c.out.Text(), nil
}

// ask sends a command line; answer says whether to read a reply.
func (c *child) ask(cmd string, answer bool) (string, error) {
	if _, err := io.WriteString(c.in, cmd+"\n"); err != nil || !answer {
		return "", err
	}
	return c.line()
}

func (c *child) close() {
	_ = c.in.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// simChild is the gNMI fleet in its own process: "sent" answers with the
// leaf updates sent so far. A fleet started with count also answers
// "count S0 S1": the notifications stamped in [S0, S1) (Unix seconds).
type simChild struct{ *child }

// simFleet is the fleet a simChild serves, and where.
type simFleet struct {
	targets, neighbors, rate int // rate: leaf updates a second, whole fleet
	basePort                 int
	prefix                   string // router names' prefix
	count                    bool   // count notifications by second
}

func startSim(self string, f simFleet, targetsFile string) (*simChild, error) {
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), roleEnv+"=sim",
		fmt.Sprintf("MESHD_E2E_SIM=%d,%d,%d,%d,%s,%t,%s", f.targets, f.neighbors, f.rate, f.basePort, f.prefix, f.count, targetsFile))
	c, err := startChild(cmd)
	if err != nil {
		return nil, err
	}
	if line, err := c.line(); err != nil || line != "ready" {
		c.close()
		return nil, fmt.Errorf("fleet simulator: %q %v", line, err)
	}
	return &simChild{c}, nil
}

func (c *simChild) sent() (uint64, error) {
	if c == nil {
		return 0, nil
	}
	line, err := c.ask("sent", true)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(line, 10, 64)
}

// overlaps is how many Subscribe streams began while their target had
// another open (gnmisim.Sim.Overlaps).
func (c *simChild) overlaps() (uint64, error) {
	line, err := c.ask("overlaps", true)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(line, 10, 64)
}

// count is the number of notifications stamped in [from, til), whole
// seconds (a fleet started with count).
func (c *simChild) count(from, til int64) (int64, error) {
	line, err := c.ask(fmt.Sprintf("count %d %d", from, til), true)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(line, 10, 64)
}

// simMain is the simulator child's side. It serves until stdin closes,
// and never longer than three hours.
func simMain() int {
	f := strings.SplitN(os.Getenv("MESHD_E2E_SIM"), ",", 7)
	if len(f) != 7 {
		fmt.Fprintln(os.Stderr, "e2e sim: MESHD_E2E_SIM must be targets,neighbors,rate,baseport,prefix,count,file")
		return 2
	}
	n := make([]int, 4)
	for i := range n {
		v, err := strconv.Atoi(f[i])
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e sim:", err)
			return 2
		}
		n[i] = v
	}
	var mu sync.Mutex
	bySecond := map[int64]int64{}
	cfg := gnmisim.Config{Targets: n[0], Neighbors: n[1], Rate: float64(n[2]) / float64(n[0]),
		Tick: 100 * time.Millisecond, BasePort: n[3], Prefix: f[4]}
	if f[5] == "true" {
		cfg.Sent = func(ts int64, _ int) {
			mu.Lock()
			bySecond[ts/1e9]++
			mu.Unlock()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour)
	defer cancel()
	s, err := gnmisim.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e sim:", err)
		return 1
	}
	if err := s.WriteTargetsFile(f[6]); err != nil {
		fmt.Fprintln(os.Stderr, "e2e sim:", err)
		return 1
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var from, til int64
		switch _, err := fmt.Sscanf(in.Text(), "count %d %d", &from, &til); {
		case in.Text() == "sent":
			fmt.Println(s.Sent())
		case in.Text() == "overlaps":
			fmt.Println(s.Overlaps())
		case err == nil:
			var c int64
			mu.Lock()
			for sec := from; sec < til; sec++ {
				c += bySecond[sec]
			}
			mu.Unlock()
			fmt.Println(c)
		default:
			fmt.Println("-1")
		}
	}
	return 0
}

// subChild is the gNMI subscribers, bench/gnmiserver's child mode:
// "synced D" once every subscriber has its sync_response, then "start"
// and "stop" bracket the measured window and "stop" answers with the
// result as JSON.
type subChild struct{ *child }

// subResult is the part of the child's result the bench reports.
type subResult struct {
	Notifications int64
	P50, P99, Max time.Duration
}

func startSubs(bin, addr string, n int) (*subChild, error) {
	c, err := startChild(exec.Command(bin, "-child", "-addr", addr, "-subscribers", strconv.Itoa(n), "-sync=false"))
	if err != nil {
		return nil, err
	}
	if line, err := c.line(); err != nil || !strings.HasPrefix(line, "synced ") {
		c.close()
		return nil, fmt.Errorf("subscribers did not sync: %q %v", line, err)
	}
	return &subChild{c}, nil
}

func (c *subChild) start() error {
	_, err := c.ask("start", false)
	return err
}

func (c *subChild) stop() (subResult, error) {
	var r subResult
	line, err := c.ask("stop", true)
	if err != nil {
		return r, err
	}
	err = json.Unmarshal([]byte(line), &r)
	return r, err
}
