package change

import "time"

// HopChange is a change of the hop count towards a neighbor. Two stages
// see one: the probe, from the TTL of the packets it captured, and the
// merge core, when the probe's published hop-count leaf takes a new
// value. Both build their event with Event, so a hop_change event has
// the same kind and fields whoever made it.
type HopChange struct {
	Time            time.Time
	Router          string
	NetworkInstance string
	Neighbor        string
	Source          Source
	OldHops         uint64
	NewHops         uint64
	// Local and the TTLs are known only to the probe that saw the
	// packets; the merge core reads hop counts alone. An empty Local
	// leaves the three out of the event.
	Local          string
	OldTTL, NewTTL uint8
}

// Event builds the hop_change event. Its fields are int64, as the sinks
// map event fields (old_hops, new_hops, and from the probe local,
// old_ttl, new_ttl).
func (h HopChange) Event() Event {
	f := map[string]any{"old_hops": int64(h.OldHops), "new_hops": int64(h.NewHops)}
	if h.Local != "" {
		f["local"] = h.Local
		f["old_ttl"] = int64(h.OldTTL)
		f["new_ttl"] = int64(h.NewTTL)
	}
	return Event{
		Time: h.Time, Router: h.Router, NetworkInstance: h.NetworkInstance, Neighbor: h.Neighbor,
		Kind: EventHopChange, Source: h.Source, Fields: f,
	}
}
