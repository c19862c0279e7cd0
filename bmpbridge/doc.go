// Package bmpbridge is meshd's BMP listener: it accepts BMP sessions from
// routers, decodes them, and feeds the merge core with neighbor state,
// counters and route events. In cluster mode it relays, in BMP, the
// sessions of routers another replica owns to that replica (relay.go).
//
// # What each BMP message becomes
//
//   - Peer Up (RFC 7854 4.10): session-state ESTABLISHED, peer-as,
//     local-as, established-transitions (transitions meshd saw; a Peer
//     Up re-sent after a BMP reconnect is none), bmp/state/up-count.
//   - Peer Down (4.9) for a peer meshd holds up: the state it implies
//     (ACTIVE for a close without NOTIFICATION, else IDLE),
//     bmp/state/down-count, last-down*, a history entry and one
//     peer_down event. A Peer Down for a peer not up (never up, or
//     already down) is no session going down: it is counted in
//     meshd_bmp_peer_downs_ignored_total{reason=never_up|already_down},
//     and a neighbor meshd never had a state for gets the state it
//     implies, nothing else.
//   - Times: the per-peer header's timestamp, unless it is implausible
//     (zero, more than a minute ahead, or for a Peer Down earlier than
//     the peer's last Peer Up); then meshd's receive time.
//   - Route Monitoring, per RIB view (4.2 L flag, RFC 8671 O flag, RFC
//     9069 peer type 3): ADJ_RIB_IN_PRE counts are the OpenConfig
//     afi-safi prefixes/received-pre-policy, ADJ_RIB_IN_POST
//     prefixes/received, ADJ_RIB_OUT_POST prefixes/sent; every view has
//     its own counters under bmp/ribs; Loc-RIB instance peers hold no
//     neighbor and are counted in meshd_bmp_instance_routes.
//   - Origin AS of a route: the last AS of its AS_PATH; for an empty
//     AS_PATH the AS that originated it without prepending: the
//     neighbor's in an Adj-RIB-In, the router's own in the Loc-RIB and
//     Adj-RIB-Out (the local AS of its Peer Ups, or RFC 9069 4.1's Loc-RIB
//     peer AS).
//   - origin_change events: a route whose origin changes, and a route
//     new after the initial table (per view and AFI-SAFI: until its
//     End-of-RIB, or 30 s after its first route) whose origin differs from that of the
//     same prefix elsewhere (MOAS) or of the longest covering prefix, in
//     any RIB view of any peer of the router's BGP instance, so the
//     router that originates the covering prefix itself (in its Loc-RIB
//     or Adj-RIB-Out) flags a hijacked more-specific too.
//   - Statistics Reports (4.8): bmp/stats counters as sent, by type;
//     they do not feed the OpenConfig prefix counts.
//
// # Per sender: what is trusted
//
// FRR 8.4 (bgpd/bgp_bmp.c):
//
//   - Peer Down is sent on every backward FSM transition (the
//     peer_backward_transition hook), so a neighbor that keeps failing
//     to connect sends one per attempt, and a BMP session's start sends
//     one for every configured neighbor not established (bmp_send_peerup
//     reports every peer). Its timestamp is the peer's last state change
//     (peer->uptime), for a peer never up the router's boot. Hence the
//     not-up and plausibility rules above; established transitions and
//     drops then equal FRR's connectionsEstablished/connectionsDropped
//     (TestFRRPeerDownFlood). FRR sends no reason 1 (local NOTIFICATION):
//     its own resets show as reason 2.
//   - A Peer Up sent as a session establishes carries the peer's
//     previous state change too (the Peer Down's time, or the boot):
//     peer_up events and last-established take the receive time when
//     the stamp is not after the peer's last down; the Peer
//     Ups of a BMP session's start carry the true times and keep them
//     (TestFRRPeerDownFlood holds them to FRR's
//     bgpTimerUpEstablishedEpoch).
//   - Route Monitoring attributes are encoded by FRR's outbound
//     serializer (bmp_update calls bgp_packet_attribute), which prepends
//     FRR's AS for an eBGP neighbor, pre- and post-policy (FRR PR 21815).
//     meshd drops a leading local AS followed by the eBGP neighbor's AS
//     in Adj-RIB-In and Loc-RIB paths (a neighbor's path must start with
//     its own AS, RFC 4271 6.3), counted once per peer in
//     meshd_bmp_sender_quirks_total{quirk=local_as_prepended}.
//     Adj-RIB-Out paths keep it: there it is what goes on the wire.
//   - Pre-policy routes come from the Adj-RIB-In FRR keeps only for a
//     neighbor with soft-reconfiguration inbound. Without it the
//     initial table has no pre-policy routes and each post-policy
//     announce is followed by a pre-policy withdraw (FRR issue 10240,
//     PR 22588). meshd detects it (a pre-policy withdraw of a route the
//     post-policy view holds; a withdraw into a pre-policy view that
//     never held a route, as with pre-policy monitoring alone; or a
//     pre-policy view that never held a route next to a post-policy view
//     that does), counts it ({quirk=pre_policy_without_adj_rib_in}),
//     does not count those withdraws as missing, and writes no
//     received-pre-policy for the neighbor: the feed cannot carry it, and
//     0 would be false. It is judged per neighbor, not per AFI/SAFI: a
//     neighbor with soft-reconfiguration in one family only loses its
//     received-pre-policy in all. A pre-policy announce clears it.
//   - With soft-reconfiguration inbound, FRR still sends a live
//     pre-policy route only if its import policy accepts it: a denied
//     route is in FRR's received-routes but on the BMP wire only in a
//     BMP session's initial table; live, FRR sends withdraws for it,
//     pre-policy too. received-pre-policy then counts what
//     was sent (TestFRRFeedSemantics); it is not corrected.
//   - Post-policy routes are FRR's valid paths: received equals FRR's
//     pfxRcd. Stats carry no route counts (no types 7-10). No Loc-RIB
//     (FRR 8.4) and no Adj-RIB-Out.
//
// gobgpd v4.8.0 (pkg/server/bmp.go):
//
//   - Peer Up for every established neighbor, at establishment and again
//     at each BMP connect; Peer Down only when a session leaves
//     ESTABLISHED. Trusted.
//   - Pre-policy routes are the UPDATEs as received (AS paths as the
//     neighbor sent them); post-policy ones are rebuilt from the paths
//     the import policy accepted; withdrawals of a peer's routes when it
//     goes down arrive pre-policy too. Trusted: received-pre-policy is
//     gobgp's received, received the neighbor's routes in gobgp's RIB
//     (TestGobgpdCounts). gobgp's own "accepted" is not received: it
//     counts the paths not rejected as loops (pkg/server/peer.go) and
//     ignores the import policy, so the two differ under one.
//   - Loc-RIB (RFC 9069) as one instance peer named "global" (VRF/Table
//     Name TLV) with peer distinguisher 0, address 0.0.0.0 and the
//     router's AS: meshd takes it as the default instance for origin
//     checks; the router's own routes have an empty AS_PATH. Its routes
//     carry path IDs, and when a prefix's best path changes gobgpd sends
//     the new one under a new ID without withdrawing the one it
//     replaces: meshd keeps a Loc-RIB one route a prefix, whatever the
//     IDs ({quirk=loc_rib_path_ids}; before, a hijacker's withdrawn
//     route stayed in the Loc-RIB for good).
//   - No End-of-RIB over BMP: a view's initial table of a family is what
//     arrives in the 30 s after its first route (originCheckDelay). Routes re-sent after a BMP
//     reconnect may lack their ADD-PATH IDs (matched to held paths).
//   - Stats (every statistics-timeout, at least 15 s): type 7 is the sum
//     of the neighbor's received (pre-policy) over all AFI/SAFIs, type 8
//     the sum of accepted (above), not a Loc-RIB count as RFC 7854 names
//     it.
//     Kept as bmp/stats counters only: they are totals, the OpenConfig
//     counts are per AFI/SAFI.
//
// # Limits that protect the process
//
// Each is off by default (today's behaviour), set in the bmp: section:
//
//   - allow (CIDRs or addresses; default empty, every source allowed): a
//     connection from elsewhere is closed at accept, before a byte is
//     read, and counted in meshd_bmp_refused_total{reason="not_allowed"};
//     one warning per source address a minute at most, saying how many
//     were held back, so a scanner makes no log storm.
//   - max-routers (default 0, no bound) counts routers, not connections:
//     a session's router is known from its Initiation (the naming rules
//     of routerName), and a router already connected (a second session,
//     as in a reconnect race where the old one has not yet timed out)
//     counts once. A new router over the bound is closed at its
//     Initiation, before any state is made for it, and counted
//     ({reason="max_routers"}, and meshd_bmp_errors_total
//     {kind="too_many_routers"}); connections waiting for their
//     Initiation are bounded by twice it (every router connecting at
//     once, each with a second session, fits), so silent connections
//     cannot pile up.
//   - Whatever the limits, a connection that sends no Initiation within
//     30 s is closed and counted (meshd_bmp_errors_total
//     {kind="no_initiation"}): it would otherwise hold its socket, and a
//     pending slot, for good.
//   - max-messages-per-second, max-bytes-per-second (default 0, none): a
//     router's rate budget, token buckets over all its sessions holding
//     one second's worth. Over it the session goroutine waits before it
//     takes the next batch; the reader's channel fills, the reader stops
//     reading, and TCP flow control slows the router. Nothing is
//     dropped: the router's data arrives later. The waiting is counted
//     in meshd_bmp_throttled_seconds_total{router} and logged once a
//     minute per router. A budget below a router's full-table rate makes
//     its initial dump (and a resync) take longer in proportion, not
//     lose routes: bench/bmpreplay feeds a 500k-route table (about 174k
//     messages) at 30k to 64k messages/s on the 2-core test machine, so
//     a budget of 10k messages/s makes that dump about 17 s instead of
//     3 to 6 s.
//   - max-routes-per-router (default 0, none): a router's memory budget,
//     the routes held in all its RIB views. What else a session holds is
//     bounded already: a 64 KiB read buffer and at most 6 batches of 256
//     decoded messages between reader and session. At the budget, an
//     announce of a route the view does not hold is not stored and makes
//     no route event (and no origin check); it is counted in
//     meshd_bmp_routes_over_budget_total{router} and logged once a minute
//     per router. Withdraws and updates of held routes go on, and freed
//     room is used by the next new routes. The prefix counts then lack
//     what was not held, by the counted amount; after raising the budget,
//     a resync (Disconnect) has the router send them again.
//
// # Files, by job
//
//   - bridge.go: listeners, sessions, router naming (the Bridge).
//   - limits.go: the allow-list, the rate budget, rate-limited warnings.
//   - read.go: framing and decoding a connection's bytes, in batches.
//   - session.go: one BMP session's life and its hand-over to the core.
//   - state.go: what is held per router, peer and RIB view.
//   - peer.go: Peer Up, Peer Down and stale peers to OpenConfig leaves.
//   - routes.go: Route Monitoring into the RIBs, route and origin events.
//   - quirks.go: sender behaviours meshd corrects for.
//   - counters.go: Statistics Reports and the route counters written.
package bmpbridge
