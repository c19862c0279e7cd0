// Package change defines what flows between meshd's stages: the typed leaf
// changes and discrete events that sources hand to the merge core, and the
// batches of really-changed leaves the merge core hands to sinks. Sources
// and sinks import this package and never each other.
package change

import (
	"fmt"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
)

// Source says where a value came from. Its rank decides which value wins
// for a leaf that more than one source feeds.
type Source uint8

// The sources, in no particular order; see Rank for precedence.
const (
	SourceUnknown Source = iota
	SourceGNMI           // the router's own gNMI telemetry
	SourceBMP            // derived from the router's BMP stream
	SourceProbe          // the on-box keepalive probe
	SourceMeshd          // computed by meshd itself (the verdict)
)

var sourceNames = [...]string{"unknown", "gnmi", "bmp", "probe", "meshd"}

func (s Source) String() string {
	if int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return "unknown"
}

// Rank orders sources for one leaf: a higher rank overrides a lower one
// while its session is live. A router's own gNMI value is authoritative;
// the probe only writes its own paths; BMP-derived values fill in for
// routers (or leaves) that gNMI does not cover.
func (s Source) Rank() int {
	switch s {
	case SourceGNMI:
		return 3
	case SourceProbe, SourceMeshd:
		return 2
	case SourceBMP:
		return 1
	}
	return 0
}

// Change is one leaf (or, with a nil Value, one subtree to delete) for one
// router. Path is a schema path without target: an OpenConfig path such as
// /network-instances/network-instance[name=default]/.../state/session-state,
// or a meshd model path under /meshd.
type Change struct {
	Router string
	Path   *gpb.Path
	Value  *gpb.TypedValue // nil deletes Path and everything below it
	Time   time.Time
	Source Source
}

// Update is a leaf whose value really changed in the merged state, as
// published to sinks. A nil Value means the leaf was deleted.
type Update struct {
	Router string
	Path   *gpb.Path
	Key    string // canonical string form of Path (PathKey), or empty: the merge core fills it in for consumers that ask (merge.WithKeys)
	Value  *gpb.TypedValue
	Time   time.Time
	Source Source
}

// Batch is what a sink receives: the updates of one Apply call and the
// events emitted with it, in order.
type Batch struct {
	Updates []Update
	Events  []Event
	// Lost counts the updates and events this consumer missed since its
	// previous batch because its queue was full; a consumer that keeps a
	// copy of the state resynchronises from the merge core's snapshot.
	Lost uint64
	// LostRouters are the routers of updates and events this consumer
	// missed, delivered once, with a batch whose Lost is not 0 (or an
	// earlier one): a consumer resynchronises those routers only. nil
	// with Lost > 0 means too many to list: resynchronise every router.
	LostRouters []string
	// Seq numbers the batches offered to one consumer, dropped ones
	// included; a router's batches are numbered in the order they were
	// published. A consumer that resynchronises compares it with the
	// subscription's Seq read before each snapshot (merge.Subscription).
	Seq uint64
}

// EventKind names a discrete event. Kinds are a small fixed set so they can
// be used as tags and metric labels.
type EventKind string

// Event kinds.
const (
	EventPeerUp       EventKind = "peer_up"
	EventPeerDown     EventKind = "peer_down"
	EventRoute        EventKind = "route"
	EventOriginChange EventKind = "origin_change"
	EventHopChange    EventKind = "hop_change"
	EventMessage      EventKind = "bgp_message" // verbose OPEN/NOTIFICATION details
	EventStats        EventKind = "bmp_stats"
	EventProbeSample  EventKind = "probe_sample"
	EventRouterUp     EventKind = "router_up"   // a BMP session was initiated
	EventRouterDown   EventKind = "router_down" // a BMP session terminated or was lost
	// EventRPKIChange: a held route's RPKI validation state changed as
	// the VRPs changed.
	EventRPKIChange EventKind = "rpki_change"
	// EventAlert: a route alert (the monitor: section) opened or cleared.
	EventAlert EventKind = "alert"
)

// Event is a discrete happening attributed to a router and, where it has
// one, a neighbor. Fields carries the event's typed values (int64, uint64,
// float64, string, bool); Route carries a route event's details without a
// map allocation on the hot path.
type Event struct {
	Time            time.Time
	Router          string
	NetworkInstance string
	Neighbor        string
	Kind            EventKind
	Source          Source
	Fields          map[string]any
	Route           *Route
}

// RouteAction says what happened to a route.
type RouteAction uint8

// Route actions.
const (
	Announce RouteAction = iota + 1
	Withdraw
)

// MarshalText writes an action as its name, as String does.
func (a RouteAction) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads an action's name.
func (a *RouteAction) UnmarshalText(b []byte) error {
	switch string(b) {
	case "announce":
		*a = Announce
	case "withdraw":
		*a = Withdraw
	default:
		return fmt.Errorf("route action %q: want announce or withdraw", b)
	}
	return nil
}

func (a RouteAction) String() string {
	switch a {
	case Announce:
		return "announce"
	case Withdraw:
		return "withdraw"
	}
	return "unknown"
}

// Route is one route event from a RIB view.
type Route struct {
	Action           RouteAction         `json:"action"`
	AfiSafi          string              `json:"afi_safi"` // e.g. IPV4_UNICAST, as OpenConfig names AFI-SAFIs
	RIB              string              `json:"rib"`      // e.g. ADJ_RIB_IN_PRE, as the meshd model names RIB views
	Prefix           string              `json:"prefix"`
	PathID           uint32              `json:"path_id,omitempty"`
	OriginAS         uint32              `json:"origin_as,omitempty"`
	ASPath           string              `json:"as_path,omitempty"`
	NextHop          string              `json:"next_hop,omitempty"`
	MED              *uint32             `json:"med,omitempty"`
	LocalPref        *uint32             `json:"local_pref,omitempty"`
	Communities      []string            `json:"communities,omitempty"`
	ExtCommunities   map[string][]string `json:"ext_communities,omitempty"`
	LargeCommunities []string            `json:"large_communities,omitempty"`
	// RPKI is the route's origin validation state (valid, invalid-origin,
	// invalid-length, not-found), set when meshd validates routes.
	RPKI string `json:"rpki,omitempty"`
}
