#!/bin/sh
# Benchmark of the InfluxDB sink: a 1M-route table end to end into a local
# influxd 1.8.10, with the sink's and influxd's CPU reported separately and
# the time both spent waiting for a CPU (runq-wait-s: other load on the
# machine), the sink alone into a discarding HTTP endpoint (its ceiling),
# and the spool alone.
# Usage: bench/influx/run.sh [routes]   (needs influxd on PATH)
# Knobs (environment): MESHD_BENCH_BATCH, MESHD_BENCH_INFLIGHT,
# MESHD_BENCH_GZIP=1, MESHD_BENCH_WAL_FSYNC_DELAY (influxd's
# wal-fsync-delay; testenv's default is 0s), MESHD_BENCH_INFLUXD_GOGC.
set -eu
cd "$(dirname "$0")/../.."
export MESHD_BENCH_ROUTES="${1:-1000000}"
go test -tags integration -run '^$' -bench 'BenchmarkRouteTable$' -benchtime 1x -timeout 15m \
    -cpuprofile /tmp/meshd-influx-bench.cpu ./bench/influx/
echo "--- share of the sink's CPU spent in the spool:"
go tool pprof -top -focus 'sinks/influx/spool' /tmp/meshd-influx-bench.cpu 2>/dev/null | grep -E 'Total samples|Showing nodes'
echo "--- the sink alone (no InfluxDB cost):"
go test -tags integration -run '^$' -bench 'BenchmarkSinkOnly$' -benchtime 1x ./bench/influx/
echo "--- spool alone:"
go test -run '^$' -bench BenchmarkAppendReadAck -benchtime 2s ./sinks/influx/spool/
