package bmpbridge

import "log/slog"

// Standby sessions. A router may send its BMP to several replicas of a
// cluster (FRR takes more than one BMP target), or to its owner and to
// another replica that relays it: the owner then gets one session of the
// router per path. Applying both would count every peer's transitions
// and every route event twice, and the end of either would mark the
// router's BMP data gone while the other still flows. So the first
// session is the router's, and a session on another path is held as a
// standby: read, its messages counted, nothing applied. When the
// router's last applied session ends, its standbys are ended too: the
// router connects again on each path and sends its tables afresh, and
// the first session back is the router's, whole from its first message.
// A second session on the same path is a reconnect (the old one not yet
// noticed dead), as without a cluster: both apply, as before.

// holdAsStandby makes the session a standby when its router already has
// applied sessions on another path; under the router's lock.
func (s *session) holdAsStandby() bool {
	r := s.r
	if r.sessions == 0 || r.activePath == s.relay {
		return false
	}
	s.standby = true
	if r.standbys == nil {
		r.standbys = map[*session]struct{}{}
	}
	r.standbys[s] = struct{}{}
	s.b.m.standby.Inc()
	s.log.Info("BMP session held as standby: the router has a session on another path; this one is read and not applied until that one ends",
		slog.String("path", pathName(s.relay)), slog.String("active_path", pathName(r.activePath)))
	return true
}

// endStandby ends a standby session's bookkeeping.
func (s *session) endStandby() {
	s.r.mu.Lock()
	delete(s.r.standbys, s)
	s.r.mu.Unlock()
	s.b.m.standby.Dec()
	s.log.Info("BMP standby session down", slog.Uint64("messages", s.msgs))
}

// endStandbys closes the router's standby sessions once its last applied
// one has ended; under the router's lock.
func (s *session) endStandbys() {
	if len(s.r.standbys) == 0 {
		return
	}
	s.log.Info("the router's applied BMP session ended: ending its standby sessions, so that it connects again and one becomes its session with its full tables",
		slog.Int("standbys", len(s.r.standbys)))
	for sb := range s.r.standbys {
		sb.conn.Close()
	}
}

func pathName(relay string) string {
	if relay == "" {
		return "direct"
	}
	return "relayed by " + relay
}
