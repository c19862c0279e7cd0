package influx

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
)

// Measurements.
const (
	mNeighbor     = "bgp_neighbor"
	mNeighborAfi  = "bgp_neighbor_afi"
	mKeepalive    = "bgp_keepalive"
	mSessionEvent = "bgp_session_event"
	mMessage      = "bgp_message_verbose"
	mOrigin       = "bgp_origin_change"
	mBMPPeer      = "bmp_peer"
	mBMPStats     = "bmp_stats"
	mBMPRib       = "bmp_rib"
	mBMPRoute     = "bmp_route"
	mRouter       = "meshd_router"
	mRouterEvent  = "bmp_router_event"
	mRPKIChange   = "bgp_rpki_change"
	mAlert        = "meshd_alert"
)

// fixedKinds pins the type of every field the schema names (see
// docs/influx-schema.md). Fields not listed take the type of their first
// value and keep it; a later value of another type is converted when
// that loses nothing, else dropped and counted.
var fixedKinds = map[string]map[string]kind{
	mNeighbor: {
		"session_state": kString, "established": kInt, "established_transitions": kInt,
		"last_established_ns": kInt, "uptime_s": kInt, "local_as": kInt, "peer_type": kString,
		"updates_rx": kInt, "updates_tx": kInt, "notifications_rx": kInt, "notifications_tx": kInt,
		"queue_input": kInt, "queue_output": kInt, "capabilities": kString, "enabled": kBool,
		"hold_time": kFloat, "keepalive_interval": kFloat, "negotiated_hold_time": kFloat,
		"local_port": kInt, "remote_port": kInt, "local_address": kString, "remote_address": kString,
		"health": kString, "health_code": kInt, "health_reason": kString, "sources": kString,
		"last_seen_gnmi_ns": kInt, "last_seen_bmp_ns": kInt, "last_seen_probe_ns": kInt,
	},
	mNeighborAfi: {
		"prefixes_received": kInt, "prefixes_received_pre_policy": kInt, "prefixes_accepted": kInt,
		"prefixes_installed": kInt, "prefixes_sent": kInt, "active": kBool, "enabled": kBool,
	},
	mKeepalive: {
		"rtt_us": kFloat, "rtt_min_us": kFloat, "rtt_max_us": kFloat, "rtt_mean_us": kFloat,
		"rtt_p50_us": kFloat, "rtt_p99_us": kFloat, "jitter_us": kFloat, "window_samples": kInt,
		"samples": kInt, "loss": kInt, "keepalives_sent": kInt, "keepalives_received": kInt,
		"messages_seen": kInt, "ttl": kInt, "hops": kInt, "hop_changes": kInt,
		"last_hop_change_ns": kInt, "last_sample_ns": kInt,
	},
	mSessionEvent: {
		"n": kInt, "reason_code": kInt, "reason": kString, "notification_code": kInt,
		"notification_subcode": kInt, "capabilities": kString, "local_as": kInt,
		"old_hops": kInt, "new_hops": kInt, "hops": kInt, "ttl": kInt, "hold_time": kInt,
		// As bmpbridge sends them with Peer Up / Peer Down.
		"peer_type": kString, "rib": kString, "add_path": kString, "local_address": kString,
		"four_octet_as": kBool, "notification": kString, "notification_subcode_name": kString,
		"fsm_event": kInt,
	},
	mMessage: {
		"n": kInt, "code": kInt, "subcode": kInt, "version": kInt, "my_as": kInt, "hold_time": kInt,
		"bgp_id": kString, "capabilities": kString, "data": kString, "reason": kString,
		"families": kString, "code_name": kString, "subcode_name": kString,
	},
	mOrigin: {
		"prefix": kString, "old_origin_as": kInt, "new_origin_as": kInt, "more_specific_of": kString,
	},
	mBMPStats: {"peer_type": kString},
	mAlert: {
		"n": kInt, "id": kString, "prefix": kString, "watched_prefix": kString, "rib": kString, "origin_as": kInt,
		"detail": kString, "reason": kString, "description": kString,
	},
	mRPKIChange: {
		"prefix": kString, "origin_as": kInt, "old_state": kString, "new_state": kString, "path_id": kInt,
	},
	mBMPRoute: {
		"prefix": kString, "path_id": kInt, "origin_as": kInt, "as_path": kString, "next_hop": kString,
		"med": kInt, "local_pref": kInt, "communities": kString, "ext_communities": kString,
		"large_communities": kString, "rpki": kString,
	},
	mBMPRib: {
		"announcements": kInt, "withdrawals": kInt, "duplicates": kInt, "prefixes": kInt, "origin_changes": kInt,
		"rpki_valid": kInt, "rpki_invalid_origin": kInt, "rpki_invalid_length": kInt, "rpki_not_found": kInt,
	},
	mRouterEvent: {
		"n": kInt, "reason": kString, "sys_name": kString, "sys_descr": kString, "address": kString,
		"messages": kInt, "errors": kInt,
	},
}

