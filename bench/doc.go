// Package bench holds meshd's load generators and benchmark programs: BMP
// full-table replay, the gNMI fleet simulator, InfluxDB write throughput,
// the gNMI target's fan-out latency and the probe's packet rate. Each
// subfolder's doc says how to run it and what figure it reports.
package bench
