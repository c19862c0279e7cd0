// Package e2e holds meshd's end-to-end tests: real BGP speakers in network
// namespaces, the real BMP listener, merge core and sinks, and a real
// InfluxDB, wired as meshd wires them. Those need the integration build
// tag; the ones without it need nothing but loopback.
package e2e
