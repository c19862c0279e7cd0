//go:build integration

package influx

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
)

// TestSpoolDirDeleted deletes the spool's directory while meshd runs and
// InfluxDB is down (an operator's rm -rf, a cleaner of /tmp), then sends
// as much again. The sink makes the directory again and goes on; a
// segment it still had open is copied back whole, and only the points of
// segments it had closed are lost, each counted: InfluxDB ends up with
// every point sent less exactly the ones meshd_influx_points_dropped_total
// {reason="spool_lost"} counts. (Before, the sink's reader failed to open
// the deleted segment once a second for good, and nothing more reached
// InfluxDB, while appends went on into the deleted file.)
func TestSpoolDirDeleted(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxBytes int64 // the spool's bound: its segments are an eighth of it
		lossy    bool  // segments closed before the deletion hold points
	}{
		{"one segment, copied back", 64 << 20, false},
		{"closed segments lost, counted", 1 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := testenv.StartInfluxd(t)
			in.CreateDB(t, "meshd")
			in.Stop()
			cfg := testConfig(t, in.URL, "meshd")
			cfg.SpoolDir = t.TempDir() + "/spool"
			cfg.SpoolMaxBytes = tc.maxBytes
			cfg.BatchSize = 500
			reg, sub, stop := startSink(t, cfg, 64)
			const total = 6000 // ~900 kB of line protocol
			base := time.Now().Add(-time.Hour)
			send := func(from, to int) {
				for i := from; i < to; i += 500 {
					sub.ch <- change.Batch{Events: routeEvents("r1", i, 500, base.Add(time.Duration(i)*time.Millisecond))}
					// Past the flush interval: one spool record a batch.
					time.Sleep(150 * time.Millisecond)
				}
			}
			send(0, total/2)
			testenv.WaitFor(t, 30*time.Second, "the first half spooled", func() bool {
				return metric(t, reg, "meshd_influx_points_spooled_total", "") == total/2
			})
			if err := os.RemoveAll(cfg.SpoolDir); err != nil {
				t.Fatal(err)
			}
			send(total/2, total)
			testenv.WaitFor(t, 30*time.Second, "the second half spooled", func() bool {
				return metric(t, reg, "meshd_influx_points_spooled_total", "") == total
			})
			if _, err := os.Stat(cfg.SpoolDir); err != nil {
				t.Fatalf("the spool directory was not made again: %v", err)
			}
			in.Start()
			lost := 0
			testenv.WaitFor(t, 60*time.Second, "every point not counted lost in InfluxDB", func() bool {
				lost = int(metric(t, reg, "meshd_influx_points_dropped_total", "spool_lost"))
				return count(t, in, "meshd", mBMPRoute, "prefix") == total-lost
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			got := count(t, in, "meshd", mBMPRoute, "prefix")
			t.Logf("points in InfluxDB %d of %d, counted lost %d", got, total, lost)
			if got != total-lost {
				t.Errorf("InfluxDB holds %d points; %d sent, %d counted lost", got, total, lost)
			}
			if tc.lossy && (lost == 0 || lost >= total/2) {
				t.Errorf("%d points counted lost; want some of the first half (its closed segments) and none of the second", lost)
			}
			if !tc.lossy && lost != 0 {
				t.Errorf("%d points counted lost; the one segment was open and should have been copied back", lost)
			}
		})
	}
}