// ocNeighborLeaf maps the OpenConfig leaves under a neighbor (path below
// the neighbor, list keys left out) to bgp_neighbor fields.
var ocNeighborLeaf = map[string]string{
	"state/session-state":                                  "session_state",
	"state/established-transitions":                        "established_transitions",
	"state/last-established":                               "last_established_ns",
	"state/local-as":                                       "local_as",
	"state/peer-type":                                      "peer_type",
	"state/enabled":                                        "enabled",
	"state/supported-capabilities":                         "capabilities",
	"state/messages/sent/UPDATE":                           "updates_tx",
	"state/messages/sent/NOTIFICATION":                     "notifications_tx",
	"state/messages/received/UPDATE":                       "updates_rx",
	"state/messages/received/NOTIFICATION":                 "notifications_rx",
	"state/messages/sent/last-notification-error-code":     "last_notification_code_tx",
	"state/messages/received/last-notification-error-code": "last_notification_code_rx",
	"state/queues/input":                                   "queue_input",
	"state/queues/output":                                  "queue_output",
	"timers/state/hold-time":                               "hold_time",
	"timers/state/keepalive-interval":                      "keepalive_interval",
	"timers/state/negotiated-hold-time":                    "negotiated_hold_time",
	"transport/state/local-address":                        "local_address",
	"transport/state/local-port":                           "local_port",
	"transport/state/remote-address":                       "remote_address",
	"transport/state/remote-port":                          "remote_port",
	"verdict/state/health":                                 "health",
	"verdict/state/reason":                                 "health_reason",
	"verdict/state/sources":                                "sources",
	"verdict/state/last-seen-gnmi":                         "last_seen_gnmi_ns",
	"verdict/state/last-seen-bmp":                          "last_seen_bmp_ns",
	"verdict/state/last-seen-probe":                        "last_seen_probe_ns",
}

// probeLeaf maps meshd's probe leaves to bgp_keepalive fields.
var probeLeaf = map[string]string{
	"rtt-last": "rtt_us", "rtt-min": "rtt_min_us", "rtt-max": "rtt_max_us", "rtt-mean": "rtt_mean_us",
	"rtt-p50": "rtt_p50_us", "rtt-p99": "rtt_p99_us", "jitter": "jitter_us", "losses": "loss",
	"last-hop-change": "last_hop_change_ns", "last-sample": "last_sample_ns",
	"rtt-recent": "rtt_recent_us", "rtt-baseline": "rtt_baseline_us", "last-loss": "last_loss_ns",
}

// bmpStatNames names the RFC 7854/8671/9069 statistics types.
var bmpStatNames = map[uint64]string{
	0: "prefixes_rejected", 1: "duplicate_prefix_advertisements", 2: "duplicate_withdraws",
	3: "invalid_cluster_list_loop", 4: "invalid_as_path_loop", 5: "invalid_originator_id",
	6: "invalid_as_confed_loop", 7: "routes_adj_rib_in", 8: "routes_loc_rib",
	9: "routes_adj_rib_in_afi_safi", 10: "routes_loc_rib_afi_safi", 11: "updates_treat_as_withdraw",
	12: "prefixes_treat_as_withdraw", 13: "duplicate_update_messages", 14: "routes_adj_rib_out_pre",
	15: "routes_adj_rib_out_post", 16: "routes_adj_rib_out_pre_afi_safi", 17: "routes_adj_rib_out_post_afi_safi",
}

