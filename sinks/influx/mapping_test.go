package influx

import (
	"math"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
)

var t0 = time.Unix(1700000000, 0)

func up(p *gpb.Path, v *gpb.TypedValue) change.Update {
	return change.Update{Router: "r1", Path: p, Key: change.PathKey(p), Value: v, Time: t0}
}

func nb(elems ...string) *gpb.Path { return change.NeighborPath("default", "192.0.2.1", elems...) }
func mnb(elems ...string) *gpb.Path {
	return change.MeshdNeighborPath("default", "192.0.2.1", elems...)
}

func TestMapBatch(t *testing.T) {
	med := uint32(50)
	const ts = "1700000000000000000"
	for _, tc := range []struct {
		name  string
		batch change.Batch
		want  []string
	}{
		{
			name: "neighbor leaves coalesce into one point, peer-as becomes a tag",
			batch: change.Batch{Updates: []change.Update{
				up(nb("state", "peer-as"), change.Uint(65001)),
				up(nb("state", "session-state"), change.String("ESTABLISHED")),
				up(nb("state", "established-transitions"), change.Uint(3)),
				up(nb("state", "messages", "received", "UPDATE"), change.Uint(10)),
			}},
			want: []string{`bgp_neighbor,neighbor=192.0.2.1,network_instance=default,peer_as=65001,router=r1 established=1i,established_transitions=3i,session_state="ESTABLISHED",updates_rx=10i ` + ts},
		},
		{
			// The verdict is stamped with the newest time any source gave,
			// an hour ahead after a router's clock stepped back.
			name: "meshd's verdict an hour ahead does not move the router's values",
			batch: change.Batch{Updates: []change.Update{
				{Router: "r1", Path: nb("state", "messages", "received", "UPDATE"), Value: change.Uint(11), Time: t0, Source: change.SourceGNMI},
				{Router: "r1", Path: mnb("verdict", "state", "health"), Value: change.String("HEALTHY"), Time: t0.Add(time.Hour), Source: change.SourceMeshd},
			}},
			want: []string{`bgp_neighbor,neighbor=192.0.2.1,network_instance=default,router=r1 health="HEALTHY",health_code=1i,updates_rx=11i ` + ts},
		},
		{
			name: "a verdict alone keeps its time",
			batch: change.Batch{Updates: []change.Update{
				{Router: "r1", Path: mnb("verdict", "state", "health"), Value: change.String("HEALTHY"), Time: t0.Add(time.Hour), Source: change.SourceMeshd},
			}},
			want: []string{`bgp_neighbor,neighbor=192.0.2.1,network_instance=default,router=r1 health="HEALTHY",health_code=1i 1700003600000000000`},
		},
		{
			name: "uint64 counter past int64 is clamped",
			batch: change.Batch{Updates: []change.Update{
				up(nb("state", "messages", "sent", "UPDATE"), change.Uint(math.MaxUint64)),
			}},
			want: []string{`bgp_neighbor,neighbor=192.0.2.1,network_instance=default,router=r1 updates_tx=9223372036854775807i ` + ts},
		},
		{
			name: "afi-safi prefixes, module prefix stripped",
			batch: change.Batch{Updates: []change.Update{
				up(change.AfiSafiPath("default", "192.0.2.1", "openconfig-bgp-types:IPV4_UNICAST", "state", "prefixes", "received"), change.Uint(42)),
			}},
			want: []string{`bgp_neighbor_afi,afi_safi=IPV4_UNICAST,neighbor=192.0.2.1,network_instance=default,router=r1 prefixes_received=42i ` + ts},
		},
		{
			name: "probe state: decimal RTT is a float, hops an int",
			batch: change.Batch{Updates: []change.Update{
				up(mnb("probe", "state", "rtt-last"), change.Decimal(123.456, 3)),
				up(mnb("probe", "state", "hops"), change.Uint(2)),
			}},
			want: []string{`bgp_keepalive,neighbor=192.0.2.1,network_instance=default,router=r1 hops=2i,rtt_us=123.456 ` + ts},
		},
		{
			name: "verdict joins bgp_neighbor with a numeric code",
			batch: change.Batch{Updates: []change.Update{
				up(mnb("verdict", "state", "health"), change.String("DEGRADED")),
				up(mnb("verdict", "state", "reason"), change.String("loss 2%")),
			}},
			want: []string{`bgp_neighbor,neighbor=192.0.2.1,network_instance=default,router=r1 health="DEGRADED",health_code=2i,health_reason="loss 2%" ` + ts},
		},
		{
			name: "bmp stats counters and rib counters",
			batch: change.Batch{Updates: []change.Update{
				up(change.MustPath("/meshd/network-instances/network-instance[name=default]/neighbors/neighbor[neighbor-address=192.0.2.1]/bmp/stats/counter[type=7]/state/value"), change.Uint(900)),
				up(change.MustPath("/meshd/network-instances/network-instance[name=default]/neighbors/neighbor[neighbor-address=192.0.2.1]/bmp/ribs/rib[view=LOC_RIB]/state/prefixes"), change.Uint(800)),
			}},
			want: []string{
				`bmp_stats,neighbor=192.0.2.1,network_instance=default,router=r1 routes_adj_rib_in=900i ` + ts,
				`bmp_rib,neighbor=192.0.2.1,network_instance=default,rib=LOC_RIB,router=r1 prefixes=800i ` + ts,
			},
		},
		{
			name: "router state",
			batch: change.Batch{Updates: []change.Update{
				up(change.MeshdRouterPath("bmp-connected"), change.Bool(true)),
			}},
			want: []string{`meshd_router,router=r1 bmp_connected=true ` + ts},
		},
		{
			name: "unmapped leaf writes nothing",
			batch: change.Batch{Updates: []change.Update{
				up(nb("config", "description"), change.String("x")),
			}},
		},
		{
			name: "peer down event with reason; escaping",
			batch: change.Batch{Events: []change.Event{{
				Time: t0, Router: "r 1", NetworkInstance: "default", Neighbor: "192.0.2.1", Kind: change.EventPeerDown, Source: change.SourceBMP,
				Fields: map[string]any{"reason_code": uint8(1), "reason": `local "admin"` + "\nshutdown", "peer_as": uint32(65001)},
			}}},
			want: []string{`bgp_session_event,event=peer_down,neighbor=192.0.2.1,network_instance=default,peer_as=65001,router=r\ 1,source=bmp n=1i,reason="local \"admin\"\nshutdown",reason_code=1i ` + ts},
		},
		{
			name: "cease notification from a non-BMP source is also a session event",
			batch: change.Batch{Events: []change.Event{{
				Time: t0, Router: "r1", NetworkInstance: "default", Neighbor: "192.0.2.1", Kind: change.EventMessage, Source: change.SourceGNMI,
				Fields: map[string]any{"type": "notification", "direction": "received", "code": 6, "subcode": 2},
			}}},
			want: []string{
				`bgp_message_verbose,direction=received,neighbor=192.0.2.1,network_instance=default,router=r1,type=NOTIFICATION code=6i,n=1i,subcode=2i ` + ts,
				`bgp_session_event,event=cease,neighbor=192.0.2.1,network_instance=default,router=r1,source=gnmi n=1i,notification_code=6i,notification_subcode=2i ` + ts,
			},
		},
		{
			name: "route events of one message get unique timestamps",
			batch: change.Batch{Events: []change.Event{
				{Time: t0, Router: "r1", NetworkInstance: "default", Neighbor: "192.0.2.1", Kind: change.EventRoute,
					Route: &change.Route{Action: change.Announce, AfiSafi: "IPV4_UNICAST", RIB: "ADJ_RIB_IN_PRE", Prefix: "10.0.0.0/24", OriginAS: 42009012, ASPath: "65001 42009012", NextHop: "192.0.2.1", MED: &med, Communities: []string{"65001:1", "65001:2"}}},
				{Time: t0, Router: "r1", NetworkInstance: "default", Neighbor: "192.0.2.1", Kind: change.EventRoute,
					Route: &change.Route{Action: change.Announce, AfiSafi: "IPV4_UNICAST", RIB: "ADJ_RIB_IN_PRE", Prefix: "10.0.1.0/24", OriginAS: 65001}},
			}},
			want: []string{
				`bmp_route,action=announce,afi_safi=IPV4_UNICAST,neighbor=192.0.2.1,network_instance=default,rib=ADJ_RIB_IN_PRE,router=r1 as_path="65001 42009012",communities="65001:1 65001:2",med=50i,next_hop="192.0.2.1",origin_as=42009012i,prefix="10.0.0.0/24" ` + ts,
				`bmp_route,action=announce,afi_safi=IPV4_UNICAST,neighbor=192.0.2.1,network_instance=default,rib=ADJ_RIB_IN_PRE,router=r1 origin_as=65001i,prefix="10.0.1.0/24" 1700000000000000001`,
			},
		},
		{
			// action is a tag: announce and withdraw are two series of one
			// route, so their times must differ for a reader to order them.
			name: "a withdraw and a re-announce at one time stay in order",
			batch: change.Batch{Events: []change.Event{
				{Time: t0, Router: "r1", NetworkInstance: "default", Neighbor: "192.0.2.1", Kind: change.EventRoute,
					Route: &change.Route{Action: change.Withdraw, AfiSafi: "IPV4_UNICAST", RIB: "ADJ_RIB_IN_POST", Prefix: "10.0.1.0/25", OriginAS: 65001}},
				{Time: t0, Router: "r1", NetworkInstance: "default", Neighbor: "192.0.2.1", Kind: change.EventRoute,
					Route: &change.Route{Action: change.Announce, AfiSafi: "IPV4_UNICAST", RIB: "ADJ_RIB_IN_POST", Prefix: "10.0.1.0/25", OriginAS: 65005}},
			}},
			want: []string{
				`bmp_route,action=withdraw,afi_safi=IPV4_UNICAST,neighbor=192.0.2.1,network_instance=default,rib=ADJ_RIB_IN_POST,router=r1 origin_as=65001i,prefix="10.0.1.0/25" ` + ts,
				`bmp_route,action=announce,afi_safi=IPV4_UNICAST,neighbor=192.0.2.1,network_instance=default,rib=ADJ_RIB_IN_POST,router=r1 origin_as=65005i,prefix="10.0.1.0/25" 1700000000000000001`,
			},
		},
		{
			// gobgpd stamps to the second, FRR with a route's age: the
			// re-announce after a withdraw may carry an earlier time. The
			// order BMP brought them in is kept.
			name: "a route event stamped earlier than the one before it comes after it",
			batch: change.Batch{Events: []change.Event{
				{Time: t0.Add(2 * time.Second), Router: "r1", NetworkInstance: "default", Neighbor: "192.0.2.1", Kind: change.EventRoute,
					Route: &change.Route{Action: change.Withdraw, AfiSafi: "IPV4_UNICAST", RIB: "LOC_RIB", Prefix: "10.0.2.0/24", OriginAS: 65001}},
				{Time: t0, Router: "r1", NetworkInstance: "default", Neighbor: "192.0.2.1", Kind: change.EventRoute,
					Route: &change.Route{Action: change.Announce, AfiSafi: "IPV4_UNICAST", RIB: "LOC_RIB", Prefix: "10.0.2.0/24", OriginAS: 65001}},
			}},
			want: []string{
				`bmp_route,action=withdraw,afi_safi=IPV4_UNICAST,neighbor=192.0.2.1,network_instance=default,rib=LOC_RIB,router=r1 origin_as=65001i,prefix="10.0.2.0/24" 1700000002000000000`,
				`bmp_route,action=announce,afi_safi=IPV4_UNICAST,neighbor=192.0.2.1,network_instance=default,rib=LOC_RIB,router=r1 origin_as=65001i,prefix="10.0.2.0/24" 1700000002000000001`,
			},
		},
		{
			name: "probe sample and origin change events",
			batch: change.Batch{Events: []change.Event{
				{Time: t0, Router: "r1", NetworkInstance: "default", Neighbor: "192.0.2.1", Kind: change.EventProbeSample, Fields: map[string]any{"rtt_us": 250, "ttl": uint8(63)}},
				{Time: t0, Router: "r1", NetworkInstance: "default", Neighbor: "192.0.2.1", Kind: change.EventOriginChange, Fields: map[string]any{"afi_safi": "IPV4_UNICAST", "prefix": "10.0.0.0/24", "old_origin_as": uint32(1), "new_origin_as": uint32(2)}},
			}},
			want: []string{
				`bgp_keepalive,neighbor=192.0.2.1,network_instance=default,router=r1 rtt_us=250,ttl=63i ` + ts,
				`bgp_origin_change,afi_safi=IPV4_UNICAST,neighbor=192.0.2.1,network_instance=default,router=r1 new_origin_as=2i,old_origin_as=1i,prefix="10.0.0.0/24" ` + ts,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMapper()
			out, n := m.batch(nil, &tc.batch, t0)
			got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			if len(out) == 0 {
				got = nil
			}
			if n != len(got) {
				t.Errorf("point count %d, lines %d", n, len(got))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestFieldTypeStaysFixed(t *testing.T) {
	m := newMapper()
	// An event source that sends a field first as int, then as a string
	// that is not a number: the second is dropped and counted, never
	// written with another type.
	ev := func(v any) change.Event {
		return change.Event{Time: t0, Router: "r1", NetworkInstance: "default", Neighbor: "n", Kind: change.EventProbeSample, Fields: map[string]any{"custom": v}}
	}
	out, _ := m.batch(nil, &change.Batch{Events: []change.Event{ev(5), ev("oops"), ev("7"), ev(2.0)}}, t0)
	want := "bgp_keepalive,neighbor=n,network_instance=default,router=r1 custom=5i 1700000000000000000\n" +
		"bgp_keepalive,neighbor=n,network_instance=default,router=r1 custom=7i 1700000000000000001\n" +
		"bgp_keepalive,neighbor=n,network_instance=default,router=r1 custom=2i 1700000000000000002\n"
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	if m.stats.typeConflicts != 1 {
		t.Fatalf("type conflicts %d, want 1", m.stats.typeConflicts)
	}
}

func TestSnapshotAndDelete(t *testing.T) {
	m := newMapper()
	b := change.Batch{Updates: []change.Update{
		up(nb("state", "peer-as"), change.Uint(65001)),
		up(nb("state", "session-state"), change.String("ESTABLISHED")),
		up(nb("state", "last-established"), change.Uint(uint64(t0.UnixNano()))),
		up(change.AfiSafiPath("default", "192.0.2.1", "IPV6_UNICAST", "state", "prefixes", "sent"), change.Uint(7)),
	}}
	m.batch(nil, &b, t0)
	now := t0.Add(90 * time.Second)
	out, n := m.snapshot(nil, now)
	s := string(out)
	if n != 2 || !strings.Contains(s, "uptime_s=90i") || !strings.Contains(s, "prefixes_sent=7i") || !strings.Contains(s, "established=1i") {
		t.Fatalf("snapshot (%d points):\n%s", n, s)
	}
	// The neighbor's deletion stops its snapshots.
	del := change.Batch{Updates: []change.Update{{Router: "r1", Path: nb(), Time: now}}}
	m.batch(nil, &del, now)
	if out, n := m.snapshot(nil, now); n != 0 {
		t.Fatalf("deleted neighbor still snapshotted:\n%s", out)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{URL: "http://127.0.0.1:8086", Database: "meshd", SpoolDir: "/tmp/x"}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"valid", func(*Config) {}, ""},
		{"no url", func(c *Config) { c.URL = "" }, "influxdb.url: required"},
		{"bad scheme", func(c *Config) { c.URL = "udp://x:1" }, "influxdb.url"},
		{"no db", func(c *Config) { c.Database = "" }, "influxdb.database"},
		{"batch", func(c *Config) { c.BatchSize = -1 }, "influxdb.batch-size"},
		{"policy", func(c *Config) { c.SpoolFullPolicy = "panic" }, "influxdb.spool-full-policy"},
		{"spool size", func(c *Config) { c.SpoolMaxBytes = 10 }, "influxdb.spool-max-bytes"},
		{"token and user", func(c *Config) { c.Token = "t"; c.Username = "u" }, "influxdb.token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			c.SetDefaults()
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	c := ok
	c.RetentionPolicy = "week"
	c.Username, c.Password = "u", "p"
	if c.bucket() != "meshd/week" || c.token() != "u:p" {
		t.Fatalf("bucket %q token %q", c.bucket(), c.token())
	}
}

// TestRouteFastPath: the cached route encoder writes exactly what the
// generic point encoder writes for the same route.
func TestRouteFastPath(t *testing.T) {
	med, lp := uint32(0), uint32(200)
	for i, r := range []change.Route{
		{Action: change.Announce, AfiSafi: "openconfig-bgp-types:IPV4_UNICAST", RIB: "ADJ_RIB_IN_POST", Prefix: "10.0.0.0/8", OriginAS: 1},
		{Action: change.Withdraw, AfiSafi: "IPV6_UNICAST", RIB: "LOC_RIB", Prefix: "2001:db8::/32", PathID: 3},
		{Action: change.Announce, AfiSafi: "IPV4_UNICAST", RIB: "ADJ_RIB_OUT_PRE", Prefix: "10.1.0.0/16", OriginAS: 4200000000, ASPath: `65001 {1,2} "x\`,
			NextHop: "192.0.2.1", MED: &med, LocalPref: &lp, Communities: []string{"1:1", "2:2"}, LargeCommunities: []string{"1:2:3"},
			ExtCommunities: map[string][]string{"rt": {"1:1", "1:0"}, "soo": {"2:2"}}},
	} {
		for _, ni := range []string{"default", "", "vrf blue,x=y"} {
			ev := change.Event{Time: t0, Router: "r 1", NetworkInstance: ni, Neighbor: "192.0.2.1", Kind: change.EventRoute, Route: &r}
			m := newMapper()
			fast := m.appendRoute(nil, &ev, t0.UnixNano())
			fast = m.appendRoute(fast, &ev, t0.UnixNano()) // cached key, bumped time
			g := newMapper()
			p := &g.pt
			var slow []byte
			for range 2 {
				p.meas, p.ts, p.fields = mBMPRoute, t0.UnixNano(), p.fields[:0]
				g.routeFields(p, &ev)
				slow, _ = g.enc.appendPoint(slow, p)
			}
			if string(fast) != string(slow) {
				t.Errorf("route %d ni %q:\nfast %s\nslow %s", i, ni, fast, slow)
			}
		}
	}
}
