//go:build integration

package influx

import (
	"testing"
	"time"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
)

// Events are occurrences: each one is a point of its own in InfluxDB,
// whatever time its router stamped on it. FRR stamps BMP route messages
// with the route's age, so two origin changes of one neighbor's RIB can
// carry one old time with newer ones between them; InfluxDB kept only
// the last of the two (the sink moved a colliding time only within a
// second of the series' newest). Found by the soak's BMP fuzz row.
func TestEventsWithOneOldTimeAllKept(t *testing.T) {
	in := testenv.StartInfluxd(t)
	in.CreateDB(t, "meshd")
	cfg := testConfig(t, in.URL, "meshd")
	_, sub, stop := startSink(t, cfg, 16)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	origin := func(at time.Time, prefix string, was, now int64) change.Event {
		return change.Event{Time: at, Router: "r1", NetworkInstance: "default", Neighbor: "192.0.2.1", Kind: change.EventOriginChange, Source: change.SourceBMP,
			Fields: map[string]any{"afi_safi": "IPV4_UNICAST", "rib": "ADJ_RIB_IN_POST", "prefix": prefix, "old_origin_as": was, "new_origin_as": now}}
	}
	peer := func(at time.Time, kind change.EventKind) change.Event {
		return change.Event{Time: at, Router: "r1", NetworkInstance: "default", Neighbor: "192.0.2.1", Kind: kind, Source: change.SourceBMP,
			Fields: map[string]any{"reason_code": int64(2)}}
	}
	sub.ch <- change.Batch{Events: []change.Event{
		origin(old, "10.0.0.0/24", 64500, 64501),
		origin(old.Add(5*time.Second), "10.0.1.0/24", 64500, 64502),
		origin(old, "10.0.2.0/24", 64500, 64503),
		peer(old, change.EventPeerDown),
		peer(old.Add(5*time.Second), change.EventPeerUp),
		peer(old, change.EventPeerDown),
	}}
	testenv.WaitFor(t, 20*time.Second, "the events in InfluxDB", func() bool {
		return count(t, in, "meshd", mOrigin, "prefix") >= 2 && count(t, in, "meshd", mSessionEvent, "n") >= 2
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := count(t, in, "meshd", mOrigin, "prefix"); got != 3 {
		t.Errorf("%s points in InfluxDB: %d, want the 3 origin changes sent", mOrigin, got)
	}
	if got := count(t, in, "meshd", mSessionEvent, "n"); got != 3 {
		t.Errorf("%s points in InfluxDB: %d, want the 3 peer events sent", mSessionEvent, got)
	}
}