// bmpStatTypes maps the names bmpbridge gives stats types in its
// Stats Report events (RFC 7854/8671/9069 wording, bmpbridge/decode's
// StatName) to the type numbers, so events and counter leaves write the
// same field names (bmpStatNames) into bmp_stats.
var bmpStatTypes = map[string]uint64{
	"rejected-prefixes": 0, "duplicate-prefix-advertisements": 1, "duplicate-withdraws": 2,
	"invalid-cluster-list-loop": 3, "invalid-as-path-loop": 4, "invalid-originator-id": 5,
	"invalid-as-confed-loop": 6, "adj-rib-in-routes": 7, "loc-rib-routes": 8,
	"adj-rib-in-routes-per-afi-safi": 9, "loc-rib-routes-per-afi-safi": 10, "updates-treated-as-withdraw": 11,
	"prefixes-treated-as-withdraw": 12, "duplicate-update-messages": 13, "adj-rib-out-pre-policy-routes": 14,
	"adj-rib-out-post-policy-routes": 15, "adj-rib-out-pre-policy-routes-per-afi-safi": 16,
	"adj-rib-out-post-policy-routes-per-afi-safi": 17,
}

var bmpStatFields = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range bmpStatNames {
		m[f] = true
	}
	return m
}()

// statField names the bmp_stats field of a stats event key: the
// bridge's "name" or "name.AFI_SAFI" (per-AFI types), or "type-N" for
// types it does not know. ok is false for keys that are no statistic.
func statField(key string) (f, afi string, ok bool) {
	name, afi, _ := strings.Cut(key, ".")
	if t, known := bmpStatTypes[name]; known {
		return bmpStatNames[t], afi, true
	}
	if f := fieldName(name); bmpStatFields[f] {
		return f, afi, true // already the schema's name
	}
	if n, found := strings.CutPrefix(name, "type-"); found {
		if _, err := strconv.ParseUint(n, 10, 16); err == nil {
			return "type_" + n, afi, true
		}
	}
	return "", "", false
}

// unspecifiedPeer says whether a neighbor address is the all-zero one
// BMP uses for Loc-RIB and instance peers, which are no BGP neighbors.
func unspecifiedPeer(addr string) bool { return addr == "0.0.0.0" || addr == "::" || addr == "" }

// locRIBPeerType is the bmp/state/peer-type value of a Loc-RIB instance
// peer (RFC 9069), as bmpbridge names it; "LOC_RIB" is accepted too.
func locRIBPeerType(s string) bool { return s == "LOC_RIB_INSTANCE" || s == "LOC_RIB" }

var healthCodes = map[string]int64{"UNKNOWN": 0, "HEALTHY": 1, "DEGRADED": 2, "DOWN": 3, "STALE": 4}

// target says where a leaf goes.
type target struct {
	meas  string
	extra tag // afi_safi or rib, for per-AFI and per-RIB series
	field string
}

// mapNeighborLeaf maps the path below a neighbor (OpenConfig or meshd
// model) to its measurement and field; ok is false for leaves the schema
// leaves out.
func mapNeighborLeaf(meshd bool, rest []*gpb.PathElem) (target, bool) {
	var buf []byte
	return mapNeighborLeafBuf(meshd, rest, &buf)
}

