// Package ribview serves the routers' BGP RIBs, as the bmp source holds
// them (from BMP and from BGP peering), in the openconfig-rib-bgp model
// on meshd's gNMI target:
//
//	/network-instances/network-instance[name=NI]/protocols/protocol[identifier=BGP][name=BGP]/bgp/rib/
//	  afi-safis/afi-safi[afi-safi-name=IPV4_UNICAST]/ipv4-unicast/loc-rib/routes/route[prefix][origin][path-id]/state/...
//	  afi-safis/afi-safi[afi-safi-name=IPV4_UNICAST]/ipv4-unicast/neighbors/neighbor[neighbor-address]/adj-rib-in-pre/routes/route[prefix][path-id]/state/...
//	  (adj-rib-in-post, adj-rib-out-pre, adj-rib-out-post; IPV6_UNICAST and ipv6-unicast alike)
//	  attr-sets/attr-set[index]/state/... and as-path/as-segment[index]/state/...
//	  communities/community[index]/state/...
//
// Nothing is stored for it: the RIBs are the bmp source's own tables
// (bmpbridge/rib), read through Source when a client asks, and changes
// are handed to the subscribers watching as the source applies them
// (Hub.Publish). A held route costs no memory here; a walk costs a
// snapshot of the keys of the tables it reads (about 32 bytes a route)
// while it runs, and the routes are rendered and sent a batch at a time,
// each batch read under the router's lock and sent without it.
//
// An attribute set's index is the source's interned set ID: routes that
// share attributes share an attr-set, as the model intends, and a
// route's community-index is its attr-index when the set has
// communities. attr-sets and communities are served for the routes the
// subscription's route paths select (every route when it names none):
// a client that watches its own prefixes gets their attributes and no
// others. In a stream each announced route's attr-set is sent again with
// it, replacing what the index held before (a freed index is reused).
//
// What is left out, and why: the RIB is served only to paths that name
// it (a path at or below .../bgp/rib): a million routes a router would
// otherwise swamp every subscription to the whole tree. Loc-RIB route
// origins are "BGP": BMP's Loc-RIB (RFC 9069) does not say which
// neighbor a route came from. last-modified is not kept (it would cost 8
// bytes a route). Only IPv4 and IPv6 unicast are served; labeled unicast
// and the other families are counted but not in this model.
package ribview
