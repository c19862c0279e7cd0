// Package jsonl is a sink that appends the merged change stream to a file
// as JSON lines (NDJSON), one object per leaf update, deletion, event or
// loss, for jq, a log shipper, or a test to read. It is also the worked
// example of adding a sink (package stage): this folder and its
// registration below are all it took.
//
// Lines, in the order the merge core published them:
//
//	{"type":"update","router":"r1","path":"/network-instances/...","value":"ESTABLISHED","time":"...","source":"bmp"}
//	{"type":"delete","router":"r1","path":"/...","time":"...","source":"bmp"}
//	{"type":"event","router":"r1","kind":"peer_up","network_instance":"default","neighbor":"192.0.2.2","time":"...","source":"bmp","fields":{...}}
//	{"type":"lost","count":12}
//
// Values are JSON scalars (decimal64 as a number, a leaf-list as an
// array). "lost" says the sink's queue overflowed and that many updates
// and events are not in the file; unlike the InfluxDB and gNMI sinks it
// does not resynchronise, as a log has no state to bring level.
//
// A failed write is counted (meshd_jsonl_write_errors_total) and logged
// once until a write succeeds again; the sink goes on. At shutdown it
// writes what its feed still holds and closes the file.
package jsonl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/stage"
)

func init() { stage.RegisterSink(stage.SinkInfo{Name: "jsonl", New: newStageSink}) }

// Config is the sink's section: sinks: {jsonl: {path: ...}}.
type Config struct {
	// Path is the file appended to (created 0640 if missing); "-" is
	// standard output.
	Path string `yaml:"path"`
}

// Validate reports a config the sink cannot run with.
func (c *Config) Validate() error {
	if c.Path == "" {
		return errors.New("sinks.jsonl.path: required (a file, or - for standard output)")
	}
	return nil
}

func newStageSink(env stage.Env) (stage.Sink, error) {
	var cfg Config
	if ok, err := env.Decode("jsonl", &cfg); err != nil || !ok {
		return nil, err
	}
	s, err := New(cfg, env.Log, env.Registerer)
	if err != nil {
		return nil, err // not a nil *Sink in a non-nil stage.Sink
	}
	return s, nil
}

// Sink writes batches as JSON lines.
type Sink struct {
	cfg    Config
	log    *slog.Logger
	lines  prometheus.Counter
	errs   prometheus.Counter
	failed bool // the last write failed: logged already
}

// New checks cfg and registers the sink's metrics with reg (if not nil).
// The file is opened by Run.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Sink{
		cfg: cfg,
		log: log.With(slog.String("part", "jsonl"), slog.String("path", cfg.Path)),
		lines: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_jsonl_lines_total",
			Help: "Lines the JSON-lines sink wrote."}),
		errs: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_jsonl_write_errors_total",
			Help: "Writes of the JSON-lines sink that failed (the lines are lost)."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.lines, s.errs} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("jsonl: metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Run appends the feed's batches to the file until ctx ends or the feed
// closes, then writes what is still queued and closes the file.
func (s *Sink) Run(ctx context.Context, feed stage.Feed) error {
	var out io.Writer = os.Stdout
	if s.cfg.Path != "-" {
		f, err := os.OpenFile(s.cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return fmt.Errorf("jsonl: %w", err)
		}
		defer f.Close()
		out = f
	}
	w := bufio.NewWriterSize(out, 64<<10)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	s.log.Info("writing JSON lines")
	for {
		select {
		case b, ok := <-feed.C():
			if !ok {
				s.flush(w, out)
				return nil
			}
			s.write(enc, &b)
			if len(feed.C()) == 0 {
				// A write per burst, not per batch; nothing waits
				// in the buffer while the feed is idle.
				s.flush(w, out)
			}
		case <-ctx.Done():
			for {
				select {
				case b, ok := <-feed.C():
					if ok {
						s.write(enc, &b)
						continue
					}
				default:
				}
				break
			}
			s.flush(w, out)
			return nil
		}
	}
}

// line is one JSON line; empty fields are left out.
type line struct {
	Type            string           `json:"type"`
	Router          string           `json:"router,omitempty"`
	Path            string           `json:"path,omitempty"`
	Value           any              `json:"value,omitempty"`
	Kind            change.EventKind `json:"kind,omitempty"`
	NetworkInstance string           `json:"network_instance,omitempty"`
	Neighbor        string           `json:"neighbor,omitempty"`
	Time            *time.Time       `json:"time,omitempty"`
	Source          string           `json:"source,omitempty"`
	Fields          map[string]any   `json:"fields,omitempty"`
	Route           *change.Route    `json:"route,omitempty"`
	Count           uint64           `json:"count,omitempty"`
	Error           string           `json:"error,omitempty"`
}

func (s *Sink) write(enc *json.Encoder, b *change.Batch) {
	if b.Lost > 0 {
		s.put(enc, &line{Type: "lost", Count: b.Lost})
	}
	for i := range b.Updates {
		u := &b.Updates[i]
		t := u.Time
		l := line{Type: "update", Router: u.Router, Path: change.PathKey(u.Path), Time: &t, Source: u.Source.String()}
		if u.Value == nil {
			l.Type = "delete"
		} else if v, err := change.JSONValue(u.Value); err != nil {
			l.Error = err.Error()
		} else {
			l.Value = v
		}
		s.put(enc, &l)
	}
	for i := range b.Events {
		e := &b.Events[i]
		t := e.Time
		l := line{Type: "event", Router: e.Router, Kind: e.Kind, NetworkInstance: e.NetworkInstance, Neighbor: e.Neighbor,
			Time: &t, Source: e.Source.String(), Fields: e.Fields, Route: e.Route}
		s.put(enc, &l)
	}
}

func (s *Sink) put(enc *json.Encoder, l *line) {
	if err := enc.Encode(l); err != nil {
		s.fail(err)
		return
	}
	s.lines.Inc()
}

func (s *Sink) flush(w *bufio.Writer, out io.Writer) {
	if err := w.Flush(); err != nil {
		s.fail(err)
		// A bufio.Writer keeps its first error for good: drop what
		// failed and start afresh, so the next burst is tried.
		w.Reset(out)
		return
	}
	if s.failed {
		s.failed = false
		s.log.Info("writes succeed again")
	}
}

func (s *Sink) fail(err error) {
	s.errs.Inc()
	if !s.failed {
		s.failed = true
		s.log.Error("write failed; lines are dropped until writes succeed", slog.Any("error", err))
	}
}
