package gnmiclient

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watch follows the targets file, whose content was last when Run read
// it. It watches the file's directory, not the file, so editors that write
// a new file and rename it over the old one are seen too; and it rereads
// the file on any event there, as a Kubernetes ConfigMap changes the file
// by swapping a symlink ("..data") the file's own name never sees an event
// for. A content seen before is not reloaded. A file that does not parse
// is logged and ignored: the running targets stay as they were.
func (c *Client) watch(ctx context.Context, last []byte) {
	path := c.cfg.TargetsFile
	log := c.log.With(slog.String("file", path))
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Error("gnmi: cannot watch the targets file; changes need a restart", slog.Any("err", err))
		return
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(path)); err != nil {
		log.Error("gnmi: cannot watch the targets file; changes need a restart", slog.Any("err", err))
		return
	}
	// Editors write in bursts; settle before reloading.
	var settle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-w.Events:
			if !ok {
				return
			}
			settle = time.After(200 * time.Millisecond)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			log.Warn("gnmi: targets file watch", slog.Any("err", err))
		case <-settle:
			settle = nil
			raw, err := os.ReadFile(path)
			if err != nil {
				log.Warn("gnmi: targets file unreadable; keeping the running targets", slog.Any("err", err))
				continue
			}
			if bytes.Equal(raw, last) {
				continue
			}
			last = raw
			ts, err := c.loadFile(raw)
			if err != nil {
				log.Error("gnmi: targets file not reloaded; keeping the running targets", slog.Any("err", err))
				continue
			}
			c.mu.Lock()
			c.fromFile = ts
			c.mu.Unlock()
			c.reconcile()
			log.Info("gnmi: targets file reloaded", slog.Int("targets", len(ts)))
		}
	}
}
