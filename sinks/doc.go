// Package sinks holds the consumers of the merged change stream: each
// subpackage reads batches from the merge core at its own pace and
// stores or re-serves them (influx: history in InfluxDB; gnmiserver: the
// merged tree over gNMI; jsonl: JSON lines to a file). Each registers
// itself with package stage, whose contract it implements.
package sinks
