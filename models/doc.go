// Package models holds meshd's own YANG module, meshd-bgp.yang: what
// OpenConfig has no place for (keepalive-probe statistics, BMP-derived peer
// data, the joined verdict). ygot/ is generated from it.
package models
