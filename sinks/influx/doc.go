// Package influx is the InfluxDB sink: it turns the merged change stream
// into line-protocol points (schema in docs/influx-schema.md) and writes
// them through an on-disk spool so that no point is lost while InfluxDB
// is down, slow or restarting, or when meshd itself is killed.
//
// Data path:
//
//	merge core ──Subscribe queue──► Run (consumer goroutine)
//	   map batch → points, coalescing a neighbor's leaves into one point
//	   append to spool (write-ahead log, one write(2) per burst)
//	                                    │
//	                                    ▼
//	   writer goroutine: read spool in order → batch by size/time →
//	   up to writes-in-flight concurrent POST /api/v2/write (raw line
//	   protocol through the client's HTTP service, gzip optional; see
//	   below for why not its write API) →
//	   acknowledged in spool order → segments freed
//
// Every point goes through the spool, healthy or not: that is what makes
// a kill -9 lose nothing that reached the sink, and the cost is small
// (sequential writes to the page cache; see bench/influx). Points carry
// their own timestamps, made unique per series (a point that would share
// its series' last timestamp is moved 1 ns later), so a replay after a
// crash rewrites the same points instead of adding duplicates, and route
// events of one BMP message do not overwrite each other. A route's
// announce and withdraw series (action is a tag) share one timeline per
// peer and RIB view, kept in arrival order (a point stamped no later than
// the one before it moves 1 ns past it): routers stamp coarsely or with a
// route's age, and the last action per route in InfluxDB must be the last
// the router sent.
//
// Honest back-pressure: a full Subscribe queue holds the sources back for
// at most merge.queue-wait (1 s), once per episode, and then drops
// batches and counts them (merge.WithWait): a consumer starved of CPU by
// a burst catches up within it, a stuck one costs one wait. While it
// consumes, the sink reads the store only with TryReadRouter, since a
// waiting publisher holds its routers' locks. The consumer does nothing
// slow: it maps and appends to the spool, and drains the queue in
// bursts. When the spool is full, the policy decides:
//   - "block" (default): the consumer stops until the writer frees space.
//     Nothing already spooled is lost, but the merge core now drops
//     batches for this sink; that is logged as an error when it starts
//     and ends, counted by the core and by meshd_influx_source_lost_total,
//     and state is resynchronised from the core afterwards (events in
//     the gap are lost; the state history is repaired).
//   - "drop-oldest": the oldest spooled points are deleted and counted in
//     meshd_influx_points_dropped_total{reason="spool_full"}; the newest
//     data keeps flowing.
//
// A resync reads the core one router at a time
// (merge.Core.WalkRouter, resync.go), consuming the queue between
// routers, and so does the periodic snapshot: neither builds the fleet
// in memory or pauses the consumer for longer than one router takes.
//
// Errors: 5xx, 429, timeouts and connection failures are retried with
// exponential backoff forever (the data is safe in the spool), waiting at
// least what a Retry-After header asks (up to five minutes); HTTP 400
// (bad points) drops that batch, counted; 401/403/404 (bad credentials,
// no such database) stop the writer with an ErrRefused error that Run
// returns, with the points kept in the spool for the next start.
//
// # influxdb-client-go, and what is written by hand
//
// Every request goes through influxdb-client-go v2's HTTP service (its
// Authorization header, "Token user:password" for 1.8, its user agent,
// timeout and error parsing into *http.Error). Three parts are meshd's
// own, each for a measured or stated reason:
//
//   - The line-protocol encoder (lineproto.go), not line-protocol/v2's
//     lineprotocol.Encoder. Both write the same bytes on the same points,
//     escaping included (TestLineProtocolMatchesLibrary); lineproto.go
//     also keeps each series' timestamps unique, which the library cannot
//     know to do. BenchmarkLineProtocol, 10,000 realistic points (route
//     events, neighbor state, per-AFI counts) encoded 1,000,000 times,
//     -cpu 1, 3 runs under flock /tmp/meshd-bench.lock on the shared
//     2-core machine, CPU ns per point (getrusage; wall ns/op in brackets):
//     lineproto.go 916-1409 (914-2656); line-protocol/v2 alone, without
//     the timestamp bookkeeping, 1590-2650 (1589-4221); line-protocol/v2
//     with it, which is what the sink would cost, 2817-3787 (2815-4821).
//     0 allocs/op for all three. The library validates UTF-8 and every
//     key and value byte by byte on each call; lineproto.go checks a
//     string against a table once and copies it whole when it needs no
//     escape, which most tags and values (names, addresses, enums) do not.
//   - The write request: the spool's batch is POSTed as it is with the
//     client's DoPostRequest, gzipped (when use-gzip) by a pooled
//     BestSpeed writer, instead of WriteAPIBlocking.WriteRecord, which
//     takes the batch as a string (a copy of up to 8 MB), gzips it at the
//     default level with a new writer per request, and has no retry of
//     its own (the spool and retry loop here are what make a kill -9 lose
//     nothing). BenchmarkWriteRequest, one 1.5 MB batch of 5,000 points to
//     a local server, 200 requests, -cpu 1, 3 runs under the bench lock,
//     CPU ms per batch (the server's share included, the same for both):
//     plain, the sink 0.89-0.99 and 40 KB allocated, WriteRecord 2.3-3.3
//     and 1.5 MB; gzip, the sink 6.5-9.6 and 49 KB, WriteRecord 23.6-27.6
//     and 3.8 MB.
//   - CREATE DATABASE (create-database): influxdb-client-go has no call
//     that creates an InfluxDB 1.8 database. Its BucketsAPI is InfluxDB
//     2's /api/v2/buckets, which 1.8 does not serve (1.8 serves only
//     /api/v2/write, /api/v2/query and /health of the 2.x API, as the
//     client's README says), and its QueryAPI speaks Flux, which has no
//     statement that creates one. So the InfluxQL statement is POSTed to
//     1.8's /query, through the client's HTTP service like the writes
//     (TestCreateDatabaseThroughClient).
package influx
