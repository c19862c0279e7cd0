// Package sessions renders the merged state as one row per BGP session,
// the operator's table behind `meshd lab up`, `meshd status` and the
// /api/sessions endpoint.
package sessions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/stage"
)

// Row is one session as meshd sees it.
type Row struct {
	Router          string  `json:"router"`
	NetworkInstance string  `json:"network_instance"`
	Neighbor        string  `json:"neighbor"`
	PeerAS          uint64  `json:"peer_as,omitempty"`
	State           string  `json:"session_state,omitempty"`
	Transitions     uint64  `json:"established_transitions,omitempty"`
	RTTus           float64 `json:"rtt_us,omitempty"`
	RTTMinUS        float64 `json:"rtt_min_us,omitempty"`
	RTTP50US        float64 `json:"rtt_p50_us,omitempty"`
	RTTP99US        float64 `json:"rtt_p99_us,omitempty"`
	JitterUS        float64 `json:"jitter_us,omitempty"`
	Hops            uint64  `json:"hops,omitempty"`
	Losses          uint64  `json:"losses,omitempty"`
	// Prefixes is OpenConfig's prefixes/received summed over the
	// session's AFI-SAFIs: the routes that passed import policy, what
	// gobgp calls accepted and FRR PfxRcd. Never a sum of different leaves.
	Prefixes uint64 `json:"prefixes_received,omitempty"`
	// AfiSafis holds each AFI-SAFI's prefix counters, each only when a
	// source reported it (a zero is a zero, not a missing leaf).
	AfiSafis map[string]PrefixCounts `json:"afi_safis,omitempty"`
	Health   string                  `json:"health,omitempty"`
	Reason   string                  `json:"reason,omitempty"`
	Sources  string                  `json:"sources,omitempty"`
	// RPKIInvalid counts the session's routes RPKI finds invalid (by
	// origin or by length) in the post-policy Adj-RIB-In BMP reports, or
	// in the pre-policy one for a router that sends no post-policy view:
	// one view, never the two added. RPKIInvalidPre is the pre-policy
	// view's. Nil when meshd validates no routes of the session.
	RPKIInvalid    *uint64 `json:"rpki_invalid,omitempty"`
	RPKIInvalidPre *uint64 `json:"rpki_invalid_pre_policy,omitempty"`
	// rpki holds the counts behind them: [pre, post][origin, length].
	rpki    [2][2]uint64
	rpkiHas [2]bool
}

// PrefixCounts are one AFI-SAFI's OpenConfig prefix counters. Received
// is post-policy (gobgp's "accepted"); ReceivedPrePolicy is what the
// neighbor sent before import policy (gobgp's "received").
type PrefixCounts struct {
	Received          *uint64 `json:"received,omitempty"`
	ReceivedPrePolicy *uint64 `json:"received_pre_policy,omitempty"`
	Sent              *uint64 `json:"sent,omitempty"`
	Installed         *uint64 `json:"installed,omitempty"`
}

// total sums one counter over AFI-SAFIs; ok is false when no AFI-SAFI
// reported it.
func total(m map[string]PrefixCounts, leaf func(PrefixCounts) *uint64) (n uint64, ok bool) {
	for _, c := range m {
		if v := leaf(c); v != nil {
			n += *v
			ok = true
		}
	}
	return n, ok
}

// Build turns a snapshot of leaves into rows, sorted.
func Build(ups []change.Update) []Row {
	type key struct{ r, ni, a string }
	rows := map[key]*Row{}
	for _, u := range ups {
		ni, addr, rest, ok := change.NeighborOf(u.Path)
		if !ok || len(rest) == 0 {
			continue
		}
		k := key{u.Router, ni, addr}
		row := rows[k]
		if row == nil {
			row = &Row{Router: u.Router, NetworkInstance: ni, Neighbor: addr}
			rows[k] = row
		}
		row.Apply(rest, u.Value)
	}
	out := make([]Row, 0, len(rows))
	for _, r := range rows {
		if r.Session() {
			out = append(out, *r)
		}
	}
	sortRows(out)
	return out
}

// sortRows orders rows by router, network instance and neighbor.
func sortRows(out []Row) {
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Router != b.Router {
			return a.Router < b.Router
		}
		if a.NetworkInstance != b.NetworkInstance {
			return a.NetworkInstance < b.NetworkInstance
		}
		return a.Neighbor < b.Neighbor
	})
}

