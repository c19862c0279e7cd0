package sessions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openconfig/gnmi/proto/gnmi"

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

// The prefix count is OpenConfig's received (post-policy) summed over
// AFI-SAFIs, never received plus received-pre-policy: gobgp's r1 said 4
// received and 3 accepted where the table showed 7.
func TestPrefixCounts(t *testing.T) {
	type leaf struct {
		afi, name string
		n         uint64
	}
	u := func(n uint64) *uint64 { return &n }
	tests := []struct {
		name   string
		leaves []leaf
		want   uint64
		afis   map[string]PrefixCounts
		cell   string
	}{
		{
			name:   "pre and post policy are not added",
			leaves: []leaf{{"IPV4_UNICAST", "received", 3}, {"IPV4_UNICAST", "received-pre-policy", 4}},
			want:   3,
			afis:   map[string]PrefixCounts{"IPV4_UNICAST": {Received: u(3), ReceivedPrePolicy: u(4)}},
			cell:   "4/3",
		},
		{
			name: "the same leaf sums over AFI-SAFIs",
			leaves: []leaf{
				{"IPV4_UNICAST", "received", 3}, {"IPV6_UNICAST", "received", 2},
				{"IPV4_UNICAST", "received-pre-policy", 4}, {"IPV6_UNICAST", "received-pre-policy", 2},
				{"IPV4_UNICAST", "sent", 5}, {"IPV4_UNICAST", "installed", 1},
			},
			want: 5,
			afis: map[string]PrefixCounts{
				"IPV4_UNICAST": {Received: u(3), ReceivedPrePolicy: u(4), Sent: u(5), Installed: u(1)},
				"IPV6_UNICAST": {Received: u(2), ReceivedPrePolicy: u(2)},
			},
			cell: "6/5",
		},
		{
			name:   "sent and installed are not received",
			leaves: []leaf{{"IPV4_UNICAST", "sent", 9}, {"IPV4_UNICAST", "installed", 8}},
			want:   0,
			afis:   map[string]PrefixCounts{"IPV4_UNICAST": {Sent: u(9), Installed: u(8)}},
			cell:   "-/-",
		},
		{
			name:   "a reported zero is a zero",
			leaves: []leaf{{"IPV6_UNICAST", "received", 0}},
			want:   0,
			afis:   map[string]PrefixCounts{"IPV6_UNICAST": {Received: u(0)}},
			cell:   "-/0",
		},
		{
			name: "no prefix leaves", want: 0, cell: "-/-",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ups := []change.Update{{Router: "r1", Path: change.NeighborPath("default", "10.100.1.2", "state", "session-state"), Value: change.String("ESTABLISHED")}}
			for _, l := range tt.leaves {
				ups = append(ups, change.Update{Router: "r1", Path: change.AfiSafiPath("default", "10.100.1.2", l.afi, "state", "prefixes", l.name), Value: change.Uint(l.n)})
			}
			rows := Build(ups)
			if len(rows) != 1 {
				t.Fatalf("rows = %+v", rows)
			}
			r := rows[0]
			if r.Prefixes != tt.want {
				t.Errorf("prefixes = %d, want %d", r.Prefixes, tt.want)
			}
			if !reflect.DeepEqual(r.AfiSafis, tt.afis) {
				got, _ := json.Marshal(r.AfiSafis)
				want, _ := json.Marshal(tt.afis)
				t.Errorf("afi-safis = %s, want %s", got, want)
			}
			var b bytes.Buffer
			WriteTable(&b, rows)
			lines := strings.Split(strings.TrimSpace(b.String()), "\n")
			if !strings.Contains(lines[0], "PFX RX/ACC") || !slices.Contains(strings.Fields(lines[1]), tt.cell) {
				t.Errorf("table shows no %q:\n%s", tt.cell, b.String())
			}
		})
	}
}

