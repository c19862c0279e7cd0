package netlab

import (
	"os"
	"path/filepath"
	"testing"
)

func readMeshdFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "verify", "meshd", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// /api/sessions as a lab's meshd served it (testdata/verify/meshd): its
// one prefix count per session is what verify compares.
func TestApplyAPI(t *testing.T) {
	v := MeshdView{}
	if err := ApplyAPI(v, readMeshdFixture(t, "api-sessions.json")); err != nil {
		t.Fatal(err)
	}
	s := v[SessionKey{"r1", "10.100.1.2"}]
	if s == nil {
		t.Fatal("no r1 10.100.1.2")
	}
	got := [4]string{numStr(s.PeerAS), numStr(s.Transitions), numStr(s.PrefixesTotal), ""}
	got[3], _ = ptrStr(s.State)
	if want := [4]string{"4200000002", "1", "7", "ESTABLISHED"}; got != want {
		t.Errorf("r1 10.100.1.2: %v, want %v", got, want)
	}
	// BIRD's end (r3): the probe's row has no state.
	if s := v[SessionKey{"r3", "10.100.2.1"}]; s == nil || s.State != nil {
		t.Errorf("r3 10.100.2.1: %+v, want a row without state", s)
	}
	if err := ApplyAPI(MeshdView{}, []byte(`{"router":"r1"}`)); err == nil {
		t.Error("an answer that is not a list of rows was accepted")
	}
}
