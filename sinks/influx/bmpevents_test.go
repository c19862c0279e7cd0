package influx

import (
	"strings"
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/meshd/meshd/bmpbridge/decode"
	"github.com/meshd/meshd/change"
)

// bmpEvent builds an event the way bmpbridge's session does: Router and
// Source filled in by session.event, the neighbor of the peer header.
func bmpEvent(kind change.EventKind, fields map[string]any) change.Event {
	return change.Event{Time: t0, Router: "r1", NetworkInstance: "default", Neighbor: "192.0.2.1", Kind: kind, Source: change.SourceBMP, Fields: fields}
}

// TestMapBMPBridgeEvents feeds events shaped exactly as bmpbridge
// (session.go) builds them, with its own names (bmpbridge/decode), and
// checks the points written.
func TestMapBMPBridgeEvents(t *testing.T) {
	const ts = " 1700000000000000000"
	const tags = "neighbor=192.0.2.1,network_instance=default"
	ntf, sub := decode.NotificationName(6, 2)
	v4, v6 := decode.AfiSafiName(bgp.RF_IPv4_UC), decode.AfiSafiName(bgp.RF_IPv6_UC)
	for _, tc := range []struct {
		name   string
		events []change.Event
		want   []string
	}{
		{
			name: "peer up (session.peerUp)",
			events: []change.Event{bmpEvent(change.EventPeerUp, map[string]any{
				"peer_as": int64(4200000001), "local_as": int64(65000), "peer_type": decode.PeerTypeName(0), "rib": decode.RIBView(0, 0),
				"capabilities": "route-refresh,4-octet-as", "add_path": "IPV4_UNICAST", "hold_time": int64(90),
				"local_address": "192.0.2.254", "four_octet_as": true,
			})},
			want: []string{`bgp_session_event,event=peer_up,` + tags + `,peer_as=4200000001,router=r1,source=bmp add_path="IPV4_UNICAST",capabilities="route-refresh,4-octet-as",four_octet_as=true,hold_time=90i,local_address="192.0.2.254",local_as=65000i,n=1i,peer_type="GLOBAL",rib="ADJ_RIB_IN_PRE"` + ts},
		},
		{
			name: "OPEN sent and received (session.peerUp): the sender's AS is my_as",
			events: []change.Event{
				bmpEvent(change.EventMessage, map[string]any{"type": "OPEN", "direction": "sent", "as": int64(65000), "hold_time": int64(90), "bgp_id": "192.0.2.254", "capabilities": "route-refresh", "families": v4}),
				bmpEvent(change.EventMessage, map[string]any{"type": "OPEN", "direction": "received", "as": int64(23456), "hold_time": int64(180), "bgp_id": "192.0.2.1", "capabilities": "", "families": v4 + "," + v6}),
			},
			want: []string{
				`bgp_message_verbose,direction=sent,` + tags + `,router=r1,type=OPEN bgp_id="192.0.2.254",capabilities="route-refresh",families="IPV4_UNICAST",hold_time=90i,my_as=65000i,n=1i` + ts,
				`bgp_message_verbose,direction=received,` + tags + `,router=r1,type=OPEN bgp_id="192.0.2.1",capabilities="",families="IPV4_UNICAST,IPV6_UNICAST",hold_time=180i,my_as=23456i,n=1i` + ts,
			},
		},
		{
			name: "peer down with a Cease NOTIFICATION (session.peerDown): one session end, not two",
			events: []change.Event{
				bmpEvent(change.EventMessage, map[string]any{"type": "NOTIFICATION", "direction": "received", "code": int64(6), "subcode": int64(2), "code_name": ntf, "subcode_name": sub, "data": "maintenance"}),
				bmpEvent(change.EventPeerDown, map[string]any{"reason_code": int64(3), "reason": decode.PeerDownReason(3), "peer_type": decode.PeerTypeName(0),
					"notification_code": int64(6), "notification_subcode": int64(2), "notification": ntf, "notification_subcode_name": sub}),
			},
			want: []string{
				`bgp_message_verbose,direction=received,` + tags + `,router=r1,type=NOTIFICATION code=6i,code_name="Cease",data="maintenance",n=1i,subcode=2i,subcode_name="Administrative Shutdown"` + ts,
				`bgp_session_event,event=peer_down,` + tags + `,router=r1,source=bmp n=1i,notification="Cease",notification_code=6i,notification_subcode=2i,notification_subcode_name="Administrative Shutdown",peer_type="GLOBAL",reason="remote system closed the session with a NOTIFICATION",reason_code=3i` + ts,
			},
		},
		{
			name:   "peer down without NOTIFICATION, FSM event (session.peerDown)",
			events: []change.Event{bmpEvent(change.EventPeerDown, map[string]any{"reason_code": int64(2), "reason": decode.PeerDownReason(2), "peer_type": decode.PeerTypeName(1), "fsm_event": int64(18)})},
			want:   []string{`bgp_session_event,event=peer_down,` + tags + `,router=r1,source=bmp fsm_event=18i,n=1i,peer_type="RD_INSTANCE",reason="local system closed the session without a NOTIFICATION",reason_code=2i` + ts},
		},
		{
			name: "stats report (session.stats): counter-leaf field names, rib a tag, per-AFI fields and their sum",
			events: []change.Event{bmpEvent(change.EventStats, map[string]any{
				"peer_type": decode.PeerTypeName(0), "rib": decode.RIBView(0, 0x40),
				decode.StatName(7): int64(900), decode.StatName(1): int64(4),
				decode.StatName(9) + "." + v4: int64(600), decode.StatName(9) + "." + v6: int64(300),
				decode.StatName(99): int64(1),
			})},
			want: []string{`bmp_stats,` + tags + `,rib=ADJ_RIB_IN_POST,router=r1 duplicate_prefix_advertisements=4i,peer_type="GLOBAL",routes_adj_rib_in=900i,routes_adj_rib_in_afi_safi=900i,routes_adj_rib_in_afi_safi_ipv4_unicast=600i,routes_adj_rib_in_afi_safi_ipv6_unicast=300i,type_99=1i` + ts},
		},
		{
			name: "origin changes (session.routes): rib a tag",
			events: []change.Event{
				bmpEvent(change.EventOriginChange, map[string]any{"afi_safi": v4, "rib": "LOC_RIB", "prefix": "203.0.113.0/24", "old_origin_as": int64(64500), "new_origin_as": int64(42009012)}),
				bmpEvent(change.EventOriginChange, map[string]any{"afi_safi": v4, "rib": "LOC_RIB", "prefix": "203.0.113.128/25", "old_origin_as": int64(64500), "new_origin_as": int64(64666), "more_specific_of": "203.0.113.0/24"}),
			},
			want: []string{
				`bgp_origin_change,afi_safi=IPV4_UNICAST,` + tags + `,rib=LOC_RIB,router=r1 new_origin_as=42009012i,old_origin_as=64500i,prefix="203.0.113.0/24"` + ts,
				`bgp_origin_change,afi_safi=IPV4_UNICAST,` + tags + `,rib=LOC_RIB,router=r1 more_specific_of="203.0.113.0/24",new_origin_as=64666i,old_origin_as=64500i,prefix="203.0.113.128/25" 1700000000000000001`,
			},
		},
		{
			name: "router up and down (session.start/end)",
			events: []change.Event{
				{Time: t0, Router: "r1", Kind: change.EventRouterUp, Source: change.SourceBMP, Fields: map[string]any{"sys_name": "r1", "sys_descr": "FRRouting 8.4", "address": "127.0.0.1"}},
				{Time: t0, Router: "r1", Kind: change.EventRouterDown, Source: change.SourceBMP, Fields: map[string]any{"address": "127.0.0.1", "messages": int64(1234), "errors": int64(0)}},
			},
			want: []string{
				`bmp_router_event,event=router_up,router=r1 address="127.0.0.1",n=1i,sys_descr="FRRouting 8.4",sys_name="r1"` + ts,
				`bmp_router_event,event=router_down,router=r1 address="127.0.0.1",errors=0i,messages=1234i,n=1i` + ts,
			},
		},
		{
			name: "route event (session.routes)",
			events: []change.Event{{Time: t0, Router: "r1", NetworkInstance: "default", Neighbor: "192.0.2.1", Kind: change.EventRoute, Source: change.SourceBMP,
				Route: &change.Route{Action: change.Withdraw, AfiSafi: v6, RIB: decode.RIBView(3, 0), Prefix: "2001:db8::/32", PathID: 7, OriginAS: 64500}}},
			want: []string{`bmp_route,action=withdraw,afi_safi=IPV6_UNICAST,` + tags + `,rib=LOC_RIB,router=r1 origin_as=64500i,path_id=7i,prefix="2001:db8::/32"` + ts},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMapper()
			out, n := m.batch(nil, &change.Batch{Events: tc.events}, t0)
			got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			if n != len(got) {
				t.Errorf("point count %d, lines %d", n, len(got))
			}
			if g, w := strings.Join(got, "\n"), strings.Join(tc.want, "\n"); g != w {
				t.Errorf("got\n%s\nwant\n%s", g, w)
			}
			if m.stats.unmapped != 0 || m.stats.typeConflicts != 0 {
				t.Errorf("unmapped %d, type conflicts %d, want 0", m.stats.unmapped, m.stats.typeConflicts)
			}
		})
	}
}