// appendNames appends the elements' names joined by "/".
func appendNames(dst []byte, elems []*gnmi.PathElem) []byte {
	for i, e := range elems {
		if i > 0 {
			dst = append(dst, '/')
		}
		dst = append(dst, e.GetName()...)
	}
	return dst
}

// Leaf reports whether a leaf's name (the last element of its path) is
// one a row may show: a cheap test before the path is read whole.
func Leaf(name string) bool { return rowLeaves[name] }

var rowLeaves = map[string]bool{
	"peer-as": true, "session-state": true, "established-transitions": true,
	"rtt-last": true, "rtt-min": true, "rtt-p50": true, "rtt-p99": true, "jitter": true, "hops": true, "losses": true,
	"health": true, "reason": true, "sources": true,
	"received": true, "received-pre-policy": true, "sent": true, "installed": true,
	"rpki-invalid-origin": true, "rpki-invalid-length": true,
}

func num(v *gnmi.TypedValue) float64 {
	switch x := v.GetValue().(type) {
	case *gnmi.TypedValue_UintVal:
		return float64(x.UintVal)
	case *gnmi.TypedValue_IntVal:
		return float64(x.IntVal)
	case *gnmi.TypedValue_DoubleVal:
		return x.DoubleVal
	case *gnmi.TypedValue_FloatVal:
		return float64(x.FloatVal)
	case *gnmi.TypedValue_DecimalVal:
		// One division by an exact power of ten gives the double nearest
		// the decimal, which JSON then prints with no more digits than
		// the model's fraction-digits; dividing by 10 a digit at a time
		// printed 244.30599999999998 for 244.306.
		return float64(x.DecimalVal.GetDigits()) / math.Pow10(int(x.DecimalVal.GetPrecision()))
	}
	return 0
}

// micros reads a time in µs at the model's precision (decimal64 with 3
// fraction digits), whatever type a source sent it as: a double carries
// binary noise a nanosecond cannot have.
func micros(v *gnmi.TypedValue) float64 {
	return math.Round(num(v)*1000) / 1000
}

// Session reports whether a row is a BGP session: one with no session
// state, peer AS or probe data is not (BMP's Loc-RIB pseudo-peers, for
// one).
func (r *Row) Session() bool { return r.State != "" || r.PeerAS != 0 || r.RTTus != 0 }

// Apply sets the row's field for one leaf below the neighbor (rest is
// the path below it); a nil v clears it. It reports whether the leaf is
// one of the row's: the others (message counters, timers...) are ignored.
func (r *Row) Apply(rest []*gnmi.PathElem, v *gnmi.TypedValue) bool {
	if !r.apply(rest, v) {
		return false
	}
	r.Prefixes, _ = total(r.AfiSafis, func(c PrefixCounts) *uint64 { return c.Received })
	return true
}

func (r *Row) apply(rest []*gnmi.PathElem, v *gnmi.TypedValue) bool {
	var buf [96]byte
	b := appendNames(buf[:0], rest)
	// A switch on string(b) compares without making the string.
	switch string(b) {
	case "state/peer-as":
		r.PeerAS = uint64(num(v))
	case "state/session-state":
		r.State = v.GetStringVal()
	case "state/established-transitions":
		r.Transitions = uint64(num(v))
	case "probe/state/rtt-last":
		r.RTTus = micros(v)
	case "probe/state/rtt-min":
		r.RTTMinUS = micros(v)
	case "probe/state/rtt-p50":
		r.RTTP50US = micros(v)
	case "probe/state/rtt-p99":
		r.RTTP99US = micros(v)
	case "probe/state/jitter":
		r.JitterUS = micros(v)
	case "probe/state/hops":
		r.Hops = uint64(num(v))
	case "probe/state/losses":
		r.Losses = uint64(num(v))
	case "verdict/state/health":
		r.Health = v.GetStringVal()
	case "verdict/state/reason":
		r.Reason = v.GetStringVal()
	case "verdict/state/sources":
		var s []string
		for _, e := range v.GetLeaflistVal().GetElement() {
			s = append(s, e.GetStringVal())
		}
		r.Sources = strings.Join(s, ",")
	case "bmp/ribs/rib/state/rpki-invalid-origin", "bmp/ribs/rib/state/rpki-invalid-length":
		return r.applyRPKI(rest, v)
	default:
		const pfx = "afi-safis/afi-safi/state/prefixes/"
		if !bytes.HasPrefix(b, []byte(pfx)) || len(rest) < 2 {
			return false
		}
		afi := rest[1].GetKey()["afi-safi-name"]
		c := r.AfiSafis[afi]
		var n *uint64
		if v != nil {
			x := uint64(num(v))
			n = &x
		}
		switch string(b[len(pfx):]) {
		case "received":
			c.Received = n
		case "received-pre-policy":
			c.ReceivedPrePolicy = n
		case "sent":
			c.Sent = n
		case "installed":
			c.Installed = n
		default:
			return false
		}
		if r.AfiSafis == nil {
			r.AfiSafis = map[string]PrefixCounts{}
		}
		r.AfiSafis[afi] = c
	}
	return true
}

