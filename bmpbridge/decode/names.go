package decode

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// Message type names, as printed and used in metric labels.
var msgTypeNames = [...]string{"route_monitoring", "stats_report", "peer_down", "peer_up", "initiation", "termination", "route_mirroring"}

// MsgTypeName names a BMP message type; unknown types are "type_N".
func MsgTypeName(t uint8) string {
	if int(t) < len(msgTypeNames) {
		return msgTypeNames[t]
	}
	return "type_" + strconv.Itoa(int(t))
}

var peerTypeNames = [...]string{"GLOBAL", "RD_INSTANCE", "LOCAL_INSTANCE", "LOC_RIB_INSTANCE"}

// PeerTypeName names a BMP peer type as meshd's model does.
func PeerTypeName(t uint8) string {
	if int(t) < len(peerTypeNames) {
		return peerTypeNames[t]
	}
	return "TYPE_" + strconv.Itoa(int(t))
}

// Peer Down reason codes (RFC 7854 section 4.9, RFC 9069 section 5.4).
var peerDownReasons = map[uint8]string{
	0: "reserved",
	1: "local system closed the session with a NOTIFICATION",
	2: "local system closed the session without a NOTIFICATION",
	3: "remote system closed the session with a NOTIFICATION",
	4: "remote system closed the session without a NOTIFICATION",
	5: "peer de-configured: information for this peer will no longer be sent",
	6: "Loc-RIB instance no longer monitored (information TLVs follow)",
}

// PeerDownReason describes a Peer Down reason code.
func PeerDownReason(code uint8) string {
	if s, ok := peerDownReasons[code]; ok {
		return s
	}
	return "unknown reason " + strconv.Itoa(int(code))
}

// Stats Report types (RFC 7854 section 4.8, RFC 8671, IANA registry).
var statNames = map[uint16]string{
	0:  "rejected-prefixes",
	1:  "duplicate-prefix-advertisements",
	2:  "duplicate-withdraws",
	3:  "invalid-cluster-list-loop",
	4:  "invalid-as-path-loop",
	5:  "invalid-originator-id",
	6:  "invalid-as-confed-loop",
	7:  "adj-rib-in-routes",
	8:  "loc-rib-routes",
	9:  "adj-rib-in-routes-per-afi-safi",
	10: "loc-rib-routes-per-afi-safi",
	11: "updates-treated-as-withdraw",
	12: "prefixes-treated-as-withdraw",
	13: "duplicate-update-messages",
	14: "adj-rib-out-pre-policy-routes",
	15: "adj-rib-out-post-policy-routes",
	16: "adj-rib-out-pre-policy-routes-per-afi-safi",
	17: "adj-rib-out-post-policy-routes-per-afi-safi",
}

// Stats Report types meshd's peering source sends on its in-process
// streams, in RFC 7854's experimental range (65531-65534): the messages
// of the BGP session, as the monitored router counts them. Only an
// in-process stream's are read so (a router may use the range for
// anything); on a router's connection they are counters like any other.
//
// The router receives no UPDATE from meshd, so that count is not sent.
// StatGracefulRestart says the session ended without a NOTIFICATION
// and the router restarts gracefully (RFC 4724): its value is the
// router's restart time in seconds (bmpbridge/graceful.go).
const (
	StatUpdatesSent       = 65531 // UPDATEs the router sent on the session
	StatNotificationsSent = 65532 // NOTIFICATIONs the router sent
	StatNotificationsRcvd = 65533 // NOTIFICATIONs the router received
	StatGracefulRestart   = 65534 // the router restarts: its restart time
)

// StatName names a Stats Report type; unknown types are "type-N".
func StatName(t uint16) string {
	if s, ok := statNames[t]; ok {
		return s
	}
	return "type-" + strconv.Itoa(int(t))
}

// Termination reasons (RFC 7854 section 4.5).
var termReasons = map[uint16]string{
	0: "session administratively closed",
	1: "unspecified reason",
	2: "out of resources",
	3: "redundant connection",
	4: "session permanently administratively closed",
}

