// Package sinks holds the consumers of the merged change stream: each
// subpackage reads batches from the merge core at its own pace and
// stores or re-serves them (influx: history in InfluxDB).
package sinks
