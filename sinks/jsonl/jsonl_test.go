package jsonl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openconfig/gnmi/value"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/merge"
	"github.com/meshd/meshd/stage"
)

// build makes the sink the registry holds under "jsonl" from a config
// section, as meshd run does.
func build(t *testing.T, section string, core *merge.Core) (stage.Sink, error) {
	t.Helper()
	i := slices.IndexFunc(stage.Sinks(), func(s stage.SinkInfo) bool { return s.Name == "jsonl" })
	if i < 0 {
		t.Fatal("no sink registered as jsonl")
	}
	env := stage.Env{Registerer: prometheus.NewRegistry(), State: core, Decode: func(name string, v any) (bool, error) {
		if name != "jsonl" || section == "" {
			return false, nil
		}
		return true, yaml.Unmarshal([]byte(section), v)
	}}
	return stage.Sinks()[i].New(env)
}

func readLines(t *testing.T, path string) []line {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // not opened by Run yet
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []line
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// TestRegisteredSinkWritesTheStream builds the sink through the registry,
// feeds it from a real merge core and reads the file back: every leaf the
// core holds is in it with the core's value (the core is the oracle), and
// the events came through in order.
func TestRegisteredSinkWritesTheStream(t *testing.T) {
	core, err := merge.New(merge.WithoutVerdict())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "out.jsonl")
	snk, err := build(t, "path: "+path, core)
	if err != nil || snk == nil {
		t.Fatalf("build: %v, %v", snk, err)
	}
	feed := core.Subscribe("jsonl", 16)
	defer feed.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- snk.Run(ctx, feed) }()

	at := time.Unix(1_700_000_000, 0).UTC()
	np := func(e ...string) *change.Change {
		return &change.Change{Router: "r1", Path: change.NeighborPath("default", "192.0.2.2", e...), Time: at, Source: change.SourceBMP}
	}
	state, as, caps := np("state", "session-state"), np("state", "peer-as"), np("state", "supported-capabilities")
	state.Value, as.Value, caps.Value = change.String("ESTABLISHED"), change.Uint(65002), change.StringList([]string{"MPBGP", "ROUTE_REFRESH"})
	core.Apply([]change.Change{*state, *as, *caps}, change.Event{Time: at, Router: "r1", Kind: change.EventPeerUp, Source: change.SourceBMP,
		NetworkInstance: "default", Neighbor: "192.0.2.2", Fields: map[string]any{"peer_as": int64(65002)}})
	core.Emit(change.Event{Time: at, Router: "r1", Kind: change.EventRoute, Source: change.SourceBMP,
		Route: &change.Route{Action: change.Announce, AfiSafi: "IPV4_UNICAST", RIB: "ADJ_RIB_IN_PRE", Prefix: "198.51.100.0/24", OriginAS: 65002}})

	// Written while running, not only at shutdown.
	deadline := time.Now().Add(10 * time.Second)
	for len(readLines(t, path)) < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s the file has %d lines, want 5", len(readLines(t, path)))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	lines := readLines(t, path)
	got := map[string]line{}
	var events []line
	for _, l := range lines {
		switch l.Type {
		case "update":
			got[l.Path] = l
		case "event":
			events = append(events, l)
		default:
			t.Errorf("unexpected line %+v", l)
		}
	}
	snap := core.Snapshot("r1")
	if len(snap) == 0 || len(got) != len(snap) {
		t.Fatalf("file has %d leaves, the core %d", len(got), len(snap))
	}
	for _, u := range snap {
		k := change.PathKey(u.Path)
		l, ok := got[k]
		if !ok {
			t.Errorf("%s: not in the file", k)
			continue
		}
		want, err := value.ToScalar(u.Value)
		if err != nil {
			t.Fatal(err)
		}
		wj, _ := json.Marshal(want)
		gj, _ := json.Marshal(l.Value)
		if string(wj) != string(gj) || l.Router != "r1" || l.Source != "bmp" || !l.Time.Equal(u.Time) {
			t.Errorf("%s: file has %s (router %s, source %s, time %v), core %s at %v", k, gj, l.Router, l.Source, l.Time, wj, u.Time)
		}
	}
	if len(events) != 2 || events[0].Kind != change.EventPeerUp || events[0].Neighbor != "192.0.2.2" || events[0].Fields["peer_as"] != float64(65002) ||
		events[1].Kind != change.EventRoute || events[1].Route == nil || events[1].Route.Prefix != "198.51.100.0/24" || events[1].Route.Action != change.Announce {
		t.Errorf("events = %+v", events)
	}
}

// TestLostBatchesAreSaid: a feed that overflowed says so in the file.
func TestLostBatchesAreSaid(t *testing.T) {
	core, err := merge.New(merge.WithoutVerdict())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "out.jsonl")
	snk, err := build(t, "path: "+path, core)
	if err != nil {
		t.Fatal(err)
	}
	feed := core.Subscribe("jsonl", 1)
	defer feed.Close()
	for i := range 3 { // the queue holds one: two are dropped
		core.Emit(change.Event{Router: "r1", Kind: change.EventStats, Fields: map[string]any{"n": int64(i)}})
	}
	core.Emit(change.Event{Router: "r1", Kind: change.EventStats}) // dropped too, its loss told with the next
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- snk.Run(ctx, feed) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(readLines(t, path)) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("nothing written in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	core.Emit(change.Event{Router: "r1", Kind: change.EventStats})
	deadline = time.Now().Add(10 * time.Second)
	for len(readLines(t, path)) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("lines = %+v, want event, lost, event", readLines(t, path))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	lines := readLines(t, path)
	if lines[1].Type != "lost" || lines[1].Count != feed.Dropped() || feed.Dropped() != 3 {
		t.Errorf("lines = %+v, dropped %d; want a lost line with the feed's count 3", lines, feed.Dropped())
	}
}

// TestConfig: no section, no sink; a section without a path is refused
// by name.
func TestConfig(t *testing.T) {
	core, err := merge.New(merge.WithoutVerdict())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, section string
		wantSink      bool
		wantErr       string
	}{
		{name: "absent"},
		{name: "no path", section: "{}", wantErr: "sinks.jsonl.path: required"},
		{name: "file", section: "path: x.jsonl", wantSink: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snk, err := build(t, tc.section, core)
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if (snk != nil) != tc.wantSink {
				t.Fatalf("sink = %v, want one: %v", snk, tc.wantSink)
			}
		})
	}
}
