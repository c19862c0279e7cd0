package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The disk row: meshd's spool sits on a tmpfs of its own (soakDiskSize),
// and while InfluxDB stays up its disk first fills (a file takes every
// free byte) for half the fault, then its directory is deleted (an
// operator's rm -rf, a /tmp cleaner) for the other half. meshd must say
// so (meshd_influx_spool_errors_total, its log), stay up, keep within the
// disk, and lose nothing of what the fleet sent: InfluxDB is up, so the
// spool's trouble must not become a gap in history.
//
// A read-only disk is not a phase here: a disk that turns read-only
// under open files (the kernel's errors=remount-ro) cannot be made
// writable again without unmounting it, so it cannot end while meshd
// runs; sinks/influx's TestSpoolReadOnly covers it against a real
// InfluxDB.

// soakDiskSize is the spool disk's size: far below spool-max-bytes, so
// the disk, not the bound, is what fills.
const soakDiskSize = 256 << 20

// mountSpoolDisk mounts a tmpfs of soakDiskSize at dir.
func mountSpoolDisk(dir string) (unmount func(), err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the disk row mounts a tmpfs for the spool: run as root")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := syscall.Mount("meshd-soak-spool", dir, "tmpfs", 0, fmt.Sprintf("size=%d", soakDiskSize)); err != nil {
		return nil, fmt.Errorf("mounting a tmpfs for the spool at %s: %w", dir, err)
	}
	return func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) }, nil
}

// fillDisk takes every free byte of the file system holding dir with
// one file, and returns a func that frees them. It allocates in steps
// down to a page, as a file system's free count is not quite what one
// file can take.
func fillDisk(dir string) (free func() error, size int64, err error) {
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	for _, step := range []int64{1 << 20, 4 << 10} {
		for {
			if err := unix.Fallocate(int(f.Fd()), 0, size, step); err != nil {
				if !errors.Is(err, unix.ENOSPC) {
					os.Remove(path)
					return nil, 0, fmt.Errorf("filling %s: %w", dir, err)
				}
				break
			}
			size += step
		}
	}
	return func() error { return os.Remove(path) }, size, nil
}

// diskFault runs the two phases and counts the window.
func diskFault(row *SoakRow, m *meshdProc, proxy *influxProxy, sim *simChild, q influxQuerier, spoolDir string, dur time.Duration) error {
	disk := filepath.Dir(spoolDir)
	start := time.Now()
	free, size, err := fillDisk(disk)
	if err != nil {
		return err
	}
	if err := sleepWatching(m, dur/2); err != nil {
		free()
		return err
	}
	mfs, err := scrape(soakMetrics())
	if err != nil {
		free()
		return err
	}
	fullErrors := sum(mfs, "meshd_influx_spool_errors_total")
	if err := free(); err != nil {
		return err
	}
	if err := os.RemoveAll(spoolDir); err != nil {
		return err
	}
	if err := sleepWatching(m, dur-dur/2); err != nil {
		return err
	}
	end := time.Now()
	if err := countWindow(row, m, proxy, sim, q, start, end, dur); err != nil {
		return err
	}
	if mfs, err = scrape(soakMetrics()); err != nil {
		return err
	}
	logText, _ := os.ReadFile(m.logPath)
	var failed []error
	if fullErrors == 0 {
		failed = append(failed, errors.New("meshd counted no spool error while its disk was full"))
	}
	if !strings.Contains(string(logText), "cannot append to the spool") {
		failed = append(failed, errors.New("meshd's log does not say its spool's disk refused an append"))
	}
	if _, err := os.Stat(spoolDir); err != nil {
		failed = append(failed, fmt.Errorf("the spool directory was not made again: %v", err))
	}
	row.Note = fmt.Sprintf("disk %d MiB, %d MiB of it filled; spool errors %.0f while full, %.0f in all; %.0f points written to InfluxDB past the refused spool; points dropped for the spool: %.0f lost with a deleted segment, %.0f not written; the sink blocked %.1f s.",
		soakDiskSize>>20, size>>20, fullErrors, sum(mfs, "meshd_influx_spool_errors_total"), sum(mfs, "meshd_influx_points_direct_total"),
		sum(mfs, "meshd_influx_points_dropped_total", "reason", "spool_lost"), sum(mfs, "meshd_influx_points_dropped_total", "reason", "spool_error"),
		sum(mfs, "meshd_influx_blocked_seconds_total"))
	if err := errors.Join(failed...); err != nil {
		row.Failed = err.Error()
	}
	return nil
}
