package stage

import (
	"context"
	"testing"
)

type nopSink struct{}

func (nopSink) Run(context.Context, Feed) error { return nil }

// TestRegistry: registrations come back sorted by name, and a name taken
// twice (by a source and a sink alike) or a registration without New
// panics at init rather than leaving one of the two unbuilt.
func TestRegistry(t *testing.T) {
	// An empty registry for this test, the process's back after it.
	reg.mu.Lock()
	sources, sinks := reg.sources, reg.sinks
	reg.sources, reg.sinks = nil, nil
	reg.mu.Unlock()
	t.Cleanup(func() {
		reg.mu.Lock()
		reg.sources, reg.sinks = sources, sinks
		reg.mu.Unlock()
	})
	newSink := func(Env) (Sink, error) { return nopSink{}, nil }
	RegisterSink(SinkInfo{Name: "test-b", New: newSink})
	RegisterSink(SinkInfo{Name: "test-a", New: newSink, Keys: true})
	var names []string
	for _, s := range Sinks() {
		names = append(names, s.Name)
	}
	if len(names) != 2 || names[0] != "test-a" || names[1] != "test-b" || !Sinks()[0].Keys {
		t.Fatalf("Sinks() = %v", Sinks())
	}
	for _, tc := range []struct {
		name string
		reg  func()
	}{
		{"sink twice", func() { RegisterSink(SinkInfo{Name: "test-a", New: newSink}) }},
		{"source named like a sink", func() {
			RegisterSource(SourceInfo{Name: "test-b", New: func(Env) (Source, error) { return nil, nil }})
		}},
		{"no New", func() { RegisterSink(SinkInfo{Name: "test-c"}) }},
		{"no name", func() { RegisterSink(SinkInfo{New: newSink}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tc.reg()
		})
	}
	if len(Sinks()) != 2 || len(Sources()) != 0 {
		t.Errorf("a refused registration was kept: %v %v", Sinks(), Sources())
	}
}
