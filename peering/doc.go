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
package peering