// mapNeighborLeafBuf is mapNeighborLeaf with the relative path built in
// *buf, reused from call to call: a string built per update was a fifth
// of the mapper's allocations.
func mapNeighborLeafBuf(meshd bool, rest []*gpb.PathElem, buf *[]byte) (target, bool) {
	b := (*buf)[:0]
	for i, e := range rest {
		if i > 0 {
			b = append(b, '/')
		}
		b = append(b, e.GetName()...)
	}
	*buf = b
	n := len(rest)
	if n == 0 {
		return target{}, false
	}
	leaf := rest[n-1].GetName()
	if meshd {
		switch {
		case n == 3 && bytes.HasPrefix(b, probeState):
			f, ok := probeLeaf[leaf]
			if !ok {
				f = fieldName(leaf)
			}
			return target{meas: mKeepalive, field: f}, true
		case n == 3 && bytes.HasPrefix(b, verdictState):
			f, ok := ocNeighborLeaf[string(b)]
			return target{meas: mNeighbor, field: f}, ok
		case n == 3 && bytes.HasPrefix(b, bmpState):
			return target{meas: mBMPPeer, field: fieldName(leaf)}, true
		case string(b) == "bmp/stats/counter/state/value":
			t, err := strconv.ParseUint(rest[2].GetKey()["type"], 10, 16)
			if err != nil {
				return target{}, false
			}
			f, ok := bmpStatNames[t]
			if !ok {
				f = "type_" + strconv.FormatUint(t, 10)
			}
			return target{meas: mBMPStats, field: f}, true
		case n == 5 && bytes.HasPrefix(b, bmpRibState) && leaf != "view":
			return target{meas: mBMPRib, extra: tag{"rib", rest[2].GetKey()["view"]}, field: fieldName(leaf)}, true
		}
		return target{}, false
	}
	if n >= 4 && rest[0].GetName() == "afi-safis" && rest[1].GetName() == "afi-safi" && rest[2].GetName() == "state" {
		afi := stripModule(rest[1].GetKey()["afi-safi-name"])
		switch {
		case n == 5 && rest[3].GetName() == "prefixes":
			return target{meas: mNeighborAfi, extra: tag{"afi_safi", afi}, field: "prefixes_" + fieldName(leaf)}, true
		case n == 4 && (leaf == "active" || leaf == "enabled"):
			return target{meas: mNeighborAfi, extra: tag{"afi_safi", afi}, field: leaf}, true
		}
		return target{}, false
	}
	f, ok := ocNeighborLeaf[string(b)]
	return target{meas: mNeighbor, field: f}, ok
}

var (
	probeState   = []byte("probe/state/")
	verdictState = []byte("verdict/state/")
	bmpState     = []byte("bmp/state/")
	bmpRibState  = []byte("bmp/ribs/rib/state/")
)

// stripModule drops a YANG module prefix from an identity
// ("openconfig-bgp-types:IPV4_UNICAST" -> "IPV4_UNICAST").
func stripModule(s string) string {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// convert turns a gNMI value into a field value of kind k. ok is false
// when the value cannot be had as k without inventing data.
func convert(tv *gpb.TypedValue, k kind) (v value, overflow, ok bool) {
	switch x := tv.GetValue().(type) {
	case *gpb.TypedValue_UintVal:
		i, of := clampUint(x.UintVal)
		if k == kString {
			return strV(strconv.FormatUint(x.UintVal, 10)), false, true
		}
		return numeric(float64(x.UintVal), i, k), of && k == kInt, true
	case *gpb.TypedValue_IntVal:
		return numeric(float64(x.IntVal), x.IntVal, k), false, true
	case *gpb.TypedValue_DoubleVal:
		return numericFloat(x.DoubleVal, k)
	case *gpb.TypedValue_FloatVal: //nolint:staticcheck // some targets still send it
		return numericFloat(float64(x.FloatVal), k)
	case *gpb.TypedValue_DecimalVal: //nolint:staticcheck // the YANG decimal64 leaves
		f := float64(x.DecimalVal.GetDigits()) / math.Pow10(int(x.DecimalVal.GetPrecision()))
		return numericFloat(f, k)
	case *gpb.TypedValue_BoolVal:
		switch k {
		case kBool:
			return boolV(x.BoolVal), false, true
		case kInt:
			if x.BoolVal {
				return intV(1), false, true
			}
			return intV(0), false, true
		case kString:
			return strV(strconv.FormatBool(x.BoolVal)), false, true
		}
	case *gpb.TypedValue_StringVal:
		return fromString(stripModule(x.StringVal), k)
	case *gpb.TypedValue_LeaflistVal:
		if k != kString {
			return value{}, false, false
		}
		var parts []string
		for _, e := range x.LeaflistVal.GetElement() {
			if s, ok := e.GetValue().(*gpb.TypedValue_StringVal); ok {
				parts = append(parts, stripModule(s.StringVal))
			} else {
				parts = append(parts, fmt.Sprint(e.GetValue()))
			}
		}
		return strV(strings.Join(parts, ",")), false, true
	}
	return value{}, false, false
}

func numeric(f float64, i int64, k kind) value {
	switch k {
	case kFloat:
		return floatV(f)
	case kString:
		return strV(strconv.FormatInt(i, 10))
	case kBool:
		return boolV(i != 0)
	}
	return intV(i)
}

func numericFloat(f float64, k kind) (value, bool, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return value{}, false, false
	}
	switch k {
	case kFloat:
		return floatV(f), false, true
	case kInt:
		if f > math.MaxInt64 || f < math.MinInt64 {
			return intV(int64(math.Copysign(math.MaxInt64, f))), true, true
		}
		return intV(int64(math.Round(f))), false, true
	case kString:
		return strV(strconv.FormatFloat(f, 'g', -1, 64)), false, true
	}
	return value{}, false, false
}