// TerminationReason describes a Termination reason code.
func TerminationReason(code uint16) string {
	if s, ok := termReasons[code]; ok {
		return s
	}
	return "unknown reason " + strconv.Itoa(int(code))
}

// NOTIFICATION error codes and subcodes (RFC 4271, 4486, 8203, 9003, 7313, 8538).
var notifCodes = map[uint8]string{
	1: "Message Header Error",
	2: "OPEN Message Error",
	3: "UPDATE Message Error",
	4: "Hold Timer Expired",
	5: "Finite State Machine Error",
	6: "Cease",
	7: "ROUTE-REFRESH Message Error",
}

var notifSubcodes = map[uint8]map[uint8]string{
	1: {1: "Connection Not Synchronized", 2: "Bad Message Length", 3: "Bad Message Type"},
	2: {1: "Unsupported Version Number", 2: "Bad Peer AS", 3: "Bad BGP Identifier", 4: "Unsupported Optional Parameter",
		6: "Unacceptable Hold Time", 7: "Unsupported Capability", 8: "Role Mismatch"},
	3: {1: "Malformed Attribute List", 2: "Unrecognized Well-known Attribute", 3: "Missing Well-known Attribute",
		4: "Attribute Flags Error", 5: "Attribute Length Error", 6: "Invalid ORIGIN Attribute", 8: "Invalid NEXT_HOP Attribute",
		9: "Optional Attribute Error", 10: "Invalid Network Field", 11: "Malformed AS_PATH"},
	5: {1: "Receive Unexpected Message in OpenSent State", 2: "Receive Unexpected Message in OpenConfirm State",
		3: "Receive Unexpected Message in Established State"},
	6: {1: "Maximum Number of Prefixes Reached", 2: "Administrative Shutdown", 3: "Peer De-configured",
		4: "Administrative Reset", 5: "Connection Rejected", 6: "Other Configuration Change",
		7: "Connection Collision Resolution", 8: "Out of Resources", 9: "Hard Reset", 10: "BFD Down"},
	7: {1: "Invalid Message Length"},
}

// NotificationName names a NOTIFICATION code and subcode.
func NotificationName(code, sub uint8) (string, string) {
	c, ok := notifCodes[code]
	if !ok {
		c = "code " + strconv.Itoa(int(code))
	}
	s, ok := notifSubcodes[code][sub]
	if !ok {
		if sub == 0 {
			s = "Unspecific"
		} else {
			s = "subcode " + strconv.Itoa(int(sub))
		}
	}
	return c, s
}

// AfiSafiName names a family as OpenConfig's AFI_SAFI_TYPE identities do;
// families OpenConfig has no name for are "AFI_n_SAFI_m".
func AfiSafiName(f bgp.Family) string {
	switch f {
	case bgp.RF_IPv4_UC:
		return "IPV4_UNICAST"
	case bgp.RF_IPv6_UC:
		return "IPV6_UNICAST"
	case bgp.RF_IPv4_MPLS:
		return "IPV4_LABELED_UNICAST"
	case bgp.RF_IPv6_MPLS:
		return "IPV6_LABELED_UNICAST"
	case bgp.RF_IPv4_VPN:
		return "L3VPN_IPV4_UNICAST"
	case bgp.RF_IPv6_VPN:
		return "L3VPN_IPV6_UNICAST"
	case bgp.RF_EVPN:
		return "L2VPN_EVPN"
	case bgp.RF_IPv4_MC:
		return "IPV4_MULTICAST"
	case bgp.RF_IPv6_MC:
		return "IPV6_MULTICAST"
	case bgp.RF_VPLS:
		return "L2VPN_VPLS"
	case bgp.RF_IPv4_ENCAP:
		return "IPV4_ENCAP"
	case bgp.RF_IPv6_ENCAP:
		return "IPV6_ENCAP"
	case bgp.RF_FS_IPv4_UC:
		return "IPV4_FLOWSPEC"
	case bgp.RF_FS_IPv6_UC:
		return "IPV6_FLOWSPEC"
	case bgp.RF_SR_POLICY_IPv4:
		return "SRTE_POLICY_IPV4"
	case bgp.RF_SR_POLICY_IPv6:
		return "SRTE_POLICY_IPV6"
	}
	return fmt.Sprintf("AFI_%d_SAFI_%d", f.Afi(), f.Safi())
}

