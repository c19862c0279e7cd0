// Package e2e is meshd's whole-binary benchmark: it runs the real `meshd
// run` process with a production config (InfluxDB sink, gNMI target, BMP
// listener, memory limit) against a real influxd 1.8.10, a simulated gNMI
// fleet in its own process, BMP routers replaying full tables, and gNMI
// subscribers in their own process, and reports what an operator would
// see on the host: meshd's CPU seconds and RSS from /proc, source-to-
// InfluxDB and source-to-subscriber latency, and what was dropped.
//
// The component benches elsewhere in bench/ time one stage each; they
// are for profiling, and the figures meshd claims come from here:
//
//	make bench-e2e                      # every scenario of issue 15
//	go test -run '^$' -bench 'E2E/gnmi-1000x100' -benchtime 1x ./bench/e2e/
//
// Each scenario is a sub-benchmark (see scenarios); -count N repeats it.
// MESHD_E2E_STEADY overrides the measured steady-state window, and
// MESHD_E2E_PROFILE=DIR saves meshd's CPU and heap profiles there.
//
// The same pieces make the soak and chaos harness (soak.go, soakbmp.go):
// the real `meshd run` under load while a fault is injected (InfluxDB
// down or slow through the proxy, kill -9 of meshd, a BMP storm with a
// flapping peer, fuzzed BMP messages), then what reached InfluxDB
// counted, by InfluxDB's own query results, against what the sources
// sent. BenchmarkSoak is the full run, TestSoakShort the short one CI
// runs:
//
//	make soak                           # every row at issue 17's sizes
//	make soak SOAK=kill-9 SOAKFAULT=1m  # one row, a shorter fault
//	make soak-short
package e2e
