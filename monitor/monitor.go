// Package monitor judges the routes meshd's routers hold against the
// operator's watched prefixes (the monitor: section, with the fields
// BGPalerter users know) and keeps the alerts that follow, each opened
// once and cleared, with a reason, when its condition ends:
//
//   - origin: a watched prefix announced by an origin not expected;
//   - sub-prefix: a more-specific of a watched prefix from an origin not
//     expected, or longer than the watch allows;
//   - rpki-invalid: an RPKI-invalid route for a watched prefix or a
//     more-specific of it;
//   - visibility: a watched prefix withdrawn at K (or more) of the places
//     (router, peer, RIB view) that held it (for visibility-settle: a
//     place that had it for seconds while paths were hunted is none);
//   - upstream: the AS next to the origin is not the one learned first (the
//     last seen in the upstream-learn period after the route first came,
//     so that the path hunting of BGP's convergence is not news);
//   - unwatched: a prefix originated by one of the operator's own ASNs
//     that no watch covers.
//
// Every alert but visibility is attributed to the router, peer and RIB
// view whose route raised it; visibility to the place whose withdrawal
// crossed the threshold. It is not safe for concurrent use.
package monitor

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Watch is one watched prefix.
type Watch struct {
	Prefix      netip.Prefix `yaml:"prefix"`
	Description string       `yaml:"description"`
	// ASN are the origins expected (BGPalerter's asn).
	ASN []uint32 `yaml:"asn"`
	// MaxLength allows more-specifics up to it from the expected
	// origins (0: the prefix's own length, none allowed).
	MaxLength int `yaml:"max-length"`
	// IgnoreMorespecifics judges no more-specific of the prefix
	// (BGPalerter's ignoreMorespecifics).
	IgnoreMorespecifics bool `yaml:"ignore-morespecifics"`
	// IgnorePeers are the neighbor addresses whose routes are not judged.
	IgnorePeers []string `yaml:"ignore-peers"`
}

// Config is the monitor: section.
type Config struct {
	Prefixes []Watch `yaml:"prefixes"`
	// OwnASNs are the operator's ASNs: a prefix one of them originates
	// that no watch covers raises an unwatched alert.
	OwnASNs []uint32 `yaml:"own-asns"`
	// VisibilityLoss is K: a watched prefix withdrawn at K or more of the
	// places that announced it raises a visibility alert (default 1).
	VisibilityLoss int `yaml:"visibility-loss"`
	// UpstreamLearn is how long after a place first has a route its
	// upstream is learned rather than judged (default 1m).
	UpstreamLearn time.Duration `yaml:"upstream-learn"`
	// VisibilitySettle is how long a place must hold a watched prefix to
	// count among the places that announced it (default 1m): path
	// hunting hands a prefix to places for seconds.
	VisibilitySettle time.Duration `yaml:"visibility-settle"`
	// Webhook, when its URL is set, is POSTed each alert opening or
	// clearing as JSON.
	Webhook Webhook `yaml:"webhook"`
}

// Webhook is where alerts are POSTed.
type Webhook struct {
	URL string `yaml:"url"`
	// Timeout bounds one POST (default 5s); a failed POST is tried
	// again twice, 1 s and 2 s later, then counted as failed.
	Timeout time.Duration `yaml:"timeout"`
	// Queue bounds the alerts waiting to be POSTed (default 1024); past
	// it they are dropped, counted and logged.
	Queue int `yaml:"queue"`
}

// Enabled reports whether anything is to be watched.
func (c *Config) Enabled() bool { return len(c.Prefixes) > 0 || len(c.OwnASNs) > 0 }

// Validate checks the section.
func (c *Config) Validate() error {
	var errs []error
	for i, w := range c.Prefixes {
		if !w.Prefix.IsValid() {
			errs = append(errs, fmt.Errorf("monitor.prefixes[%d].prefix: required", i))
			continue
		}
		if w.Prefix != w.Prefix.Masked() {
			errs = append(errs, fmt.Errorf("monitor.prefixes[%d].prefix: %s has host bits set", i, w.Prefix))
		}
		if len(w.ASN) == 0 {
			errs = append(errs, fmt.Errorf("monitor.prefixes[%d].asn: %s needs its expected origins", i, w.Prefix))
		}
		if w.MaxLength != 0 && (w.MaxLength < w.Prefix.Bits() || w.MaxLength > w.Prefix.Addr().BitLen()) {
			errs = append(errs, fmt.Errorf("monitor.prefixes[%d].max-length: %d is outside %d-%d", i, w.MaxLength, w.Prefix.Bits(), w.Prefix.Addr().BitLen()))
		}
	}
	if c.VisibilityLoss < 0 {
		errs = append(errs, errors.New("monitor.visibility-loss: must be >= 0"))
	}
	if c.UpstreamLearn < 0 || c.VisibilitySettle < 0 {
		errs = append(errs, errors.New("monitor.upstream-learn, monitor.visibility-settle: must be >= 0"))
	}
	if u := c.Webhook.URL; u != "" {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("monitor.webhook.url: %q is not an http(s) URL", u))
		}
	}
	if c.Webhook.Timeout < 0 || c.Webhook.Queue < 0 {
		errs = append(errs, errors.New("monitor.webhook: timeout and queue must be >= 0"))
	}
	return errors.Join(errs...)
}

