package influx

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	pointsSpooled prometheus.Counter
	// pointsDirect are written to InfluxDB past a spool the disk refused.
	pointsDirect  prometheus.Counter
	pointsWritten prometheus.Counter
	pointsDropped *prometheus.CounterVec // reason
	batches       *prometheus.CounterVec // result
	retries       prometheus.Counter
	latency       prometheus.Histogram
	queuePoints   prometheus.GaugeFunc
	spoolBytes    prometheus.GaugeFunc
	lost          prometheus.Counter
	resyncs       prometheus.Counter
	snapshots     prometheus.Counter
	unmapped      prometheus.Counter
	overflows     prometheus.Counter
	typeConflicts prometheus.Counter
	blocked       prometheus.Counter
	spoolErrors   prometheus.Counter
	up            prometheus.Gauge
}

func newMetrics(queue, bytes func() float64) *metrics {
	return &metrics{
		pointsSpooled: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_influx_points_spooled_total", Help: "Points encoded and appended to the spool."}),
		pointsDirect: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_influx_points_direct_total",
			Help: "Points written to InfluxDB straight from the sink's buffer because the disk refused the spool (full, read-only, gone), with InfluxDB up."}),
		pointsWritten: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_influx_points_written_total", Help: "Points InfluxDB acknowledged."}),
		pointsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_influx_points_dropped_total", Help: "Points lost, by reason: spool_full (drop-oldest), rejected (HTTP 400 from InfluxDB), spool_error (the spool could not be written)."}, []string{"reason"}),
		batches:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_influx_batches_total", Help: "Write requests by result: ok, retry (5xx, timeout, network), rejected (400, 422, a single point over the body limit), refused (401/403/404), split (413: written again in halves)."}, []string{"result"}),
		retries:       prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_influx_write_retries_total", Help: "Write requests retried after a failure."}),
		latency:       prometheus.NewHistogram(prometheus.HistogramOpts{Name: "meshd_influx_write_duration_seconds", Help: "Duration of write requests.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}),
		queuePoints:   prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshd_influx_queue_points", Help: "Points spooled and not yet acknowledged by InfluxDB."}, queue),
		spoolBytes:    prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshd_influx_spool_bytes", Help: "Bytes of spool segment files on disk."}, bytes),
		lost:          prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_influx_source_lost_total", Help: "Updates and events the merge core dropped for this sink because its queue was full."}),
		resyncs:       prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_influx_resyncs_total", Help: "Times the sink rebuilt its state from the merge core (at start, and after the core dropped batches for it) and wrote it in full."}),
		snapshots:     prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_influx_snapshots_total", Help: "Periodic snapshots (snapshot-interval) that wrote every series in full."}),
		unmapped:      prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_influx_unmapped_total", Help: "Leaves and events the schema does not store."}),
		overflows:     prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_influx_field_overflows_total", Help: "uint64 values above 2^63-1 clamped into an int64 field."}),
		typeConflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_influx_type_conflicts_total", Help: "Values dropped because they do not fit their field's fixed type."}),
		blocked:       prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_influx_blocked_seconds_total", Help: "Time the consumer spent blocked on a full spool."}),
		spoolErrors:   prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_influx_spool_errors_total", Help: "Appends to the spool the disk refused (full, read-only, ...); with the block policy they are retried and nothing is lost."}),
		up:            prometheus.NewGauge(prometheus.GaugeOpts{Name: "meshd_influx_up", Help: "1 when the last write succeeded, 0 when InfluxDB is failing or refusing writes."}),
	}
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.pointsSpooled, m.pointsDirect, m.pointsWritten, m.pointsDropped, m.batches, m.retries,
		m.latency, m.queuePoints, m.spoolBytes, m.lost, m.resyncs, m.snapshots, m.unmapped, m.overflows, m.typeConflicts, m.blocked, m.spoolErrors, m.up} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
