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
//	   protocol through the client's HTTP service, gzip optional) →
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
// Honest back-pressure: the merge core never blocks on a sink; a full
// Subscribe queue drops batches and counts them. The consumer therefore
// does nothing slow: it maps and appends to the spool, and drains the
// queue in bursts. When the spool is full, the policy decides:
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
package influx
