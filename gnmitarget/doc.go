// Package gnmitarget is a gNMI target (Capabilities, Get, Subscribe) over
// an in-memory leaf store keyed by target name, fed by its owner through
// Update and DeleteTarget. With WithCluster (meshd's replicas) Get and
// Subscribe answer for a whole fleet, forwarding to the replicas that
// own the other routers (cluster.go).
//
// Why a lean store of its own and not openconfig/gnmi's cache+subscribe:
// that cache keeps whole notifications per target in a ctree and calls its
// client back synchronously, and its subscribe package has no SAMPLE,
// heartbeat or suppress_redundant, so the Subscribe handler would have to
// be rewritten anyway. Here the store is a tree of immutable leaf values
// (one lock per target, so a walk of one router never blocks another),
// every leaf carries a change sequence number (suppress_redundant needs no
// per-subscriber memory: a leaf is redundant when its sequence is not
// newer than the last sample), and each subscriber owns a bounded
// coalescing queue:
//
//   - a leaf already queued is replaced in place by its newer value; the
//     replaced value is counted as dropped (latest value wins);
//   - when the queue holds WithQueueSize distinct leaves and another one
//     comes, the queue is emptied and counted, and the subscriber is
//     resynchronised from the store when it reads again: for every target
//     that lost leaves meanwhile a delete of the subscribed paths, then the
//     current values. Memory per subscriber is bounded by the queue size,
//     never by the change rate, and a slow subscriber never delays the
//     store or another subscriber (only its own sender goroutine blocks).
//
// Encodings: Get answers JSON and JSON_IETF with the subtree of each
// matched node, rendered by the Renderer given with WithRenderer (the
// collector's: ygot, from the merge core's structs) or else from the
// node's leaves (64-bit integers and decimal64 as strings in JSON_IETF
// when a schema is given with WithSchema, identityref values as
// "module:NAME" when the generated enums are given with WithEnumTypes or
// the identities' modules with WithIdentityModules (the probe's, without
// the generated OpenConfig binding), RFC
// 7951 §6.1 and §6.8; the members of the subtree's top object qualified
// with their module, §4), and PROTO with one scalar TypedValue per leaf. Subscribe always sends leaves; their values are
// scalar JSON for JSON/JSON_IETF and TypedValues for PROTO. A list entry's
// key leaves (OpenConfig's network-instance/name, neighbor/neighbor-address)
// are served from the entry's keys when the store has no leaf there, to a
// path that names the key leaf (not to a wider path, whose walk would
// otherwise grow by a leaf an entry): in Get, ONCE, POLL and SAMPLE, and in
// ON_CHANGE as the entry appears and goes.
//
// A path that matches nothing: Get answers NOT_FOUND (gNMI specification
// §3.3.4, "Requested paths ... neither exist (yet) ...: Return NOT_FOUND");
// a ONCE or POLL subscription sends no value for it and its sync_response
// as usual, and a STREAM sends nothing until the path exists (§3.5.2.4,
// "No value returned for non-existent paths"; §3.5.1.3: subscribing to a
// path that does not exist yet MUST be allowed). The two RPCs differ on
// purpose, as the specification has them; openconfig/gnmi's subscribe
// server does the same (its only NotFound is for an unknown target).
//
// Timestamps: a change carries the time its source reported it; Get, ONCE,
// POLL and ON_CHANGE (heartbeats included) send that. SAMPLE notifications
// carry the time the sample was taken (§3.5.2.3, see sendWalk).
//
// WithSubtree serves a part of the tree the store does not hold, read from
// its source when asked (meshd's RIBs: ribview): a path the Subtree claims
// goes to it alone, in Get, ONCE, POLL and STREAM (its own bounded watch,
// drained in the subscription's goroutine beside the store's queue; a
// watch that overflowed deletes the subscription's claimed paths and
// walks them again). SAMPLE of a claimed path is refused (Unimplemented).
// Its notifications are marshalled by meshd's own encoder (wire.go), not
// protobuf-go, whose reflection over PathElem key maps was half the
// allocations of a RIB walk: BenchmarkSubtreeEncode, 11-16 µs a route by
// protobuf-go against 6-7 µs, 57 allocations against 0.7.
//
// Limits, each a ResourceExhausted status and a count in
// meshd_gnmitarget_limit_refusals_total{limit}:
//
//   - WithMaxSubscriptionsPerClient and WithMaxSubscriptions bound the
//     concurrent Subscribe RPCs of one client (address, with the user name
//     under credentials) and of all clients; the error names the limit.
//   - WithMaxRecvMsgSize is gRPC's receive cap (default 4 MiB): gRPC reads
//     and refuses the request before meshd's code runs, so the error is
//     gRPC's "received message larger than max (n vs. m)". A Subscribe's
//     is counted; a Get's is not (see overRecvLimit).
//   - WithMaxSendMsgSize (default none: gRPC's 2 GiB) is checked before
//     gRPC's own check, whose status names no limit: a notification over
//     it ends the Subscribe, a GetResponse over it fails the Get, with an
//     error naming the limit and the size. A notification holds at most
//     maxPerNotification (512) leaves; a Get's response every node it
//     matched. The check costs a proto.Size per message sent that is not
//     shared pre-encoded, only when the limit is set.
//
// Subscribe modes: ONCE, POLL and STREAM; in STREAM, ON_CHANGE,
// TARGET_DEFINED (served as ON_CHANGE: the store only learns of changes),
// and SAMPLE (sample_interval, raised to WithMinSampleInterval; 0 means the
// minimum), suppress_redundant (only leaves changed since the previous
// sample, plus all of them once per heartbeat_interval), heartbeat_interval
// for ON_CHANGE (the current values of the path resent every interval),
// updates_only and sync_response. Prefix target selects a target; "*" or
// an empty target selects all. Deletes are sent per leaf for every leaf
// removed by Update (nil Value) or DeleteTarget.
package gnmitarget
