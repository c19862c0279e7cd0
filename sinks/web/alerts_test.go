package web

import (
	"fmt"
	"slices"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
)

// alertLeaf is one leaf of an alert as monitor/alerts writes it.
func alertLeaf(router, id, leaf string, v *gpb.TypedValue) change.Update {
	p := &gpb.Path{Elem: []*gpb.PathElem{{Name: "meshd"}, {Name: "alerts"}, {Name: "alert", Key: map[string]string{"id": id}}}}
	if leaf != "" {
		p.Elem = append(p.Elem, &gpb.PathElem{Name: "state"}, &gpb.PathElem{Name: leaf})
	}
	return up(router, p, v, change.SourceMeshd)
}

func openAlert(router, id, kind string, opened time.Time) []change.Update {
	return []change.Update{
		alertLeaf(router, id, "id", change.String(id)),
		alertLeaf(router, id, "kind", change.String(kind)),
		alertLeaf(router, id, "prefix", change.String("10.0.1.0/24")),
		alertLeaf(router, id, "neighbor", change.String("10.100.1.2")),
		alertLeaf(router, id, "origin-as", change.Uint(65666)),
		alertLeaf(router, id, "opened", change.Uint(uint64(opened.UnixNano()))),
	}
}

// The page's open alerts are the alert leaves the tree holds: an
// opening's leaves add one, the delete of its container clears it, a
// router's resync or removal takes its alerts with it.
func TestOpenAlertsFollowTheTree(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	ids := func(m alertsMsg) []string {
		var out []string
		for _, a := range m.Alerts {
			out = append(out, a.Router+" "+a.ID)
		}
		return out
	}
	tests := []struct {
		name  string
		steps func(s *state)
		want  []string // newest first
	}{
		{"opened", func(s *state) {
			s.Write(openAlert("r1", "origin a", "origin", t0), nil)
			s.Write(openAlert("r2", "sub-prefix b", "sub-prefix", t0.Add(time.Second)), nil)
		}, []string{"r2 sub-prefix b", "r1 origin a"}},
		{"cleared", func(s *state) {
			s.Write(openAlert("r1", "origin a", "origin", t0), nil)
			s.Write(openAlert("r1", "origin c", "origin", t0), nil)
			s.Write([]change.Update{alertLeaf("r1", "origin a", "", nil)}, nil)
		}, []string{"r1 origin c"}},
		{"cleared leaf by leaf, as the merge core tells it", func(s *state) {
			s.Write(openAlert("r1", "origin a", "origin", t0), nil)
			s.Write([]change.Update{alertLeaf("r1", "origin a", "kind", nil), alertLeaf("r1", "origin a", "id", nil)}, nil)
		}, nil},
		{"a router's tree deleted", func(s *state) {
			s.Write(openAlert("r1", "origin a", "origin", t0), nil)
			s.Write(openAlert("r2", "origin a", "origin", t0), nil)
			s.Write([]change.Update{up("r1", &gpb.Path{}, nil, change.SourceMeshd)}, nil)
		}, []string{"r2 origin a"}},
		{"a resync keeps what the tree holds", func(s *state) {
			s.Write(openAlert("r1", "origin a", "origin", t0), nil)
			s.Write(openAlert("r1", "origin b", "origin", t0), nil)
			s.Replace("r1", append(openAlert("r1", "origin b", "origin", t0), established("r1", "default", "10.100.1.2")))
		}, []string{"r1 origin b"}},
		{"other replicas' alerts beside this one's", func(s *state) {
			s.Write(openAlert("r1", "origin a", "origin", t0), nil)
			s.setRemoteAlerts("meshd-2:9100", []Alert{{Router: "r9", ID: "upstream x", Opened: t0.Add(time.Minute).UnixMilli()}})
		}, []string{"r9 upstream x", "r1 origin a"}},
		{"a replica gone takes its alerts", func(s *state) {
			s.Write(openAlert("r1", "origin a", "origin", t0), nil)
			s.setRemoteAlerts("meshd-2:9100", []Alert{{Router: "r9", ID: "upstream x"}})
			s.dropReplica("meshd-2:9100")
		}, []string{"r1 origin a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newState(time.Hour, 10)
			tt.steps(s)
			_, _, got, _ := s.fleet(0, false)
			if !slices.Equal(ids(got), tt.want) || got.Open != len(tt.want) {
				t.Errorf("open alerts %v (%d), want %v", ids(got), got.Open, tt.want)
			}
			d := s.take(0, true)
			if d.alerts == nil || !slices.Equal(ids(*d.alerts), tt.want) {
				t.Errorf("the stream's delta has no alerts %v: %+v", tt.want, d.alerts)
			}
			if d = s.take(0, true); d.alerts != nil {
				t.Errorf("alerts sent again with nothing changed: %+v", d.alerts)
			}
		})
	}
}

// An alert's leaves are read into its fields; a page in local scope
// (another replica asking) gets this replica's alone.
func TestAlertFields(t *testing.T) {
	s := newState(time.Hour, 10)
	opened := time.Unix(1700000000, 123e6)
	s.Write(openAlert("r1", "origin a", "origin", opened), nil)
	s.setRemoteAlerts("meshd-2:9100", []Alert{{Router: "r9", ID: "upstream x"}})
	_, _, local, _ := s.fleet(0, true)
	want := Alert{Router: "r1", ID: "origin a", Kind: "origin", Prefix: "10.0.1.0/24", Neighbor: "10.100.1.2", OriginAS: 65666, Opened: opened.UnixMilli()}
	if len(local.Alerts) != 1 || local.Alerts[0] != want {
		t.Errorf("local alerts %+v, want [%+v]", local.Alerts, want)
	}
}

// A wide hijack opens an alert per route and router: the page is sent
// the newest maxAlerts and the count of all.
func TestAlertsBounded(t *testing.T) {
	s := newState(time.Hour, 10)
	t0 := time.Unix(1700000000, 0)
	for i := range maxAlerts + 20 {
		s.Write(openAlert("r1", fmt.Sprint("origin ", i), "origin", t0.Add(time.Duration(i)*time.Second)), nil)
	}
	_, _, m, _ := s.fleet(0, false)
	if len(m.Alerts) != maxAlerts || m.Open != maxAlerts+20 || m.Alerts[0].ID != fmt.Sprint("origin ", maxAlerts+19) {
		t.Errorf("%d alerts sent of %d, newest %q", len(m.Alerts), m.Open, m.Alerts[0].ID)
	}
}
