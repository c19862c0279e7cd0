// Package peering is meshd's BGP peering source: meshd peers with routers
// that cannot send BMP (BIRD, OpenBGPD, older NOSes) as a route collector,
// on CoreBGP (github.com/jwhited/corebgp), passively by default, and
// never advertises a route.
//
// Each router's sessions reach the BMP bridge as a BMP stream made in
// process (bmpbridge.Bridge.Attach): an Initiation naming the router, a
// Peer Up with both OPENs when a session is established, every UPDATE the
// router sends in a Route Monitoring message, and a Peer Down with the
// NOTIFICATION when it ends. So routes from a peering session go through
// the same UPDATE decoder, per-router RIB, route events, origin checks,
// RPKI validation and alerts as BMP's, with no second parser. In BMP's
// terms the monitored router is the router and its peer is meshd: the
// routes are the router's Adj-RIB-Out towards meshd after export policy
// (RFC 8671, view ADJ_RIB_OUT_POST), under the neighbor that is meshd's
// own address on the session, whose session state, uptime and flaps join
// that neighbor's record.
//
// The OPENs and NOTIFICATIONs are taken off the wire: accepted
// connections are read through a tap that frames the BGP messages going
// each way (CoreBGP hands its plugins the peer's capabilities, not its
// OPEN, and no NOTIFICATION). A session meshd dials itself (active) has
// no tap: its OPENs are rebuilt from what CoreBGP reports, and its Peer
// Down carries no NOTIFICATION.
//
// The session's messages join the record too (neighbor state/messages:
// UPDATEs and NOTIFICATIONs as the router counts them), sent each second
// they change as Stats Reports of RFC 7854's experimental types, which
// the bridge reads so only on an in-process stream (decode.StatUpdatesSent
// and the others).
//
// Graceful restart, as a helper (RFC 4724): meshd advertises the
// capability with no family, and when a router that lists families in
// its own loses its session without a NOTIFICATION (a tapped session
// whose router closed it), its routes are kept, stale, for the restart
// time it gave: the bridge is told (decode.StatGracefulRestart) and marks
// them; the Peer Down follows only if the router is not back in time.
// Back, the routes it sends again are fresh, and its End-of-RIB for a
// family withdraws the stale ones it did not send (bmpbridge/graceful.go).
// A session meshd dialed has no tap to tell a crash from a NOTIFICATION,
// so its routes go at once.
package peering
