// Package e2e holds meshd's end-to-end tests: real BGP speakers in network
// namespaces, the real BMP listener, merge core and sinks, and a real
// InfluxDB, wired as meshd wires them.
package e2e