// Kind names an alert's kind.
type Kind string

// The kinds.
const (
	Origin      Kind = "origin"
	SubPrefix   Kind = "sub-prefix"
	RPKIInvalid Kind = "rpki-invalid"
	Visibility  Kind = "visibility"
	Upstream    Kind = "upstream"
	Unwatched   Kind = "unwatched"
)

// Place is where a route was seen: a router's RIB view of one peer.
type Place struct {
	Router, NetworkInstance, Neighbor, View string
}

// Route is one announcement or withdrawal as a router reported it.
type Route struct {
	Place
	Prefix   netip.Prefix
	Withdraw bool
	Origin   uint32
	ASPath   string // as BMP decodes it: "64500 64501 {64502,64503}"
	// Invalid is set when RPKI origin validation found the route invalid.
	Invalid bool
	// Time is when the route was seen (zero: learning periods are over).
	Time time.Time
}

// Alert is one open alert.
type Alert struct {
	Kind    Kind
	Watched netip.Prefix // the watch it concerns (none for unwatched)
	Prefix  netip.Prefix // the route's
	Place
	Origin      uint32
	Description string
	Detail      string
}

// Transition is an alert opening (its Detail says why) or clearing, with
// the Reason it cleared.
type Transition struct {
	Alert
	Open   bool
	Reason string
}

type alertKey struct {
	kind            Kind
	watched, prefix netip.Prefix
	place           Place
}

// seen is a place that announced a watched prefix: whether it holds it
// now, since when it held it, and whether it counts (it held it for the
// settle time).
type seen struct {
	holds, counted bool
	since          time.Time
}

// learned is an upstream learned, and when the route was first seen.
type learned struct {
	as    uint32
	first time.Time
}

type routeKey struct {
	place  Place
	prefix netip.Prefix
}

// Monitor keeps the routes' judgement.
type Monitor struct {
	cfg    Config
	open   map[alertKey]Alert
	firstU map[routeKey]learned // the upstream learned per place and prefix
	// announced are the places that announced each watched prefix.
	announced map[netip.Prefix]map[Place]*seen
}

// New returns a monitor of cfg's watches.
func New(cfg Config) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.VisibilityLoss == 0 {
		cfg.VisibilityLoss = 1
	}
	if cfg.UpstreamLearn == 0 {
		cfg.UpstreamLearn = time.Minute
	}
	if cfg.VisibilitySettle == 0 {
		cfg.VisibilitySettle = time.Minute
	}
	// The most specific watch first, so a route finds the nearest.
	slices.SortFunc(cfg.Prefixes, func(a, b Watch) int { return b.Prefix.Bits() - a.Prefix.Bits() })
	return &Monitor{cfg: cfg, open: map[alertKey]Alert{}, firstU: map[routeKey]learned{}, announced: map[netip.Prefix]map[Place]*seen{}}, nil
}

// Open lists the open alerts.
func (m *Monitor) Open() []Alert {
	out := make([]Alert, 0, len(m.open))
	for _, a := range m.open {
		out = append(out, a)
	}
	return out
}

// watchOf finds the nearest watch covering p.
func (m *Monitor) watchOf(p netip.Prefix) (*Watch, bool) {
	for i := range m.cfg.Prefixes {
		w := &m.cfg.Prefixes[i]
		if w.Prefix.Bits() <= p.Bits() && w.Prefix.Contains(p.Addr()) && w.Prefix.Addr().Is4() == p.Addr().Is4() {
			return w, true
		}
	}
	return nil, false
}

func (m *Monitor) set(out []Transition, on bool, a Alert, reason string) []Transition {
	k := alertKey{a.Kind, a.Watched, a.Prefix, a.Place}
	if a.Kind == Visibility {
		k.place = Place{} // one per watched prefix, told where it crossed
	}
	_, was := m.open[k]
	switch {
	case on && !was:
		m.open[k] = a
		return append(out, Transition{Alert: a, Open: true}) // Detail says why
	case on:
		// The latest detail, but where it opened: a visibility alert
		// lives under the router that crossed the threshold, and is
		// cleared there.
		was := m.open[k]
		was.Detail = a.Detail
		m.open[k] = was
	case was:
		a = m.open[k]
		delete(m.open, k)
		return append(out, Transition{Alert: a, Reason: reason})
	}
	return out
}

