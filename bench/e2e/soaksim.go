package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meshd/meshd/bench/gnmisim"
)

// soakSim is the soak's gNMI fleet in its own process. Besides the
// leaves sent it counts notifications by the second of their timestamp:
// "count S0 S1" answers how many notifications were stamped in
// [S0, S1) (Unix seconds). Each notification carries a new
// messages/received/UPDATE value for its neighbor, so it must become one
// bgp_neighbor point with an updates_rx field in InfluxDB, at its
// timestamp: that is what the harness counts there.
type soakSim struct{ *child }

func startSoakSim(self string, l SoakLoad, targetsFile string) (*soakSim, error) {
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), roleEnv+"=soaksim",
		fmt.Sprintf("MESHD_SOAK_SIM=%d,%d,%d,%d,%s", l.Targets, l.Neighbors, l.leafRate(), soakFleetLow, targetsFile))
	c, err := startChild(cmd)
	if err != nil {
		return nil, err
	}
	if line, err := c.line(); err != nil || line != "ready" {
		c.close()
		return nil, fmt.Errorf("soak fleet simulator: %q %v", line, err)
	}
	return &soakSim{c}, nil
}

// count is the number of notifications stamped in [from, til), whole
// seconds.
func (s *soakSim) count(from, til int64) (int64, error) {
	line, err := s.ask(fmt.Sprintf("count %d %d", from, til), true)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(line, 10, 64)
}

// soakSimMain is the simulator child's side; it serves until stdin
// closes, and never longer than three hours.
func soakSimMain() int {
	f := strings.Split(os.Getenv("MESHD_SOAK_SIM"), ",")
	if len(f) != 5 {
		fmt.Fprintln(os.Stderr, "soak sim: MESHD_SOAK_SIM must be targets,neighbors,rate,baseport,file")
		return 2
	}
	n := make([]int, 4)
	for i := range n {
		v, err := strconv.Atoi(f[i])
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak sim:", err)
			return 2
		}
		n[i] = v
	}
	var mu sync.Mutex
	bySecond := map[int64]int64{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour)
	defer cancel()
	s, err := gnmisim.Start(ctx, gnmisim.Config{Targets: n[0], Neighbors: n[1], Rate: float64(n[2]) / float64(n[0]),
		Tick: 100 * time.Millisecond, BasePort: n[3], Prefix: "soak",
		Sent: func(ts int64, _ int) {
			mu.Lock()
			bySecond[ts/1e9]++
			mu.Unlock()
		}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak sim:", err)
		return 1
	}
	if err := s.WriteTargetsFile(f[4]); err != nil {
		fmt.Fprintln(os.Stderr, "soak sim:", err)
		return 1
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var from, til int64
		if _, err := fmt.Sscanf(in.Text(), "count %d %d", &from, &til); err != nil {
			fmt.Println("-1")
			continue
		}
		var c int64
		mu.Lock()
		for sec := from; sec < til; sec++ {
			c += bySecond[sec]
		}
		mu.Unlock()
		fmt.Println(c)
	}
	return 0
}
