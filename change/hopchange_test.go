package change

import (
	"reflect"
	"testing"
	"time"
)

func TestHopChangeEvent(t *testing.T) {
	t0 := time.Unix(1700000000, 5)
	tests := []struct {
		name string
		in   HopChange
		want Event
	}{
		{
			name: "merge core: hop counts only",
			in:   HopChange{Time: t0, Router: "r1", NetworkInstance: "default", Neighbor: "10.0.0.2", Source: SourceProbe, OldHops: 0, NewHops: 1},
			want: Event{Time: t0, Router: "r1", NetworkInstance: "default", Neighbor: "10.0.0.2", Kind: EventHopChange, Source: SourceProbe,
				Fields: map[string]any{"old_hops": int64(0), "new_hops": int64(1)}},
		},
		{
			name: "probe: local address and TTLs",
			in: HopChange{Time: t0, Router: "r1", NetworkInstance: "blue", Neighbor: "fd00::2", Source: SourceProbe,
				OldHops: 1, NewHops: 2, Local: "fd00::1", OldTTL: 64, NewTTL: 63},
			want: Event{Time: t0, Router: "r1", NetworkInstance: "blue", Neighbor: "fd00::2", Kind: EventHopChange, Source: SourceProbe,
				Fields: map[string]any{"old_hops": int64(1), "new_hops": int64(2), "local": "fd00::1", "old_ttl": int64(64), "new_ttl": int64(63)}},
		},
		{
			name: "hops fall, TTL 255 initial",
			in: HopChange{Time: t0, Router: "r2", Neighbor: "192.0.2.1", Source: SourceGNMI,
				OldHops: 3, NewHops: 1, Local: "192.0.2.2", OldTTL: 253, NewTTL: 255},
			want: Event{Time: t0, Router: "r2", Neighbor: "192.0.2.1", Kind: EventHopChange, Source: SourceGNMI,
				Fields: map[string]any{"old_hops": int64(3), "new_hops": int64(1), "local": "192.0.2.2", "old_ttl": int64(253), "new_ttl": int64(255)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.Event(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Event() = %+v, want %+v", got, tt.want)
			}
		})
	}
}