// Observe judges one route and returns the alerts it opened or cleared.
func (m *Monitor) Observe(r Route) []Transition {
	var out []Transition
	r.Prefix = r.Prefix.Masked()
	rk := routeKey{r.Place, r.Prefix}
	w, watched := m.watchOf(r.Prefix)
	if watched && slices.Contains(w.IgnorePeers, r.Neighbor) {
		return nil
	}
	base := Alert{Prefix: r.Prefix, Place: r.Place, Origin: r.Origin}
	if watched {
		base.Watched, base.Description = w.Prefix, w.Description
	}
	if !watched {
		own := !r.Withdraw && slices.Contains(m.cfg.OwnASNs, r.Origin)
		a := base
		a.Kind, a.Detail = Unwatched, fmt.Sprintf("AS%d originates %s, which no watch covers", r.Origin, r.Prefix)
		reason := "withdrawn"
		if !r.Withdraw {
			reason = fmt.Sprintf("now originated by AS%d", r.Origin)
		}
		return m.set(out, own, a, reason)
	}
	exact := w.Prefix == r.Prefix
	if !exact && w.IgnoreMorespecifics {
		return nil
	}
	expected := slices.Contains(w.ASN, r.Origin)
	reason := "withdrawn"
	if !r.Withdraw {
		reason = "announced again as expected"
	}

	// Origin (the watched prefix itself) or sub-prefix (a more-specific).
	if exact {
		a := base
		a.Kind, a.Detail = Origin, fmt.Sprintf("%s announced by AS%d, expected %s", r.Prefix, r.Origin, asns(w.ASN))
		out = m.set(out, !r.Withdraw && !expected, a, reason)
	} else {
		maxLen := w.MaxLength
		if maxLen == 0 {
			maxLen = w.Prefix.Bits()
		}
		a := base
		a.Kind = SubPrefix
		a.Detail = fmt.Sprintf("%s, more specific than the watched %s, announced by AS%d (expected %s up to /%d)", r.Prefix, w.Prefix, r.Origin, asns(w.ASN), maxLen)
		out = m.set(out, !r.Withdraw && (!expected || r.Prefix.Bits() > maxLen), a, reason)
	}

	// RPKI.
	a := base
	a.Kind, a.Detail = RPKIInvalid, fmt.Sprintf("%s from AS%d is RPKI-invalid", r.Prefix, r.Origin)
	rreason := reason
	if !r.Withdraw {
		rreason = "no longer RPKI-invalid"
	}
	out = m.set(out, !r.Withdraw && r.Invalid, a, rreason)

	// Upstream: the AS next to the origin, against the first seen here.
	if !r.Withdraw {
		up := upstream(r.ASPath, r.Origin)
		l, seen := m.firstU[rk]
		switch {
		case !seen && up != 0:
			l = learned{up, r.Time}
			m.firstU[rk] = l
		case seen && up != 0 && !r.Time.IsZero() && r.Time.Sub(l.first) < m.cfg.UpstreamLearn:
			l.as = up // still learning
			m.firstU[rk] = l
		}
		first := l.as
		a := base
		a.Kind, a.Detail = Upstream, fmt.Sprintf("%s reaches AS%d through AS%d, first seen through AS%d", r.Prefix, r.Origin, up, first)
		out = m.set(out, up != 0 && first != 0 && up != first, a, "back through the first upstream")
	} else {
		a := base
		a.Kind = Upstream
		out = m.set(out, false, a, "withdrawn")
	}

	// Visibility of the watched prefix itself.
	if exact {
		places := m.announced[w.Prefix]
		if places == nil {
			places = map[Place]*seen{}
			m.announced[w.Prefix] = places
		}
		// Places count once they have held the prefix for the settle
		// time: BGP's path hunting after a change hands it to places
		// for seconds, and their withdrawals are no loss of visibility.
		for _, p := range places {
			if p.holds && !p.counted && (r.Time.IsZero() || r.Time.Sub(p.since) >= m.cfg.VisibilitySettle) {
				p.counted = true
			}
		}
		p := places[r.Place]
		switch {
		case r.Withdraw && p != nil && !p.counted:
			delete(places, r.Place)
		case r.Withdraw && p != nil:
			p.holds = false
		case !r.Withdraw && p == nil:
			places[r.Place] = &seen{holds: true, since: r.Time, counted: r.Time.IsZero()}
		case !r.Withdraw && !p.holds:
			p.holds = true // counted already: back where it was
		}
		gone, counted := 0, 0
		for _, p := range places {
			if p.counted {
				counted++
				if !p.holds {
					gone++
				}
			}
		}
		a := Alert{Kind: Visibility, Watched: w.Prefix, Prefix: w.Prefix, Description: w.Description, Place: r.Place}
		a.Detail = fmt.Sprintf("%s withdrawn at %d of the %d places that held it (last: %s %s %s)", w.Prefix, gone, counted, r.Router, r.Neighbor, r.View)
		out = m.set(out, gone >= m.cfg.VisibilityLoss, a, fmt.Sprintf("withdrawn at %d of %d now, under %d", gone, counted, m.cfg.VisibilityLoss))
	}
	return out
}

func asns(as []uint32) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = "AS" + strconv.FormatUint(uint64(a), 10)
	}
	return strings.Join(s, " or ")
}

// upstream is the AS next to the origin in an AS path (prepends of the
// origin skipped); 0 when there is none or it is an AS_SET.
func upstream(path string, origin uint32) uint32 {
	f := strings.Fields(path)
	i := len(f) - 1
	for i >= 0 && f[i] == strconv.FormatUint(uint64(origin), 10) {
		i--
	}
	if i < 0 || strings.ContainsAny(f[i], "{}(),") {
		return 0
	}
	n, err := strconv.ParseUint(f[i], 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}
