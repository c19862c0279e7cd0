package influx

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// kind is a field's one type, fixed per measurement and field forever.
type kind uint8

const (
	kInt kind = iota + 1
	kFloat
	kString
	kBool
)

func (k kind) String() string {
	switch k {
	case kInt:
		return "integer"
	case kFloat:
		return "float"
	case kString:
		return "string"
	case kBool:
		return "boolean"
	}
	return "?"
}

// value is a typed field value.
type value struct {
	k kind
	i int64
	f float64
	s string
	b bool
}

func intV(i int64) value     { return value{k: kInt, i: i} }
func floatV(f float64) value { return value{k: kFloat, f: f} }
func strV(s string) value    { return value{k: kString, s: s} }
func boolV(b bool) value     { return value{k: kBool, b: b} }

type tag struct{ k, v string }

type field struct {
	k string
	v value
}

// point is one line before encoding. Tags and fields are sorted by key
// when encoded.
type point struct {
	meas   string
	tags   []tag
	fields []field
	ts     int64 // ns since the epoch
}

// encoder turns points into line protocol and keeps every series'
// timestamps strictly increasing (see uniqueTime).
type encoder struct {
	// series key -> the timestamps written. A pointer value lets the
	// hot path update an entry without allocating the key again.
	last map[string]*stamps
	// timeline is scratch for a series key without its action tag.
	timeline []byte
}

func newEncoder() *encoder { return &encoder{last: map[string]*stamps{}} }

// stamps are a series' timestamps as written: the greatest, and the
// previous point's.
type stamps struct{ max, prev int64 }

// collisionWindow is how far back a timestamp may be and still be moved
// forward to stay unique in its series. Within a burst many points share
// a timestamp (a BMP message carries one for all its routes); InfluxDB
// would merge them into one point, so each is moved 1 ns past the
// previous one. Older, out-of-order points keep their time.
const collisionWindow = int64(1e9)

// uniqueTime returns ts, moved past the last timestamp of the series when
// it would collide with it.
func (e *encoder) uniqueTime(series []byte, ts int64) int64 {
	return bump(e.lastOf(series), ts)
}

// timelineKey is the key whose timestamps are kept unique for p: its
// series key, less the action tag. A route's announces and withdraws are
// two series (action is a tag), yet one timeline: a withdraw and a
// re-announce carrying one BMP timestamp would otherwise land at the
// same nanosecond in two series, and no query could tell which came last.
func (e *encoder) timelineKey(series []byte, p *point) (key []byte, route bool) {
	i := slices.IndexFunc(p.tags, func(t tag) bool { return t.k == "action" })
	if i < 0 {
		return series, false
	}
	e.timeline = appendEscaped(e.timeline[:0], p.meas, measEsc)
	for j, t := range p.tags {
		if j == i || t.v == "" {
			continue
		}
		e.timeline = append(e.timeline, ',')
		e.timeline = appendEscaped(e.timeline, t.k, keyEsc)
		e.timeline = append(e.timeline, '=')
		e.timeline = appendEscaped(e.timeline, t.v, keyEsc)
	}
	return e.timeline, true
}

// lastOf returns the series' timestamps cell, creating it unset.
func (e *encoder) lastOf(series []byte) *stamps {
	last := e.last[string(series)] // no allocation for the lookup
	if last == nil {
		last = &stamps{unset, unset}
		e.last[string(series)] = last
	}
	return last
}

// unset marks a series with no point yet.
const unset = math.MinInt64

// bump moves ts past the series' greatest or previous timestamp when it
// would collide with it, and records it.
//
// The previous one matters once a source's clock has stepped back: the
// greatest is then far ahead (an hour, in the soak's clock row), every
// new point is "older, out of order" and kept its time, and the points
// of one burst, sharing a timestamp, overwrote one another in InfluxDB
// (13,000 of 28,000 in that row) until the clock caught up. Held to the
// previous point, a burst after the step is spread 1 ns apart as before
// it; held to the greatest too, a point that comes back to a time
// already written just before (10 s, 8 s, 10 s) still moves.
func bump(last *stamps, ts int64) int64 {
	if last.max == unset {
		last.max, last.prev = ts, ts
		return ts
	}
	switch {
	case ts <= last.max && last.max-ts < collisionWindow:
		ts = last.max + 1
	case ts <= last.prev && last.prev-ts < collisionWindow:
		ts = last.prev + 1
	}
	last.max, last.prev = max(last.max, ts), ts
	return ts
}

// occurrences are the measurements whose every point is an event of its
// own, never a value stated again: like a route timeline, each is kept
// unique in its series in the order it came (bumpInOrder). With bump, an
// event stamped further back than collisionWindow kept its time and
// replaced the event already stored at it: routers stamp BMP messages
// with a route's age (FRR does), so two origin changes a minute apart
// could both carry one old time, and InfluxDB held only the second.
var occurrences = map[string]bool{mSessionEvent: true, mMessage: true, mOrigin: true, mRouterEvent: true, mRPKIChange: true, mAlert: true}

