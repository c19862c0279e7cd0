package gnmiclient

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watch follows the targets file. It watches the file's directory, not
// the file, so editors that write a new file and rename it over the old
// one (and Kubernetes' symlink swaps) are seen too. A file that does not
// parse is logged and ignored: the running targets stay as they were.
func (c *Client) watch(ctx context.Context) {
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
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) == filepath.Clean(path) {
				settle = time.After(200 * time.Millisecond)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			log.Warn("gnmi: targets file watch", slog.Any("err", err))
		case <-settle:
			settle = nil
			ts, err := c.loadFile()
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