// RTTs in JSON carry the model's precision (decimal64, 3 fraction digits
// of a µs), not the noise of a float computed from them.
func TestRTTJSON(t *testing.T) {
	tests := []struct {
		v    *gnmi.TypedValue
		want string
	}{
		{change.Decimal(244.306, 3), "244.306"},
		{change.Decimal(20150.5, 3), "20150.5"},
		{change.Decimal(1234.567, 3), "1234.567"},
		{change.Decimal(0.001, 3), "0.001"},
		{change.Float(244.30599999999998), "244.306"},
		{change.Float(1e6 / 3), "333333.333"},
	}
	for _, tt := range tests {
		ups := []change.Update{
			{Router: "r1", Path: change.MeshdNeighborPath("default", "10.100.1.2", "probe", "state", "rtt-last"), Value: tt.v},
			{Router: "r1", Path: change.MeshdNeighborPath("default", "10.100.1.2", "probe", "state", "rtt-min"), Value: tt.v},
			{Router: "r1", Path: change.MeshdNeighborPath("default", "10.100.1.2", "probe", "state", "jitter"), Value: tt.v},
		}
		b, err := json.Marshal(Build(ups))
		if err != nil {
			t.Fatal(err)
		}
		var rows []map[string]json.RawMessage
		if err := json.Unmarshal(b, &rows); err != nil || len(rows) != 1 {
			t.Fatalf("JSON %s: %v", b, err)
		}
		for _, f := range []string{"rtt_us", "rtt_min_us", "jitter_us"} {
			if got := string(rows[0][f]); got != tt.want {
				t.Errorf("%v: %s is %s in JSON, want %s", tt.v, f, got, tt.want)
			}
		}
	}
}

// Every decimal64 a probe can send for an RTT up to 10 s prints in JSON
// with at most 3 fraction digits (a sample of them, bounded).
func TestRTTJSONNoNoise(t *testing.T) {
	for d := int64(0); d < 10_000_000_000; d += 7_777_777 {
		v := &gnmi.TypedValue{Value: &gnmi.TypedValue_DecimalVal{DecimalVal: &gnmi.Decimal64{Digits: d, Precision: 3}}} //nolint:staticcheck // the model's decimal64
		b, _ := json.Marshal(micros(v))
		if i := bytes.IndexByte(b, '.'); i >= 0 && len(b)-i-1 > 3 {
			t.Fatalf("decimal64 %d/1000 prints as %s", d, b)
		}
	}
}

// A session's RPKI-invalid routes are one Adj-RIB-In view's: the
// post-policy one where BMP sends it, else the pre-policy one.
func TestRPKIInvalidCounts(t *testing.T) {
	type leaf struct {
		view, name string
		n          uint64
	}
	u := func(n uint64) *uint64 { return &n }
	tests := []struct {
		name      string
		leaves    []leaf
		want, pre *uint64
	}{
		{
			name: "post-policy, not pre added to post",
			leaves: []leaf{
				{"ADJ_RIB_IN_PRE", "rpki-invalid-origin", 3}, {"ADJ_RIB_IN_PRE", "rpki-invalid-length", 2},
				{"ADJ_RIB_IN_POST", "rpki-invalid-origin", 1}, {"ADJ_RIB_IN_POST", "rpki-invalid-length", 0},
			},
			want: u(1), pre: u(5),
		},
		{
			name:   "pre-policy where no post-policy view is sent",
			leaves: []leaf{{"ADJ_RIB_IN_PRE", "rpki-invalid-origin", 4}, {"ADJ_RIB_IN_PRE", "rpki-invalid-length", 1}},
			want:   u(5), pre: u(5),
		},
		{
			name:   "a zero is a zero",
			leaves: []leaf{{"ADJ_RIB_IN_POST", "rpki-invalid-origin", 0}},
			want:   u(0),
		},
		{
			name:   "other views are not the session's routes received",
			leaves: []leaf{{"ADJ_RIB_OUT_POST", "rpki-invalid-origin", 7}, {"LOC_RIB", "rpki-invalid-length", 7}},
		},
		{name: "no validation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ups := []change.Update{{Router: "r1", Path: change.NeighborPath("default", "10.100.1.2", "state", "session-state"), Value: change.String("ESTABLISHED")}}
			for _, l := range tt.leaves {
				p := change.MeshdNeighborPath("default", "10.100.1.2", "bmp", "ribs", "rib", "state", l.name)
				for _, e := range p.Elem {
					if e.Name == "rib" {
						e.Key = map[string]string{"view": l.view}
					}
				}
				ups = append(ups, change.Update{Router: "r1", Path: p, Value: change.Uint(l.n)})
			}
			rows := Build(ups)
			if len(rows) != 1 {
				t.Fatalf("rows = %+v", rows)
			}
			str := func(p *uint64) string {
				if p == nil {
					return "none"
				}
				return fmt.Sprint(*p)
			}
			r := rows[0]
			if str(r.RPKIInvalid) != str(tt.want) || str(r.RPKIInvalidPre) != str(tt.pre) {
				t.Errorf("invalid = %s (pre-policy %s), want %s (%s)", str(r.RPKIInvalid), str(r.RPKIInvalidPre), str(tt.want), str(tt.pre))
			}
		})
	}
}