// ext4Disk mounts a 32 MiB ext4 file system from an image file, as a disk
// that remounts itself read-only on an error (errors=remount-ro), and
// returns its directory and a func that makes it fail: ext4's
// trigger_fs_error, after which every write through a file already open
// fails with EROFS, as on a disk the kernel took read-only under meshd.
func ext4Disk(t *testing.T) (dir string, fail func()) {
	t.Helper()
	testenv.RequireRoot(t)
	img := filepath.Join(t.TempDir(), "disk.img")
	dir = t.TempDir()
	for _, c := range [][]string{{"truncate", "-s", "32M", img}, {"mkfs.ext4", "-q", "-F", img}, {"mount", "-o", "loop,errors=remount-ro", img, dir}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s (scripts/install-tools.sh installs e2fsprogs and mount; loop devices are needed)", c, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	out, err := exec.Command("findmnt", "-n", "-o", "SOURCE", dir).Output()
	if err != nil {
		t.Fatalf("findmnt %s: %v", dir, err)
	}
	dev := filepath.Base(strings.TrimSpace(string(out)))
	return dir, func() {
		t.Helper()
		if err := os.WriteFile("/sys/fs/ext4/"+dev+"/trigger_fs_error", []byte("1"), 0); err != nil {
			t.Fatalf("making %s fail: %v", dev, err)
		}
		if f, err := os.Create(filepath.Join(dir, "probe")); err == nil || !errors.Is(err, syscall.EROFS) {
			if f != nil {
				f.Close()
			}
			t.Fatalf("the disk is still writable after its error: %v", err)
		}
	}
}

// ext4Sink runs a sink writing to in with its spool on an ext4Disk whose
// fail turns it read-only. Close tries the disk until its deadline: a
// short one, as it may not succeed.
func ext4Sink(t *testing.T, in *testenv.Influxd) (reg *prometheus.Registry, sub chanSub, stop func() (runErr, closeErr error), fail func()) {
	t.Helper()
	dir, fail := ext4Disk(t)
	cfg := testConfig(t, in.URL, "meshd")
	cfg.SpoolDir = filepath.Join(dir, "spool")
	cfg.BatchSize = 500
	reg = prometheus.NewRegistry()
	s, err := New(cfg, WithRegisterer(reg), WithLogger(logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	sub = chanSub{make(chan change.Batch, 64)}
	return reg, sub, runSinkClose(s, sub, 3*time.Second), fail
}

// TestSpoolReadOnly: the spool's disk turns read-only while meshd runs
// (the kernel remounts it after an error) and InfluxDB is down. Appends
// fail, each failure counted and logged; the points spooled before are
// still read and reach InfluxDB once it is back; what the disk refused is
// counted as dropped at the latest when meshd stops. Nothing goes
// uncounted: InfluxDB's count plus every count of dropped points is what
// was sent.
func TestSpoolReadOnly(t *testing.T) {
	in := testenv.StartInfluxd(t)
	in.CreateDB(t, "meshd")
	in.Stop()
	reg, sub, stop, fail := ext4Sink(t, in)
	base := time.Now().Add(-time.Hour)
	sent := 0
	// Sends as the merge core does: a batch the sink cannot take now is
	// dropped and counted, not waited for.
	notTaken := 0
	send := func(from, to int) {
		for i := from; i < to; i += 500 {
			select {
			case sub.ch <- change.Batch{Events: routeEvents("r1", i, 500, base.Add(time.Duration(i)*time.Millisecond))}:
				sent += 500
			default:
				notTaken += 500
			}
			time.Sleep(150 * time.Millisecond)
		}
	}
	const total = 6000
	send(0, total/2)
	testenv.WaitFor(t, 30*time.Second, "the first half spooled", func() bool {
		return metric(t, reg, "meshd_influx_points_spooled_total", "") == total/2
	})
	fail()
	send(total/2, total)
	testenv.WaitFor(t, 30*time.Second, "an append refused by the read-only disk", func() bool {
		return metric(t, reg, "meshd_influx_spool_errors_total", "") > 0
	})
	in.Start()
	testenv.WaitFor(t, 60*time.Second, "the points spooled before the failure in InfluxDB", func() bool {
		return count(t, in, "meshd", mBMPRoute, "prefix") >= total/2
	})
	runErr, closeErr := stop()
	if runErr != nil {
		t.Errorf("Run: %v", runErr)
	}
	// What the disk refused is reported when meshd stops: by count, or
	// (when it all went to InfluxDB past the spool once InfluxDB was
	// back) as the spool's own failure to sync on the read-only disk.
	if closeErr != nil && !strings.Contains(closeErr.Error(), "could not be spooled") && !strings.Contains(closeErr.Error(), "read-only file system") {
		t.Errorf("Close: %v", closeErr)
	}
	got := count(t, in, "meshd", mBMPRoute, "prefix")
	dropped := int(metric(t, reg, "meshd_influx_points_dropped_total", ""))
	t.Logf("sent %d (%d not taken), in InfluxDB %d, dropped %d, spool errors %v", sent, notTaken, got, dropped,
		metric(t, reg, "meshd_influx_spool_errors_total", ""))
	if got+dropped != sent {
		t.Errorf("InfluxDB holds %d and %d are counted dropped, but %d were sent: %d points unaccounted for", got, dropped, sent, sent-got-dropped)
	}
}

// TestSpoolRefusedInfluxUp: the spool's disk turns read-only while meshd
// runs and InfluxDB is up. The sink writes the points the disk refuses
// straight to InfluxDB rather than hold its consumer (the merge core
// would drop its batches): every batch is taken, and every point sent is
// in InfluxDB, none dropped.
func TestSpoolRefusedInfluxUp(t *testing.T) {
	in := testenv.StartInfluxd(t)
	in.CreateDB(t, "meshd")
	reg, sub, stop, fail := ext4Sink(t, in)
	base := time.Now().Add(-time.Hour)
	const total = 6000
	send := func(from, to int) {
		for i := from; i < to; i += 500 {
			// As the merge core waits (merge.queue-wait), at most 1 s.
			select {
			case sub.ch <- change.Batch{Events: routeEvents("r1", i, 500, base.Add(time.Duration(i)*time.Millisecond))}:
			case <-time.After(time.Second):
				t.Errorf("the sink did not take a batch within 1 s")
			}
			time.Sleep(150 * time.Millisecond)
		}
	}
	send(0, total/2)
	testenv.WaitFor(t, 30*time.Second, "the first half in InfluxDB", func() bool {
		return count(t, in, "meshd", mBMPRoute, "prefix") == total/2
	})
	fail()
	send(total/2, total)
	testenv.WaitFor(t, 30*time.Second, "every point in InfluxDB", func() bool {
		return count(t, in, "meshd", mBMPRoute, "prefix") == total
	})
	if runErr, _ := stop(); runErr != nil {
		t.Errorf("Run: %v", runErr)
	}
	direct := metric(t, reg, "meshd_influx_points_direct_total", "")
	if errs := metric(t, reg, "meshd_influx_spool_errors_total", ""); errs == 0 || direct == 0 {
		t.Errorf("spool errors %v, points written past the spool %v: want both counted", errs, direct)
	}
	if d := metric(t, reg, "meshd_influx_points_dropped_total", ""); d != 0 {
		t.Errorf("%v points dropped", d)
	}
	t.Logf("%v points written past the refused spool", direct)
}
