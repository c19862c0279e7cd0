// Package models holds meshd's own YANG module, meshd-bgp.yang: what
// OpenConfig has no place for (keepalive-probe statistics, BMP-derived peer
// data, the joined verdict). ygot/ is generated from it.
//
// openconfig/ holds OpenConfig's modules as released in openconfig/public
// v4.2.0 (commit c00868ed96e8e48993e26d8fba20f093722c0e39, the release
// ondatra v0.6.0's gnmi/oc is built from), only openconfig-network-instance
// and the modules it imports, unchanged. meshd-oc-bgp-deviations.yang
// trims them to the BGP neighbor state meshd-probe --bgp serves; ygot/ocbgp
// is generated from the two.
package models