func fromString(s string, k kind) (value, bool, bool) {
	switch k {
	case kString:
		return strV(s), false, true
	case kInt:
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return intV(i), false, true
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			i, of := clampUint(u)
			return intV(i), of, true
		}
	case kFloat:
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return floatV(f), false, true
		}
	case kBool:
		if b, err := strconv.ParseBool(s); err == nil {
			return boolV(b), false, true
		}
	}
	return value{}, false, false
}

// naturalKind is the kind a gNMI value has by itself.
func naturalKind(tv *gpb.TypedValue) kind {
	switch tv.GetValue().(type) {
	case *gpb.TypedValue_UintVal, *gpb.TypedValue_IntVal:
		return kInt
	case *gpb.TypedValue_DoubleVal, *gpb.TypedValue_FloatVal, *gpb.TypedValue_DecimalVal: //nolint:staticcheck
		return kFloat
	case *gpb.TypedValue_BoolVal:
		return kBool
	}
	return kString
}

// goValue converts an event field to a value of its natural kind.
func goValue(x any) (value, bool) {
	switch v := x.(type) {
	case int:
		return intV(int64(v)), true
	case int8:
		return intV(int64(v)), true
	case int16:
		return intV(int64(v)), true
	case int32:
		return intV(int64(v)), true
	case int64:
		return intV(v), true
	case uint:
		i, _ := clampUint(uint64(v))
		return intV(i), true
	case uint8:
		return intV(int64(v)), true
	case uint16:
		return intV(int64(v)), true
	case uint32:
		return intV(int64(v)), true
	case uint64:
		i, _ := clampUint(v)
		return intV(i), true
	case float32:
		return floatV(float64(v)), !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0)
	case float64:
		return floatV(v), !math.IsNaN(v) && !math.IsInf(v, 0)
	case bool:
		return boolV(v), true
	case string:
		return strV(v), true
	case []string:
		return strV(strings.Join(v, ",")), true
	case time.Time:
		return intV(v.UnixNano()), true
	case time.Duration:
		return intV(int64(v)), true
	case nil:
		return value{}, false
	}
	return strV(fmt.Sprint(x)), true
}

// coerce converts an event value to kind k where nothing is lost.
func coerce(v value, k kind) (value, bool) {
	if v.k == k {
		return v, true
	}
	switch {
	case v.k == kInt && k == kFloat:
		return floatV(float64(v.i)), true
	case v.k == kFloat && k == kInt && v.f == math.Trunc(v.f) && math.Abs(v.f) < 1<<62:
		return intV(int64(v.f)), true
	case v.k == kString:
		nv, _, ok := fromString(v.s, k)
		return nv, ok
	case v.k == kInt && k == kString:
		return strV(strconv.FormatInt(v.i, 10)), true
	case v.k == kBool && k == kInt:
		if v.b {
			return intV(1), true
		}
		return intV(0), true
	}
	return value{}, false
}
