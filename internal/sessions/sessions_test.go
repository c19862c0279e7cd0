package sessions

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/merge"
)

func TestBuildFromMergedState(t *testing.T) {
	core, err := merge.New()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	res := core.Apply([]change.Change{
		{Router: "r1", Path: change.NeighborPath("default", "10.100.1.2", "state", "session-state"), Value: change.String("ESTABLISHED"), Time: at, Source: change.SourceBMP},
		{Router: "r1", Path: change.NeighborPath("default", "10.100.1.2", "state", "peer-as"), Value: change.Uint(4200000002), Time: at, Source: change.SourceBMP},
		{Router: "r1", Path: change.MeshdNeighborPath("default", "10.100.1.2", "probe", "state", "rtt-last"), Value: change.Decimal(20150.5, 3), Time: at, Source: change.SourceProbe},
		{Router: "r1", Path: change.MeshdNeighborPath("default", "10.100.1.2", "probe", "state", "hops"), Value: change.Uint(1), Time: at, Source: change.SourceProbe},
		{Router: "r2", Path: change.NeighborPath("blue", "10.9.0.1", "state", "session-state"), Value: change.String("ACTIVE"), Time: at, Source: change.SourceGNMI},
	})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	rows := Build(core.Snapshot(""))
	if len(rows) != 2 {
		t.Fatalf("rows = %+v", rows)
	}
	r := rows[0]
	if r.Router != "r1" || r.PeerAS != 4200000002 || r.State != "ESTABLISHED" || r.RTTus != 20150.5 || r.Hops != 1 || r.Health != "HEALTHY" || r.Sources != "bmp,probe" {
		t.Errorf("row = %+v", r)
	}
	if rows[1].Health != "DOWN" || rows[1].NetworkInstance != "blue" {
		t.Errorf("row = %+v", rows[1])
	}
	var b bytes.Buffer
	WriteTable(&b, rows)
	if !strings.Contains(b.String(), "/20.15") || !strings.Contains(b.String(), "blue/10.9.0.1") {
		t.Errorf("table:\n%s", b.String())
	}
}

// TestFlaps: FLAPS counts the times a session left ESTABLISHED; a
// session just established once has not flapped.
func TestFlaps(t *testing.T) {
	for _, tc := range []struct {
		state string
		tr    uint64
		want  uint64
	}{
		{"ESTABLISHED", 1, 0},
		{"ESTABLISHED", 3, 2},
		{"ACTIVE", 1, 1},
		{"IDLE", 0, 0},
		{"ESTABLISHED", 0, 0},
	} {
		r := Row{Router: "r1", Neighbor: "10.0.0.2", State: tc.state, Transitions: tc.tr}
		if got := r.Flaps(); got != tc.want {
			t.Errorf("%s with %d transitions: flaps %d, want %d", tc.state, tc.tr, got, tc.want)
		}
		var b bytes.Buffer
		WriteTable(&b, []Row{r})
		lines := strings.Split(strings.TrimSpace(b.String()), "\n")
		if f := strings.Fields(lines[1]); len(f) < 5 || f[4] != strconv.FormatUint(tc.want, 10) {
			t.Errorf("%s with %d transitions: table row %q, want FLAPS %d", tc.state, tc.tr, lines[1], tc.want)
		}
	}
}
