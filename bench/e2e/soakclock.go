package e2e

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// The clock row: the machine's wall clock (CLOCK_REALTIME) steps 1 h
// forward, back, 1 h back and forward again while the fleet's data flows,
// a quarter of the fault each, after a quarter at the true time that is
// the row's baseline. Nothing else can move one process's wall clock
// (time namespaces offset only the monotonic and boot clocks, and Go
// reads the clock through the vDSO, which LD_PRELOAD tricks do not
// reach), so it is the machine's, for seconds: nothing else should run
// beside the soak. The clock is put back from the monotonic clock, so the
// row leaves it where it would have been, to a few microseconds.
//
// What holds the row:
//   - every notification is in InfluxDB: the fleet stamps with the
//     stepped clock, so its points land an hour ahead or behind; they
//     are counted in three windows (true time, +1 h, −1 h);
//   - no point overwrote another (the proxy's overwritten count);
//   - no timer ran away: meshd's CPU rate in each stepped quarter is at
//     most twice the baseline quarter's plus a tenth of a core, and no
//     gNMI session was made again.

// clockPhases are the offsets from the true time, a quarter of the fault
// each, after the baseline quarter.
var clockPhases = []time.Duration{time.Hour, 0, -time.Hour, 0}

// setWall sets the wall clock to off from where it would be had nobody
// stepped it since t0 (t0's monotonic reading measures the time since).
func setWall(t0 time.Time, off time.Duration) error {
	tv := syscall.NsecToTimeval(t0.UnixNano() + int64(time.Since(t0)) + int64(off))
	if err := syscall.Settimeofday(&tv); err != nil {
		return fmt.Errorf("setting the clock (needs root): %w", err)
	}
	return nil
}

// clockFault runs the baseline quarter and the four stepped ones, then
// counts the three windows.
func clockFault(row *SoakRow, m *meshdProc, proxy *influxProxy, sim *simChild, q influxQuerier, dur time.Duration) (err error) {
	quarter := dur / 4
	mfs, err := scrape(soakMetrics())
	if err != nil {
		return err
	}
	failures0 := sum(mfs, "meshd_gnmi_session_failures_total")
	cpuRate := func() (float64, error) {
		c0, err := procCPU(m.pid())
		if err != nil {
			return 0, err
		}
		t := time.Now()
		if err := sleepWatching(m, quarter); err != nil {
			return 0, err
		}
		c1, err := procCPU(m.pid())
		return (c1 - c0).Seconds() / time.Since(t).Seconds(), err
	}
	start := time.Now()
	base, err := cpuRate()
	if err != nil {
		return err
	}
	t0 := time.Now()
	defer func() {
		if rerr := setWall(t0, 0); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	rates := make([]float64, len(clockPhases))
	for i, off := range clockPhases {
		if err := setWall(t0, off); err != nil {
			return err
		}
		if rates[i], err = cpuRate(); err != nil {
			return err
		}
	}
	if err := setWall(t0, 0); err != nil {
		return err
	}
	end := time.Now()

	mfs, err = scrape(soakMetrics())
	if err != nil {
		return err
	}
	remade := sum(mfs, "meshd_gnmi_session_failures_total") - failures0
	row.Note = fmt.Sprintf("meshd's CPU %.2f cores at the true time, then %.2f (+1 h), %.2f (back), %.2f (-1 h), %.2f (back); gNMI sessions made again %.0f.",
		base, rates[0], rates[1], rates[2], rates[3], remade)
	var failed []error
	for i, r := range rates {
		if bound := 2*base + 0.1; r > bound {
			failed = append(failed, fmt.Errorf("meshd's CPU %.2f cores with the clock at %v, bound %.2f (2 × %.2f at the true time + 0.1): a timer ran away", r, clockPhases[i], bound, base))
		}
	}
	if remade > 0 {
		failed = append(failed, fmt.Errorf("%.0f gNMI sessions were made again while the clock stepped", remade))
	}
	if err := errors.Join(failed...); err != nil {
		row.Failed = err.Error()
	}

	// The fleet stamped with the stepped clock: its notifications are in
	// three windows of whole seconds, with a second's margin each side.
	stepped := func(i int) (from, til int64) {
		a := t0.Add(time.Duration(i)*quarter + clockPhases[i])
		return a.Unix() - 1, a.Add(quarter).Unix() + 2
	}
	wins := [][2]int64{{start.Add(-5*time.Second).Unix() + 1, end.Add(5 * time.Second).Unix()}}
	for _, i := range []int{0, 2} {
		f, t := stepped(i)
		wins = append(wins, [2]int64{f, t})
	}
	counts := func() (expected, found int64, err error) {
		for _, w := range wins {
			e, err := sim.count(w[0], w[1])
			if err != nil {
				return 0, 0, err
			}
			f, err := q.count(w[0], w[1])
			if err != nil {
				return 0, 0, err
			}
			expected, found = expected+e, found+f
		}
		return expected, found, nil
	}
	til := wins[0][1]
	acked0 := proxy.acknowledged()
	deadline := 10*time.Minute + 2*dur
	err = waitFor(deadline, time.Second, func() (bool, error) {
		if time.Now().Unix() <= til+1 {
			return false, m.exited()
		}
		e, f, err := counts()
		if err != nil {
			return false, m.exited()
		}
		row.Expected, row.Found = e, f
		return f >= e, m.exited()
	})
	row.Recovery = time.Since(end)
	row.ReplayRate = float64(proxy.acknowledged()-acked0) / row.Recovery.Seconds()
	row.Lost = row.Expected - row.Found
	if err != nil {
		row.Note += fmt.Sprintf(" Not all in within %v: %v", deadline, err)
		return nil
	}
	time.Sleep(2 * time.Second)
	e, f, err := counts()
	if err != nil {
		return err
	}
	row.Expected, row.Found, row.Lost = e, f, e-f
	return nil
}