// TestLocRIBPeerNoNeighborSeries: bmpbridge's leaves for a Loc-RIB
// instance peer (peer type 3) or an instance peer without an address
// (0.0.0.0) must not make a bgp_neighbor series, only bmp_peer.
func TestLocRIBPeerNoNeighborSeries(t *testing.T) {
	for _, tc := range []struct {
		name, addr, peerType string
	}{
		{"loc-rib peer type", "192.0.2.9", decode.PeerTypeName(3)},
		{"unspecified address", "0.0.0.0", decode.PeerTypeName(2)},
		{"unspecified IPv6 address", "::", decode.PeerTypeName(2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			np := func(v *gpb.TypedValue, e ...string) change.Update {
				return change.Update{Router: "r1", Path: change.NeighborPath("default", tc.addr, e...), Value: v, Time: t0}
			}
			bp := func(v *gpb.TypedValue, leaf string) change.Update {
				return change.Update{Router: "r1", Path: change.MeshdNeighborPath("default", tc.addr, "bmp", "state", leaf), Value: v, Time: t0}
			}
			// Order as in session.peerUp: OpenConfig leaves first.
			b := change.Batch{Updates: []change.Update{
				np(change.String("ESTABLISHED"), "state", "session-state"),
				np(change.Uint(65000), "state", "peer-as"),
				np(change.Uint(1), "state", "established-transitions"),
				{Router: "r1", Path: change.AfiSafiPath("default", tc.addr, "IPV4_UNICAST", "state", "prefixes", "received"), Value: change.Uint(5), Time: t0},
				bp(change.String(tc.peerType), "peer-type"),
				bp(change.Uint(1), "up-count"),
			}}
			m := newMapper()
			out, _ := m.batch(nil, &b, t0)
			want := `bmp_peer,neighbor=` + escTag(tc.addr) + `,network_instance=default,router=r1 peer_type="` + tc.peerType + `",up_count=1i 1700000000000000000` + "\n"
			if string(out) != want {
				t.Errorf("got\n%swant\n%s", out, want)
			}
			// Nor does the periodic snapshot bring them back.
			snap, _ := m.snapshot(nil, t0)
			if strings.Contains(string(snap), mNeighbor) {
				t.Errorf("snapshot has a neighbor series:\n%s", snap)
			}
		})
	}
}

func escTag(s string) string { return string(appendEscaped(nil, s, keyEsc)) }
