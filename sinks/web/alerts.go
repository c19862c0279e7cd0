package web

import (
	"slices"
	"strings"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
)

// Alert is an open route alert as the page shows it. The page reads it
// from the alert's leaves under its router (/meshd/alerts/alert[id]), as
// the gNMI target serves them, not from the alert events: after a resync
// or a page's first load the tree is what holds the open ones.
type Alert struct {
	Router          string `json:"router"`
	ID              string `json:"id"`
	Kind            string `json:"kind,omitempty"`
	WatchedPrefix   string `json:"watched_prefix,omitempty"`
	Prefix          string `json:"prefix,omitempty"`
	NetworkInstance string `json:"network_instance,omitempty"`
	Neighbor        string `json:"neighbor,omitempty"`
	RIB             string `json:"rib,omitempty"`
	OriginAS        uint64 `json:"origin_as,omitempty"`
	Description     string `json:"description,omitempty"`
	Detail          string `json:"detail,omitempty"`
	// Opened is when the alert opened (Unix ms).
	Opened int64 `json:"opened_ms,omitempty"`
	// Replica is the replica that holds it, when another one.
	Replica string `json:"replica,omitempty"`
}

// maxAlerts bounds the open alerts a page is sent: a wide hijack can open
// one per route and router, and the page lists the newest and counts the
// rest.
const maxAlerts = 500

// alertOf tells whether a path is in meshd's alert container and, when
// it names one alert, which.
func alertOf(p *gpb.Path) (id string, below []*gpb.PathElem, ok bool) {
	el := p.GetElem()
	if len(el) < 2 || el[0].GetName() != "meshd" || el[1].GetName() != "alerts" {
		return "", nil, false
	}
	if len(el) < 3 {
		return "", nil, true
	}
	return el[2].GetKey()["id"], el[3:], true
}

// applyAlert applies one update of the alert container; s.mu is held.
func (s *state) applyAlert(router string, u *change.Update, id string, below []*gpb.PathElem) {
	held := s.alerts[router]
	if u.Value == nil {
		// An alert is written whole and cleared whole: the merge core
		// tells a cleared alert as deletes of its leaves, and the first
		// of them clears it here.
		if id == "" {
			delete(s.alerts, router)
		} else {
			delete(held, id)
		}
		s.alertsDirty = true
		return
	}
	if id == "" || len(below) != 2 || below[0].GetName() != "state" {
		return
	}
	if held == nil {
		held = map[string]*Alert{}
		s.alerts[router] = held
	}
	a := held[id]
	if a == nil {
		a = &Alert{Router: router, ID: id}
		held[id] = a
	}
	v := u.Value
	switch below[1].GetName() {
	case "kind":
		a.Kind = v.GetStringVal()
	case "watched-prefix":
		a.WatchedPrefix = v.GetStringVal()
	case "prefix":
		a.Prefix = v.GetStringVal()
	case "network-instance":
		a.NetworkInstance = v.GetStringVal()
	case "neighbor":
		a.Neighbor = v.GetStringVal()
	case "rib":
		a.RIB = v.GetStringVal()
	case "origin-as":
		a.OriginAS = v.GetUintVal()
	case "description":
		a.Description = v.GetStringVal()
	case "detail":
		a.Detail = v.GetStringVal()
	case "opened":
		a.Opened = time.Duration(v.GetUintVal()).Milliseconds()
	default:
		return
	}
	s.alertsDirty = true
}

// alertList is the open alerts, newest first, at most maxAlerts of them,
// and how many are open in all: this replica's alone with local; s.mu is
// held.
func (s *state) alertList(local bool) ([]Alert, int) {
	out := []Alert{}
	for _, held := range s.alerts {
		for _, a := range held {
			out = append(out, *a)
		}
	}
	if !local {
		for _, list := range s.remoteAlerts {
			out = append(out, list...)
		}
	}
	slices.SortFunc(out, func(a, b Alert) int {
		if a.Opened != b.Opened {
			return int(b.Opened - a.Opened)
		}
		if c := strings.Compare(a.Router, b.Router); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	n := len(out)
	return out[:min(n, maxAlerts)], n
}

// alertsMsg is the alerts part of the stream: the list, newest first,
// and the count of all open.
type alertsMsg struct {
	Alerts []Alert `json:"alerts"`
	Open   int     `json:"open"`
}

func (s *state) alertsMsg(local bool) alertsMsg {
	l, n := s.alertList(local)
	return alertsMsg{Alerts: l, Open: n}
}

// setRemoteAlerts takes another replica's open alerts (all of them).
func (s *state) setRemoteAlerts(peer string, list []Alert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range list {
		list[i].Replica = peer
	}
	s.remoteAlerts[peer] = list
	s.alertsDirty = true
	s.poke()
}