// decoded reports whether meshd decodes a family's routes; others are
// counted by AFI/SAFI.
func decoded(f bgp.Family) bool {
	switch f {
	case bgp.RF_IPv4_UC, bgp.RF_IPv6_UC, bgp.RF_IPv4_MPLS, bgp.RF_IPv6_MPLS, bgp.RF_IPv4_VPN, bgp.RF_IPv6_VPN, bgp.RF_EVPN:
		return true
	}
	return false
}

// ocCapability maps a BGP capability to OpenConfig's BGP_CAPABILITY
// identity, when one exists.
func ocCapability(c bgp.BGPCapabilityCode) (string, bool) {
	switch c {
	case bgp.BGP_CAP_MULTIPROTOCOL:
		return "MPBGP", true
	case bgp.BGP_CAP_ROUTE_REFRESH, bgp.BGP_CAP_ROUTE_REFRESH_CISCO:
		return "ROUTE_REFRESH", true
	case bgp.BGP_CAP_FOUR_OCTET_AS_NUMBER:
		return "ASN32", true
	case bgp.BGP_CAP_ADD_PATH:
		return "ADD_PATHS", true
	case bgp.BGP_CAP_GRACEFUL_RESTART:
		return "GRACEFUL_RESTART", true
	case bgp.BGP_CAP_EXTENDED_NEXTHOP:
		return "EXTENDED_NEXTHOP_ENCODING", true
	}
	return "", false
}

// capName names a capability code (IANA registry).
func capName(c bgp.BGPCapabilityCode) string {
	switch c {
	case bgp.BGP_CAP_MULTIPROTOCOL:
		return "multiprotocol"
	case bgp.BGP_CAP_ROUTE_REFRESH:
		return "route-refresh"
	case bgp.BGP_CAP_CARRYING_LABEL_INFO:
		return "carrying-label-info"
	case bgp.BGP_CAP_EXTENDED_NEXTHOP:
		return "extended-nexthop"
	case bgp.BGP_CAP_EXTENDED_MESSAGE:
		return "extended-message"
	case 9:
		return "bgp-role"
	case bgp.BGP_CAP_GRACEFUL_RESTART:
		return "graceful-restart"
	case bgp.BGP_CAP_FOUR_OCTET_AS_NUMBER:
		return "4-octet-as"
	case bgp.BGP_CAP_ADD_PATH:
		return "add-path"
	case bgp.BGP_CAP_ENHANCED_ROUTE_REFRESH:
		return "enhanced-route-refresh"
	case bgp.BGP_CAP_LONG_LIVED_GRACEFUL_RESTART:
		return "long-lived-graceful-restart"
	case bgp.BGP_CAP_FQDN:
		return "fqdn"
	case bgp.BGP_CAP_SOFT_VERSION:
		return "software-version"
	case bgp.BGP_CAP_ROUTE_REFRESH_CISCO:
		return "cisco-route-refresh"
	}
	return "capability-" + strconv.Itoa(int(c))
}

// FormatRD writes a route distinguisher (RFC 4364 section 4.2) as text.
func FormatRD(rd uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], rd)
	switch binary.BigEndian.Uint16(b[:2]) {
	case 0:
		return strconv.FormatUint(uint64(binary.BigEndian.Uint16(b[2:4])), 10) + ":" + strconv.FormatUint(uint64(binary.BigEndian.Uint32(b[4:8])), 10)
	case 1:
		return netip.AddrFrom4([4]byte(b[2:6])).String() + ":" + strconv.FormatUint(uint64(binary.BigEndian.Uint16(b[6:8])), 10)
	case 2:
		return strconv.FormatUint(uint64(binary.BigEndian.Uint32(b[2:6])), 10) + ":" + strconv.FormatUint(uint64(binary.BigEndian.Uint16(b[6:8])), 10)
	}
	return fmt.Sprintf("%x", b[:])
}
