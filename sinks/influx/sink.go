package influx

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	ihttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/sinks/influx/spool"
	"github.com/meshd/meshd/stage"
)

// ErrRefused wraps a write InfluxDB refused for a reason retrying cannot
// fix (no such database, bad credentials, no permission). The points stay
// in the spool for the next start with a corrected configuration.
var ErrRefused = errors.New("influx: InfluxDB refused the write")

// Option configures a Sink.
type Option func(*options)

type options struct {
	reg  prometheus.Registerer
	log  *slog.Logger
	snap stage.Snapshotter
}

// WithRegisterer registers the sink's metrics with reg.
func WithRegisterer(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithSnapshotter lets the sink prime its neighbor cache at start and
// resynchronise it after lost batches.
func WithSnapshotter(s stage.Snapshotter) Option { return func(o *options) { o.snap = s } }

// Sink writes the merged change stream to InfluxDB through an on-disk
// spool. See the package documentation for the design.
type Sink struct {
	cfg      Config
	o        options
	log      *slog.Logger
	m        *metrics
	sp       *spool.Spool
	client   influxdb2.Client
	http     ihttp.Service
	writeURL string
	gzPool   sync.Pool // *gzipBuf

	// Owned by the consumer (Run, then Close).
	mu        sync.Mutex
	mp        *mapper
	buf       []byte
	bufPoints int
	maxBuf    int
	seen      mapStats
	// resyncDue: the merge core dropped batches for this sink; the
	// cache is rebuilt once the batch that said so is mapped.
	resyncDue bool
	// resyncOnly, when not nil, limits the due resync to the routers
	// whose updates the core dropped (change.Batch.LostRouters); nil
	// resyncs every router.
	resyncOnly map[string]struct{}
	// spoolErrAt is when a refused append was last logged, and
	// spoolErrQuiet how many were refused since.
	spoolErrAt    time.Time
	spoolErrQuiet int

	writerCancel context.CancelFunc
	writerDone   chan struct{}
	fatalOnce    sync.Once
	fatal        chan struct{}
	fatalErr     error
	closeOnce    sync.Once
}

// New validates cfg (after SetDefaults), opens the spool (replaying what
// an earlier run left in it) and starts the writer.
func New(cfg Config, opts ...Option) (*Sink, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, f := range opts {
		f(&o)
	}
	s := &Sink{cfg: cfg, o: o, log: o.log.With(slog.String("sink", "influx")), mp: newMapper(),
		fatal: make(chan struct{}), writerDone: make(chan struct{})}
	s.mp.keepValues = o.snap == nil
	policy := spool.Block
	if cfg.SpoolFullPolicy == PolicyDropOldest {
		policy = spool.DropOldest
	}
	sync := cfg.SpoolSyncInterval
	if sync < 0 {
		sync = 0
	}
	sp, err := spool.Open(spool.Options{Dir: cfg.SpoolDir, MaxBytes: cfg.SpoolMaxBytes, Policy: policy, SyncInterval: sync, Logger: s.log})
	if err != nil {
		return nil, fmt.Errorf("influxdb.spool-dir: %w", err)
	}
	s.sp = sp
	s.maxBuf = int(min(1<<20, cfg.SpoolMaxBytes/8))
	s.m = newMetrics(func() float64 { return float64(sp.Stats().Points) }, func() float64 { return float64(sp.Stats().Bytes) })
	if o.reg != nil {
		if err := s.m.register(o.reg); err != nil {
			sp.Close()
			return nil, fmt.Errorf("influx: metrics: %w", err)
		}
	}
	copts := influxdb2.DefaultOptions().
		SetUseGZip(cfg.Gzip).
		SetHTTPRequestTimeout(uint(cfg.Timeout/time.Second) + 1).
		SetLogLevel(0)
	s.client = influxdb2.NewClientWithOptions(cfg.URL, cfg.token(), copts)
	// Batches are line protocol already (encoded by the mapper, kept in
	// the spool), so they are POSTed as they are through the client's
	// HTTP service (its auth, timeouts and error parsing); gzip is done
	// here with a reused writer at BestSpeed instead of a new
	// default-level writer and goroutine per request.
	s.http = s.client.HTTPService()
	s.writeURL, err = writeURL(s.http.ServerAPIURL(), cfg.Org, cfg.bucket())
	if err != nil {
		sp.Close()
		return nil, fmt.Errorf("influxdb.url: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.writerCancel = cancel
	go s.writeLoop(ctx)
	return s, nil
}

// Err returns the error that stopped the writer, if any.
func (s *Sink) Err() error {
	select {
	case <-s.fatal:
		return s.fatalErr
	default:
		return nil
	}
}

func (s *Sink) setFatal(err error) {
	s.fatalOnce.Do(func() {
		s.fatalErr = err
		s.m.up.Set(0)
		s.log.Error("influx: writes stopped; points stay in the spool until meshd restarts with a fixed configuration",
			slog.String("url", s.cfg.URL), slog.String("bucket", s.cfg.bucket()), slog.String("error", err.Error()))
		close(s.fatal)
	})
}

// Run consumes batches until ctx is done or the subscription closes,
// mapping them to points and appending them to the spool. It returns nil
// then, or an ErrRefused error when InfluxDB refuses writes for good.
func (s *Sink) Run(ctx context.Context, sub stage.Feed) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.resync(ctx, sub, false); err != nil {
		s.drainQueued(sub)
		return nil
	}
	var snapC <-chan time.Time
	if s.cfg.SnapshotInterval > 0 {
		t := time.NewTicker(s.cfg.SnapshotInterval)
		defer t.Stop()
		snapC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			s.drainQueued(sub)
			return nil
		case <-s.fatal:
			_ = s.flush(ctx)
			return s.fatalErr
		case <-snapC:
			if err := s.snapshot(ctx, sub); err != nil {
				s.drainQueued(sub)
				return nil
			}
		case b, ok := <-sub.C():
			if !ok {
				return s.flush(ctx)
			}
			if err := s.consume(ctx, sub, &b); err != nil {
				s.drainQueued(sub) // ctx done while blocked; Close retries the buffer
				return nil
			}
			// Drain what is queued before touching the disk, so a burst
			// becomes few large spool records.
			for more := true; more && len(s.buf) < s.maxBuf; {
				select {
				case b, ok = <-sub.C():
					if !ok {
						return s.flush(ctx)
					}
					if err := s.consume(ctx, sub, &b); err != nil {
						s.drainQueued(sub)
						return nil
					}
				default:
					more = false
				}
			}
			if err := s.flush(ctx); err != nil {
				s.drainQueued(sub)
				return nil
			}
		}
		for s.resyncDue {
			s.resyncDue = false
			if err := s.resync(ctx, sub, true); err != nil {
				s.drainQueued(sub)
				return nil
			}
			if err := s.flush(ctx); err != nil {
				s.drainQueued(sub)
				return nil
			}
		}
	}
}

// drainQueued takes what is already queued when Run stops, however it
// stops: a graceful shutdown drains. Every queued batch is mapped even
// once flushing has failed (a CI run lost a batch left in the queue while
// Run was blocked on a full disk); what cannot be spooled stays in the
// buffer for Close, to spool under its deadline or count as dropped.
func (s *Sink) drainQueued(sub stage.Feed) {
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range len(sub.C()) {
		b, ok := <-sub.C()
		if !ok {
			return
		}
		_ = s.consume(dctx, sub, &b)
	}
	if s.resyncDue {
		s.resyncDue = false
		_ = s.resync(dctx, nil, true)
	}
}

// noteResync asks for a resync of routers, or of every router when nil.
// A fleet's drop under load names few routers, and a resync of those is
// seconds less work than of the whole fleet: on a starved machine whole
// resyncs fell behind the queue and asked for the next, over and over
// (the soak's garbage row spooled 2.7 M points so).
func (s *Sink) noteResync(routers []string) {
	switch {
	case routers == nil:
		s.resyncOnly = nil
	case !s.resyncDue:
		s.resyncOnly = make(map[string]struct{}, len(routers))
		fallthrough
	case s.resyncOnly != nil:
		for _, r := range routers {
			s.resyncOnly[r] = struct{}{}
		}
	}
	s.resyncDue = true
}

// consume maps one batch into the buffer, flushing as it fills.
func (s *Sink) consume(ctx context.Context, sub stage.Feed, b *change.Batch) error {
	now := time.Now()
	if b.Lost > 0 {
		s.m.lost.Add(float64(b.Lost))
		s.log.Warn("influx: the merge core dropped updates for this sink (its queue was full); history has a gap",
			slog.Uint64("lost", b.Lost), slog.Uint64("lost_total", sub.Dropped()))
		if s.o.snap != nil {
			s.noteResync(b.LostRouters)
		}
	}
	var n int
	var ferr error
	s.buf, n = s.mp.batch(s.buf, &change.Batch{Updates: b.Updates}, now)
	s.bufPoints += n
	for i := range b.Events {
		s.buf, n = s.mp.event(s.buf, &b.Events[i], now)
		s.bufPoints += n
		if len(s.buf) >= s.maxBuf && ferr == nil {
			// After a failed flush the rest of the batch still goes in
			// the buffer, for Close to spool or count: never dropped here.
			ferr = s.flush(ctx)
		}
	}
	s.syncStats()
	return ferr
}

func (s *Sink) syncStats() {
	st := s.mp.stats
	s.m.unmapped.Add(float64(st.unmapped - s.seen.unmapped))
	s.m.overflows.Add(float64(st.overflows - s.seen.overflows))
	s.m.typeConflicts.Add(float64(st.typeConflicts - s.seen.typeConflicts))
	s.seen = st
}

// flush appends the buffer to the spool. With the block policy a full
// spool blocks here, and so the merge core drops (and counts) batches for
// this sink; that is logged when it starts and when it ends. It returns
// an error only when ctx ended first; the buffer is kept for Close.
//
// A record the disk refuses is tried again in halves, down to a single
// point: a buffer gathered while the disk was full can be larger than
// the disk will ever have free, and retrying it whole would wedge the
// sink for good.
func (s *Sink) flush(ctx context.Context) error {
	if s.bufPoints == 0 {
		s.buf = s.buf[:0]
		return nil
	}
	backoff := 100 * time.Millisecond
	var blockedAt time.Time
	limit := len(s.buf)
	for {
		n, pts := len(s.buf), s.bufPoints
		if limit < n {
			n = wholeLines(s.buf, limit)
			pts = bytes.Count(s.buf[:n], []byte{'\n'})
		}
		actx, cancel := context.WithTimeout(ctx, time.Second)
		err := s.sp.Append(actx, s.buf[:n], pts)
		cancel()
		switch {
		case err == nil:
			s.m.pointsSpooled.Add(float64(pts))
			if n < len(s.buf) {
				s.buf = s.buf[:copy(s.buf, s.buf[n:])]
				s.bufPoints -= pts
				continue
			}
			s.buf, s.bufPoints = s.buf[:0], 0
			if cap(s.buf) > 4*s.maxBuf {
				s.buf = nil
			}
			if !blockedAt.IsZero() {
				s.log.Warn("influx: spool has room again; consuming resumed", slog.Duration("blocked", time.Since(blockedAt)))
			}
			return nil
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			if blockedAt.IsZero() {
				blockedAt = time.Now()
				s.log.Error("influx: spool full (policy block): consumer blocked, the merge core now DROPS batches for this sink until InfluxDB catches up",
					slog.String("dir", s.cfg.SpoolDir), slog.Int64("max_bytes", s.cfg.SpoolMaxBytes))
			}
			s.m.blocked.Add(1)
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			// The disk failed us (full, read-only, ...).
			s.m.spoolErrors.Inc()
			// Logged once every spoolErrLogEvery, with how many since:
			// each flush meets a full disk while the points go direct.
			if now := time.Now(); now.Sub(s.spoolErrAt) >= spoolErrLogEvery {
				s.log.Error("influx: cannot append to the spool", slog.String("dir", s.cfg.SpoolDir), slog.String("error", err.Error()),
					slog.Int("refused_since_last_logged", s.spoolErrQuiet))
				s.spoolErrAt, s.spoolErrQuiet = now, 0
			} else {
				s.spoolErrQuiet++
			}
			if !errors.Is(err, spool.ErrFull) && s.direct(ctx, s.buf[:n], pts) {
				if n < len(s.buf) {
					s.buf = s.buf[:copy(s.buf, s.buf[n:])]
					s.bufPoints -= pts
					limit = len(s.buf)
					continue
				}
				s.buf, s.bufPoints = s.buf[:0], 0
				return nil
			}
			if s.cfg.SpoolFullPolicy == PolicyDropOldest || errors.Is(err, spool.ErrFull) {
				s.m.pointsDropped.WithLabelValues("spool_error").Add(float64(s.bufPoints))
				s.buf, s.bufPoints = s.buf[:0], 0
				return nil
			}
			limit = max(n/2, 1)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}
}

// spoolErrLogEvery bounds how often a disk that refuses the spool is
// logged.
const spoolErrLogEvery = 10 * time.Second

// direct writes points to InfluxDB past a spool the disk refuses: with
// InfluxDB up, holding the consumer until the disk has room again would
// make the merge core drop this sink's batches (past merge.queue-wait),
// as a full-size soak with the spool's disk full did (35,430 updates at
// 20,000 points/s). Points carry their own timestamps, so these landing
// before older spooled ones changes nothing in InfluxDB. false: InfluxDB
// did not take them either, and the caller retries the spool.
func (s *Sink) direct(ctx context.Context, data []byte, points int) bool {
	if err := s.write(ctx, spool.Batch{Data: data, Points: points}); err != nil {
		s.log.Warn("influx: the spool's disk refuses points and InfluxDB did not take them directly either; retrying the spool", slog.String("error", err.Error()))
		return false
	}
	s.m.pointsDirect.Add(float64(points))
	return true
}

// wholeLines returns the length of the longest run of whole lines at the
// start of b that is at most limit bytes long, or of the first line when
// even that is longer.
func wholeLines(b []byte, limit int) int {
	if i := bytes.LastIndexByte(b[:min(limit, len(b))], '\n'); i >= 0 {
		return i + 1
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return i + 1
	}
	return len(b)
}

// writeLoop sends spooled points in order, acknowledging each batch once
// InfluxDB took it.
func (s *Sink) writeLoop(ctx context.Context) {
	defer close(s.writerDone)
	if s.cfg.CreateDatabase {
		if err := s.retry(ctx, "create database", s.createDatabase); err != nil {
			if ctx.Err() == nil {
				s.setFatal(err)
			}
			return
		}
	}
	// Up to WritesInFlight requests run at once: InfluxDB syncs its WAL
	// per request, so one request at a time leaves both sides idle.
	// Batches are still acknowledged to the spool strictly in order, so
	// a failure acknowledges nothing after it (those are resent, and
	// rewrite the same points: timestamps make writes idempotent).
	inflight := s.cfg.WritesInFlight
	type job struct {
		b    spool.Batch
		done chan error
	}
	jobs := make(chan job, inflight)
	acks := make(chan job, inflight)
	// Read buffers are reused once their batch is acknowledged: a batch
	// is megabytes, and allocating one per request feeds the GC.
	free := make(chan []byte, inflight+1)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	var lastLost uint64
	var wg sync.WaitGroup
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j.done <- s.retry(wctx, "write", func(ctx context.Context) error { return s.write(ctx, j.b) })
			}
		}()
	}
	ackDone := make(chan struct{})
	go func() {
		defer close(ackDone)
		lastDropped := uint64(0)
		for j := range acks {
			if err := <-j.done; err != nil {
				if wctx.Err() == nil {
					s.setFatal(err)
				}
				wcancel()
				continue // drain; nothing after a failed batch is acknowledged
			}
			if wctx.Err() != nil {
				continue
			}
			err := s.sp.Ack(j.b)
			select {
			case free <- j.b.Data[:0]:
			default:
			}
			if err != nil {
				s.log.Error("influx: spool ack", slog.String("error", err.Error()))
			}
			if d := s.sp.Stats().DroppedPoints; d != lastDropped {
				s.m.pointsDropped.WithLabelValues("spool_full").Add(float64(d - lastDropped))
				s.log.Warn("influx: spool full (policy drop-oldest): oldest points deleted", slog.Uint64("dropped_total", d))
				lastDropped = d
			}
		}
	}()
	defer func() {
		close(jobs)
		close(acks)
		wg.Wait()
		<-ackDone
	}()
	for {
		var buf []byte
		select {
		case buf = <-free:
		default:
		}
		b, err := s.sp.Read(wctx, buf, s.cfg.BatchSize, maxRequestBytes, s.cfg.FlushInterval)
		if l := s.sp.Stats().LostPoints; l != lastLost {
			s.m.pointsDropped.WithLabelValues("spool_lost").Add(float64(l - lastLost))
			lastLost = l
		}
		if err != nil {
			if wctx.Err() != nil || errors.Is(err, spool.ErrClosed) {
				return
			}
			s.log.Error("influx: spool read", slog.String("error", err.Error()))
			select {
			case <-wctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		j := job{b: b, done: make(chan error, 1)}
		select {
		case acks <- j:
		case <-wctx.Done():
			return
		}
		jobs <- j
	}
}

// maxRequestBytes bounds one write request's body (plus at most one
// spool record, <= 1 MiB): InfluxDB 1.8 refuses bodies over its
// max-body-size (25 MB by default) with 413. One set lower still is met
// by writing a refused batch in halves (see write).
const maxRequestBytes = 8 << 20

// errRejected marks a batch InfluxDB will never take (bad data).
var errRejected = errors.New("rejected")

// write sends one batch; HTTP 400 drops it (counted).
func (s *Sink) write(ctx context.Context, b spool.Batch) error {
	if b.Points == 0 || len(b.Data) == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	start := time.Now()
	var body io.Reader = bytes.NewReader(b.Data)
	var gz *gzipBuf
	if s.cfg.Gzip {
		gz = s.compress(b.Data)
		defer s.gzPool.Put(gz)
		body = bytes.NewReader(gz.buf.Bytes())
	}
	var err error
	if herr := s.http.DoPostRequest(wctx, s.writeURL, body, func(req *http.Request) {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		if gz != nil {
			req.Header.Set("Content-Encoding", "gzip")
		}
	}, func(resp *http.Response) error {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return resp.Body.Close()
	}); herr != nil {
		err = herr
	}
	s.m.latency.Observe(time.Since(start).Seconds())
	if err == nil {
		s.m.batches.WithLabelValues("ok").Inc()
		s.m.pointsWritten.Add(float64(b.Points))
		s.m.up.Set(1)
		return nil
	}
	var he *ihttp.Error
	if errors.As(err, &he) && he.StatusCode == http.StatusRequestEntityTooLarge {
		// This InfluxDB takes smaller bodies (its max-body-size) than
		// meshd sends: write the batch in halves, split again as needed,
		// so only a single point larger than the limit is lost. A retry
		// after the first half landed rewrites it, which the points'
		// own timestamps make harmless.
		if first, second, ok := halves(b); ok {
			s.m.batches.WithLabelValues("split").Inc()
			if err := s.write(ctx, first); err != nil {
				return err
			}
			return s.write(ctx, second)
		}
	}
	return s.classify(err, b.Points)
}

// halves cuts a batch's lines into two batches of about half its bytes
// each (the cut as flush makes it, wholeLines); ok is false when it is a
// single line.
func halves(b spool.Batch) (first, second spool.Batch, ok bool) {
	cut := wholeLines(b.Data, len(b.Data)/2)
	if cut >= len(b.Data) {
		return first, second, false
	}
	n := bytes.Count(b.Data[:cut], []byte{'\n'})
	return spool.Batch{Data: b.Data[:cut], Points: n}, spool.Batch{Data: b.Data[cut:], Points: b.Points - n}, true
}

type gzipBuf struct {
	buf bytes.Buffer
	w   *gzip.Writer
}

// compress gzips data into a pooled buffer.
func (s *Sink) compress(data []byte) *gzipBuf {
	gz, _ := s.gzPool.Get().(*gzipBuf)
	if gz == nil {
		gz = &gzipBuf{}
		gz.w, _ = gzip.NewWriterLevel(&gz.buf, gzip.BestSpeed)
	}
	gz.buf.Reset()
	gz.w.Reset(&gz.buf)
	_, _ = gz.w.Write(data) // a bytes.Buffer does not fail
	_ = gz.w.Close()
	return gz
}

// writeURL is the v2 write endpoint for org and bucket, ns precision.
func writeURL(apiURL, org, bucket string) (string, error) {
	u, err := url.Parse(apiURL)
	if err != nil {
		return "", err
	}
	u, err = u.Parse("write")
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("org", org)
	q.Set("bucket", bucket)
	q.Set("precision", "ns")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// classify turns a client error into nil (dropped, counted), a retryable
// error or a fatal ErrRefused one.
func (s *Sink) classify(err error, points int) error {
	var he *ihttp.Error
	code := 0
	if errors.As(err, &he) {
		code = he.StatusCode
	}
	switch {
	case code == http.StatusBadRequest || code == http.StatusRequestEntityTooLarge || code == http.StatusUnprocessableEntity:
		// Bad points (e.g. a field type conflict): InfluxDB kept the good
		// ones of a partial write; retrying cannot help.
		s.m.batches.WithLabelValues("rejected").Inc()
		s.m.pointsDropped.WithLabelValues("rejected").Add(float64(points))
		s.log.Error("influx: InfluxDB rejected points of a batch; they are dropped", slog.Int("status", code), slog.Int("points", points), slog.String("error", err.Error()))
		return nil
	case code == http.StatusTooManyRequests || code >= 500 || code == 0:
		s.m.batches.WithLabelValues("retry").Inc()
		s.m.up.Set(0)
		err = fmt.Errorf("%w: %v", errRetry, err)
		if he != nil && he.RetryAfter > 0 {
			// The server said when to come back (a 429 from a busy
			// InfluxDB or a proxy in front of it, a 503 in maintenance).
			return &retryAfterError{err, min(time.Duration(he.RetryAfter)*time.Second, maxRetryAfter)}
		}
		return err
	default:
		s.m.batches.WithLabelValues("refused").Inc()
		return refused(code, err, s.cfg)
	}
}

var errRetry = errors.New("retryable")

// retryAfterError is a retryable error whose server named, in a
// Retry-After header, how long to wait before the next try.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// maxRetryAfter bounds the wait a Retry-After header can ask for: a server
// that names an hour is waited on for five minutes at a time.
const maxRetryAfter = 5 * time.Minute

func refused(code int, err error, cfg Config) error {
	hint := ""
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden:
		hint = " (check influxdb.username/password or influxdb.token)"
	case http.StatusNotFound:
		hint = " (check influxdb.database/retention-policy, or set influxdb.create-database)"
	}
	return fmt.Errorf("%w: %s bucket %q: HTTP %d: %v%s", ErrRefused, cfg.URL, cfg.bucket(), code, err, hint)
}

// retry runs op until it succeeds, fails for good or ctx ends, backing
// off exponentially (with jitter) on retryable errors.
func (s *Sink) retry(ctx context.Context, what string, op func(context.Context) error) error {
	backoff := 100 * time.Millisecond
	var failingSince time.Time
	for {
		err := op(ctx)
		if err == nil {
			if !failingSince.IsZero() {
				s.log.Info("influx: InfluxDB is back", slog.String("op", what), slog.Duration("after", time.Since(failingSince)))
			}
			return nil
		}
		if !errors.Is(err, errRetry) {
			return err
		}
		if failingSince.IsZero() {
			failingSince = time.Now()
			s.log.Warn("influx: InfluxDB unavailable; points are kept in the spool and retried", slog.String("op", what), slog.String("url", s.cfg.URL), slog.String("error", err.Error()))
		}
		s.m.retries.Inc()
		d := backoff/2 + rand.N(backoff/2+1)
		if ra := (*retryAfterError)(nil); errors.As(err, &ra) && ra.after > d {
			d = ra.after
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// createDatabase runs CREATE DATABASE through the client's HTTP service
// (its Authorization header, user agent, timeout and error parsing, as
// for writes). influxdb-client-go v2 has no call that creates an
// InfluxDB 1.8 database: its BucketsAPI is InfluxDB 2's /api/v2/buckets,
// which 1.8 does not serve, and its QueryAPI speaks Flux, which has no
// statement that creates one (1.8 serves only /api/v2/write,
// /api/v2/query and /health of the 2.x API). So the InfluxQL statement
// goes to 1.8's own /query endpoint, through the client all the same.
func (s *Sink) createDatabase(ctx context.Context) error {
	q := url.Values{"q": {fmt.Sprintf("CREATE DATABASE %q", s.cfg.Database)}}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var body []byte
	herr := s.http.DoPostRequest(ctx, strings.TrimRight(s.client.ServerURL(), "/")+"/query", strings.NewReader(q.Encode()),
		func(req *http.Request) { req.Header.Set("Content-Type", "application/x-www-form-urlencoded") },
		func(resp *http.Response) error {
			defer resp.Body.Close()
			body, _ = io.ReadAll(io.LimitReader(resp.Body, 4096))
			return nil
		})
	if herr != nil {
		if herr.StatusCode == 0 || herr.StatusCode >= 500 {
			return fmt.Errorf("%w: create database: %v", errRetry, herr)
		}
		return refused(herr.StatusCode, fmt.Errorf("create database: %w", herr), s.cfg)
	}
	// InfluxQL reports a statement's failure (not an admin, a bad name)
	// in a 200 response's body.
	if strings.Contains(string(body), `"error"`) {
		return fmt.Errorf("%w: create database %q: %s", ErrRefused, s.cfg.Database, strings.TrimSpace(string(body)))
	}
	s.log.Info("influx: database ready", slog.String("database", s.cfg.Database))
	return nil
}

// Close flushes: it spools what Run left buffered, waits until InfluxDB
// has acknowledged everything spooled or ctx ends, and stops the writer.
// What is not delivered stays in the spool for the next start.
func (s *Sink) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if ferr := s.flush(ctx); ferr != nil {
			s.m.pointsDropped.WithLabelValues("shutdown").Add(float64(s.bufPoints))
			err = fmt.Errorf("influx: close: %d points could not be spooled: %w", s.bufPoints, ferr)
		}
		// Write what is spooled now: the flush timer may be far off.
		s.sp.Hurry()
		t := time.NewTicker(20 * time.Millisecond)
	wait:
		for s.sp.Stats().Points > 0 {
			select {
			case <-ctx.Done():
				break wait
			case <-s.fatal:
				break wait
			case <-t.C:
			}
		}
		t.Stop()
		s.writerCancel()
		<-s.writerDone
		left := s.sp.Stats().Points
		if cerr := s.sp.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("influx: close spool: %w", cerr)
		}
		s.client.Close()
		if left > 0 && err == nil {
			err = fmt.Errorf("influx: close: %d points not yet written stay in %s for the next start", left, s.cfg.SpoolDir)
			if ferr := s.Err(); ferr != nil {
				err = fmt.Errorf("%w; %w", err, ferr)
			}
		}
	})
	return err
}
