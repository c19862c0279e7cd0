// Package bgpstate reads the local BGP daemon's neighbor state (FRR through
// vtysh, gobgpd through its gRPC API) and turns it into OpenConfig leaves,
// so the probe agent serves the router's own view of its sessions.
package bgpstate

import (
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
)

// Neighbor is one BGP neighbor as the daemon reports it, already in
// OpenConfig terms.
type Neighbor struct {
	NetworkInstance string
	Address         string // canonical IP address (netip form)
	// State is the OpenConfig session-state enum name: IDLE, CONNECT,
	// ACTIVE, OPENSENT, OPENCONFIRM or ESTABLISHED.
	State   string
	PeerAS  uint32
	LocalAS uint32
	// EstablishedTransitions counts the session's transitions to
	// ESTABLISHED; Transitions false means the daemon gave no figure.
	EstablishedTransitions uint64
	HasTransitions         bool
	// LastEstablished is when the session last came up; zero when the
	// daemon does not say (a down session in FRR), in which case the
	// last known value stays served.
	LastEstablished    time.Time
	Sent, Received     Messages
	NegotiatedHoldTime uint16 // seconds; 0 unknown (not established)
	AfiSafis           []AfiSafi
}

// Messages are per-type message counters.
type Messages struct {
	Update, Notification uint64
}

// AfiSafi holds the prefix counters of one address family; a nil counter
// is one the daemon does not report.
type AfiSafi struct {
	Name              string // OpenConfig AFI_SAFI_TYPE name, e.g. IPV4_UNICAST
	Received          *uint32
	ReceivedPrePolicy *uint32
	Sent              *uint32
	Installed         *uint32
}

// Leaf is one OpenConfig leaf of a neighbor.
type Leaf struct {
	Path  *gpb.Path
	Value *gpb.TypedValue
}

// Leaves returns n's OpenConfig leaves.
func (n *Neighbor) Leaves() []Leaf {
	ni, a := n.NetworkInstance, n.Address
	st := func(v *gpb.TypedValue, elems ...string) Leaf {
		return Leaf{Path: change.NeighborPath(ni, a, append([]string{"state"}, elems...)...), Value: v}
	}
	ls := []Leaf{
		st(change.String(n.State), "session-state"),
		st(change.Uint(uint64(n.PeerAS)), "peer-as"),
		st(change.Uint(uint64(n.LocalAS)), "local-as"),
		st(change.Uint(n.Sent.Update), "messages", "sent", "UPDATE"),
		st(change.Uint(n.Sent.Notification), "messages", "sent", "NOTIFICATION"),
		st(change.Uint(n.Received.Update), "messages", "received", "UPDATE"),
		st(change.Uint(n.Received.Notification), "messages", "received", "NOTIFICATION"),
	}
	if n.PeerAS == 0 {
		ls = append(ls[:1], ls[2:]...)
	}
	if n.HasTransitions {
		ls = append(ls, st(change.Uint(n.EstablishedTransitions), "established-transitions"))
	}
	if !n.LastEstablished.IsZero() {
		ls = append(ls, st(change.Uint(uint64(n.LastEstablished.UnixNano())), "last-established"))
	}
	if n.NegotiatedHoldTime != 0 {
		ls = append(ls, Leaf{Path: change.NeighborPath(ni, a, "timers", "state", "negotiated-hold-time"), Value: change.Uint(uint64(n.NegotiatedHoldTime))})
	}
	for _, af := range n.AfiSafis {
		pf := func(v *uint32, leaf string) {
			if v != nil {
				ls = append(ls, Leaf{Path: change.AfiSafiPath(ni, a, af.Name, "state", "prefixes", leaf), Value: change.Uint(uint64(*v))})
			}
		}
		pf(af.Received, "received")
		pf(af.ReceivedPrePolicy, "received-pre-policy")
		pf(af.Sent, "sent")
		pf(af.Installed, "installed")
	}
	return ls
}

// sticky leaves keep their last value when a poll no longer reports them:
// a daemon forgets when a session came up once it is down, but the
// operator still wants to know.
var sticky = map[string]bool{"last-established": true}

func u32(v uint32) *uint32 { return &v }
