package gnmitarget

import (
	"fmt"
	"testing"

	"github.com/meshd/meshd/change"
)

// writes makes n chunks, each a write of leaves per-chunk leaves whose
// keys come from keys (cycling), with one path each.
func writes(n, leaves, keys int) []*chunk {
	var out []*chunk
	k := 0
	for range n {
		evs := make([]event, leaves)
		for i := range evs {
			evs[i] = event{target: "r1", key: fmt.Sprintf("/neighbors/neighbor[neighbor-address=10.0.0.%03d]/state/counter", k), ts: 1}
			k = (k + 1) % keys
		}
		out = append(out, newChunk(evs))
	}
	return out
}

// A queue's estimate of the writes it keeps alive: a chunk counts once
// while any of its leaves is queued and is let go when the last one is
// replaced or drained; past the bound the queue overflows into a
// resynchronisation.
func TestQueueBytes(t *testing.T) {
	one := writes(1, 10, 10)[0].size
	tests := []struct {
		name      string
		chunks    []*chunk
		max       int64
		wantBytes int64
		resync    bool
	}{
		{"one write pinned once for its ten leaves", writes(1, 10, 10), 0, one, false},
		{"a write whose leaves newer ones replaced is let go", writes(5, 10, 10), 0, one, false},
		{"writes of distinct leaves add up", writes(4, 10, 40), 0, 4 * one, false},
		{"past the bound: a resynchronisation, nothing held", writes(4, 10, 40), 3 * one, 0, true},
		{"at the bound: kept", writes(3, 10, 40), 3 * one, 3 * one, false},
		{"replacements stay within it", writes(50, 10, 20), 3 * one, 2 * one, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQueue(1<<16, tt.max)
			for _, c := range tt.chunks {
				q.push(c, nil)
			}
			if q.bytes != tt.wantBytes || q.resync != tt.resync {
				t.Errorf("holds %d bytes (resync %v), want %d (%v)", q.bytes, q.resync, tt.wantBytes, tt.resync)
			}
			out, resync, _ := q.drain(nil)
			if q.bytes != 0 || len(q.pinned) != 0 || resync != tt.resync || (len(out) == 0) != tt.resync {
				t.Errorf("after the drain: %d bytes, %d chunks pinned, %d entries, resync %v", q.bytes, len(q.pinned), len(out), resync)
			}
		})
	}
}

// The estimate is of the right order: a write of a neighbor's leaves
// with OpenConfig's paths is some hundreds of bytes a leaf, not a few
// and not megabytes.
func TestChunkBytesEstimate(t *testing.T) {
	var evs []event
	for i := range 20 {
		p := change.NeighborPath("default", "192.0.2.1", "state", "messages", "received", fmt.Sprint("leaf-", i))
		evs = append(evs, event{target: "router-1", key: change.PathKey(p), path: p, val: change.Uint(uint64(i)), ts: 1})
	}
	c := newChunk(evs)
	per := c.size / int64(len(c.evs))
	if per < 200 || per > 4000 {
		t.Errorf("%d bytes a leaf estimated, want some hundreds", per)
	}
}
