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
package e2e