// bumpInOrder keeps a route timeline's timestamps in the order its points
// come: ts, or 1 ns past the timeline's last when it is not later. The
// last action per route in InfluxDB must be the last one the router
// sent, and routers stamp routes coarsely or by their age (gobgpd to the
// second, FRR with the route's age), so a withdraw and the re-announce
// after it can carry one time, or the later event an earlier one. BMP
// is ordered (one TCP stream a router), so arrival order is the truth;
// a point moves at most as far as the stamps were out of order.
func bumpInOrder(last *stamps, ts int64) int64 {
	if last.max != unset && ts <= last.max {
		ts = last.max + 1
	}
	last.max, last.prev = ts, ts
	return ts
}

// forget drops the series memory (it grows with the series count, which
// the schema bounds, but a long-running sink trims it now and then).
func (e *encoder) forget() { clear(e.last) }

// appendSeriesKey encodes the measurement and tags of p (sorted).
func appendSeriesKey(dst []byte, p *point) []byte {
	sortTags(p.tags)
	dst = appendEscaped(dst, p.meas, measEsc)
	for _, t := range p.tags {
		if t.v == "" {
			continue
		}
		dst = append(dst, ',')
		dst = appendEscaped(dst, t.k, keyEsc)
		dst = append(dst, '=')
		dst = appendEscaped(dst, t.v, keyEsc)
	}
	return dst
}

// appendPoint encodes p as one line (with '\n') onto dst. A point
// without fields is skipped.
func (e *encoder) appendPoint(dst []byte, p *point) ([]byte, bool) {
	if len(p.fields) == 0 {
		return dst, false
	}
	sortFields(p.fields)
	start := len(dst)
	dst = appendSeriesKey(dst, p)
	var ts int64
	if tl, route := e.timelineKey(dst[start:], p); route || occurrences[p.meas] {
		ts = bumpInOrder(e.lastOf(tl), p.ts)
	} else {
		ts = e.uniqueTime(tl, p.ts)
	}
	dst = append(dst, ' ')
	for i, f := range p.fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendEscaped(dst, f.k, keyEsc)
		dst = appendValue(dst, f.v)
	}
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, ts, 10)
	return append(dst, '\n'), true
}

// appendValue encodes "=value" of a field.
func appendValue(dst []byte, v value) []byte {
	dst = append(dst, '=')
	switch v.k {
	case kInt:
		dst = strconv.AppendInt(dst, v.i, 10)
		return append(dst, 'i')
	case kFloat:
		return strconv.AppendFloat(dst, v.f, 'g', -1, 64)
	case kBool:
		return strconv.AppendBool(dst, v.b)
	}
	dst = append(dst, '"')
	dst = appendEscaped(dst, v.s, strEsc)
	return append(dst, '"')
}

type escaper uint8

const (
	measEsc escaper = iota // comma, space
	keyEsc                 // comma, equals, space
	strEsc                 // double quote, backslash
)

// needsEscape marks, per escaper, the bytes that appendEscaped rewrites.
// Most tag values and strings (addresses, AS paths, enum names) have
// none, and then they are copied whole.
var needsEscape = func() (t [3][256]bool) {
	for _, c := range []byte{'\n', '\r', '\\'} {
		t[measEsc][c], t[keyEsc][c], t[strEsc][c] = true, true, true
	}
	t[measEsc][','], t[measEsc][' '] = true, true
	t[keyEsc][','], t[keyEsc][' '], t[keyEsc]['='] = true, true, true
	t[strEsc]['"'] = true
	return t
}()

func appendEscaped(dst []byte, s string, how escaper) []byte {
	tab := &needsEscape[how]
	clean := true
	for i := 0; i < len(s); i++ {
		if tab[s[i]] {
			clean = false
			break
		}
	}
	if clean {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\n' || c == '\r':
			// Line protocol has no newline escape; a newline would end
			// the point. Keep the text readable instead.
			if how == strEsc {
				dst = append(dst, '\\', 'n')
			} else {
				dst = append(dst, ' ')
			}
			continue
		case how == strEsc && (c == '"' || c == '\\'):
			dst = append(dst, '\\')
		case how != strEsc && (c == ',' || c == ' '):
			dst = append(dst, '\\')
		case how == keyEsc && c == '=':
			dst = append(dst, '\\')
		case how != strEsc && c == '\\' && i == len(s)-1:
			// A trailing backslash would escape the separator after it.
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return dst
}

func sortTags(ts []tag) {
	cmp := func(a, b tag) int { return strings.Compare(a.k, b.k) }
	if !slices.IsSortedFunc(ts, cmp) {
		slices.SortFunc(ts, cmp)
	}
}

func sortFields(fs []field) {
	cmp := func(a, b field) int { return strings.Compare(a.k, b.k) }
	if !slices.IsSortedFunc(fs, cmp) {
		slices.SortFunc(fs, cmp)
	}
}

// clampUint turns a uint64 counter into an int64 field; values past
// MaxInt64 are clamped and reported.
func clampUint(u uint64) (int64, bool) {
	if u > math.MaxInt64 {
		return math.MaxInt64, true
	}
	return int64(u), false
}

// fieldName turns a YANG leaf name into a field key: lower snake case.
func fieldName(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, "-", "_"))
}