// applyRPKI takes one RIB view's count of invalid routes; views other
// than the Adj-RIB-In's are not the session's routes received.
func (r *Row) applyRPKI(rest []*gnmi.PathElem, v *gnmi.TypedValue) bool {
	var i int
	switch rest[2].GetKey()["view"] {
	case "ADJ_RIB_IN_PRE":
		i = 0
	case "ADJ_RIB_IN_POST":
		i = 1
	default:
		return false
	}
	j := 0
	if rest[len(rest)-1].GetName() == "rpki-invalid-length" {
		j = 1
	}
	if v == nil {
		r.rpki[i][j] = 0
	} else {
		r.rpki[i][j] = uint64(num(v))
		r.rpkiHas[i] = true
	}
	// New pointers each time: a copy of the row handed out before keeps
	// the counts it was made with.
	count := func(i int) *uint64 {
		if !r.rpkiHas[i] {
			return nil
		}
		n := r.rpki[i][0] + r.rpki[i][1]
		return &n
	}
	r.RPKIInvalidPre = count(0)
	if r.RPKIInvalid = count(1); r.RPKIInvalid == nil {
		r.RPKIInvalid = count(0)
	}
	return true
}

// Flaps is how many times the session left ESTABLISHED, from the
// established-transitions count (OpenConfig: transitions to ESTABLISHED,
// what FRR calls connectionsEstablished): the first establishment is no
// flap, so an established session has flapped one time fewer than it
// was established.
func (r Row) Flaps() uint64 {
	if r.State == "ESTABLISHED" && r.Transitions > 0 {
		return r.Transitions - 1
	}
	return r.Transitions
}

// WriteTable prints rows as an aligned text table.
func WriteTable(w io.Writer, rows []Row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTER\tNEIGHBOR\tPEER-AS\tSTATE\tFLAPS\tRTT MIN/LAST(ms)\tJITTER(ms)\tHOPS\tLOSS\tPFX RX/ACC\tHEALTH\tSOURCES")
	for _, r := range rows {
		nb := r.Neighbor
		if r.NetworkInstance != "default" {
			nb = r.NetworkInstance + "/" + nb
		}
		rtt, jit, hops := "-", "-", "-"
		if r.RTTus > 0 {
			rtt = fmt.Sprintf("%.2f/%.2f", r.RTTMinUS/1000, r.RTTus/1000)
			jit = fmt.Sprintf("%.2f", r.JitterUS/1000)
		}
		if r.RTTus > 0 || r.Hops > 0 {
			hops = fmt.Sprint(r.Hops)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Router, nb, r.PeerAS, r.State, r.Flaps(), rtt, jit, hops, r.Losses, prefixCell(r.AfiSafis), r.Health, r.Sources)
	}
	tw.Flush()
}

// prefixCell shows received before and after import policy, as gobgp's
// Received and Accepted columns do: "-" for a counter no source reported.
func prefixCell(m map[string]PrefixCounts) string {
	cell := func(leaf func(PrefixCounts) *uint64) string {
		if n, ok := total(m, leaf); ok {
			return fmt.Sprint(n)
		}
		return "-"
	}
	return cell(func(c PrefixCounts) *uint64 { return c.ReceivedPrePolicy }) + "/" + cell(func(c PrefixCounts) *uint64 { return c.Received })
}

// Handler serves the rows as JSON.
func Handler(s stage.Snapshotter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rows := Build(s.Snapshot(r.URL.Query().Get("router")))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rows)
	})
}
