package merge

import (
	"github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
)

// hopsSuffix ends the key of the probe's hop count, whose changes make
// path-change events.
var hopsSuffix = []byte("/probe/state/hops")

// Emit publishes events without changes. Events naming a router held are
// published under its lock, in order with its updates.
func (c *Core) Emit(events ...change.Event) {
	if len(events) == 0 {
		return
	}
	names := make([]string, len(events))
	for i := range events {
		names[i] = events[i].Router
	}
	held := c.lock(names, false)
	c.publish(change.Batch{Events: events})
	c.unlockRouters(held)
}

// hopChange is the path-change event meshd derives when the probe's hop
// count for a neighbor changes: the probe serves counters and the last
// change over gNMI, and sinks want the change itself, with old and new.
func hopChange(routerName string, p *gnmi.Path, old uint64, ch *change.Change) change.Event {
	ni, addr, _, _ := change.NeighborOf(p)
	return change.HopChange{
		Time: ch.Time, Router: routerName, NetworkInstance: ni, Neighbor: addr, Source: ch.Source,
		OldHops: old, NewHops: ch.Value.GetUintVal(),
	}.Event()
}
