#!/bin/sh
# Benchmark of the InfluxDB sink: a 1M-route table end to end into a local
# influxd 1.8.10, with the sink's and influxd's CPU reported separately,
# plus the spool alone (its cost per point when InfluxDB is healthy).
# Usage: bench/influx/run.sh [routes]   (needs influxd on PATH)
set -eu
cd "$(dirname "$0")/../.."
export MESHD_BENCH_ROUTES="${1:-1000000}"
go test -tags integration -run '^$' -bench BenchmarkRouteTable -benchtime 1x -timeout 15m \
    -cpuprofile /tmp/meshd-influx-bench.cpu ./bench/influx/
echo "--- share of the sink's CPU spent in the spool:"
go tool pprof -top -focus 'sinks/influx/spool' /tmp/meshd-influx-bench.cpu 2>/dev/null | sed -n '1,6p'
echo "--- spool alone:"
go test -run '^$' -bench BenchmarkAppendReadAck -benchtime 2s ./sinks/influx/spool/
