package netlab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/netns"
	"github.com/meshd/meshd/internal/sessions"
)

// This file reads what meshd shows, through the interfaces an operator
// uses: its gNMI target (a real gNMI client over gRPC), InfluxDB (InfluxQL
// over HTTP, the lab's influxd) and /api/sessions.

// MeshdAF is one AFI-SAFI's prefix counts in one of meshd's views.
type MeshdAF struct {
	Received    *uint64 // OpenConfig prefixes/received (post-policy)
	ReceivedPre *uint64 // prefixes/received-pre-policy
	Sent        *uint64
}

// MeshdSession is one session in one of meshd's views; nil is absent.
type MeshdSession struct {
	State       *string
	PeerAS      *uint64
	Transitions *uint64
	AFs         map[string]*MeshdAF
	// PrefixesTotal is /api/sessions' one prefix count of a session.
	PrefixesTotal *uint64
}

// SessionKey names a session by the router that has it and its neighbor.
type SessionKey struct{ Router, Neighbor string }

// MeshdView is one of meshd's views of every session.
type MeshdView map[SessionKey]*MeshdSession

func (v MeshdView) get(k SessionKey) *MeshdSession {
	s := v[k]
	if s == nil {
		s = &MeshdSession{AFs: map[string]*MeshdAF{}}
		v[k] = s
	}
	return s
}

func (s *MeshdSession) af(name string) *MeshdAF {
	a := s.AFs[name]
	if a == nil {
		a = &MeshdAF{}
		s.AFs[name] = a
	}
	return a
}

func strp(s string) *string { return &s }

// RouteKey names a route in meshd's BMP data.
type RouteKey struct {
	Router, Neighbor, RIB, AFISAFI, Prefix string
}

// MeshdRoute is a route meshd holds as announced, from its last bmp_route
// point.
type MeshdRoute struct {
	OriginAS uint32
	ASPath   string
	// Tied is set when a withdraw of the route has the same time as its
	// last announce: InfluxDB cannot say which came last (action is a
	// tag, so the two are points of different series).
	Tied bool
}

// gnmiLeaf is a number or string leaf value.
func gnmiNum(v *gpb.TypedValue) (uint64, bool) {
	switch x := v.GetValue().(type) {
	case *gpb.TypedValue_UintVal:
		return x.UintVal, true
	case *gpb.TypedValue_IntVal:
		return uint64(x.IntVal), true
	}
	return 0, false
}

// ApplyGNMI adds a Get response's neighbor leaves to a view.
func ApplyGNMI(v MeshdView, router string, resp *gpb.GetResponse) {
	for _, n := range resp.GetNotification() {
		for _, u := range n.GetUpdate() {
			p := &gpb.Path{Elem: append(append([]*gpb.PathElem{}, n.GetPrefix().GetElem()...), u.GetPath().GetElem()...)}
			ni, addr, rest, ok := change.NeighborOf(p)
			if !ok || ni != "default" {
				continue
			}
			names := make([]string, len(rest))
			for i, e := range rest {
				names[i] = e.GetName()
			}
			s := v.get(SessionKey{router, addr})
			val := u.GetVal()
			num, isNum := gnmiNum(val)
			switch path := strings.Join(names, "/"); path {
			case "state/session-state":
				s.State = strp(val.GetStringVal())
			case "state/peer-as":
				if isNum {
					s.PeerAS = u64(num)
				}
			case "state/established-transitions":
				if isNum {
					s.Transitions = u64(num)
				}
			default:
				if len(rest) < 2 || rest[1].GetName() != "afi-safi" || !isNum {
					continue
				}
				af := s.af(stripModule(rest[1].GetKey()["afi-safi-name"]))
				switch strings.Join(names[2:], "/") {
				case "state/prefixes/received":
					af.Received = u64(num)
				case "state/prefixes/received-pre-policy":
					af.ReceivedPre = u64(num)
				case "state/prefixes/sent":
					af.Sent = u64(num)
				}
			}
		}
	}
}

func stripModule(s string) string {
	if _, after, ok := strings.Cut(s, ":"); ok {
		return after
	}
	return s
}

// NSConn is a plaintext gRPC connection to addr inside namespace ns (the
// lab's networks are private to it, hence no TLS).
func NSConn(ns, addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return netns.Dial(ctx, ns, a) }))
}

// readGNMI reads every router's neighbors from meshd's gNMI target at
// addr (in the management namespace).
func readGNMI(ctx context.Context, addr string, routers []Router, raw map[string][]byte) (MeshdView, error) {
	conn, err := NSConn(MgmtNS, addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	c := gpb.NewGNMIClient(conn)
	v := MeshdView{}
	for _, r := range routers {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		p := change.NeighborPath("default", "*")
		p.Elem = p.Elem[:len(p.Elem)-1] // .../bgp/neighbors: every neighbor
		resp, err := c.Get(ctx, &gpb.GetRequest{Prefix: &gpb.Path{Target: r.Name}, Path: []*gpb.Path{p}, Encoding: gpb.Encoding_PROTO})
		cancel()
		if err != nil {
			if strings.Contains(err.Error(), "NotFound") {
				continue // meshd has nothing of this router: every leaf is absent
			}
			return nil, fmt.Errorf("meshd gNMI Get %s: %w", r.Name, err)
		}
		ApplyGNMI(v, r.Name, resp)
		raw["gnmi-get-"+r.Name+".textproto"] = []byte(prototext.Format(resp))
	}
	return v, nil
}

// influxResult is InfluxDB 1.x's /query answer.
type influxResult struct {
	Results []struct {
		Series []struct {
			Tags    map[string]string `json:"tags"`
			Columns []string          `json:"columns"`
			Values  [][]any           `json:"values"`
		} `json:"series"`
		Error string `json:"error"`
	} `json:"results"`
	Error string `json:"error"`
}

// influxQuery runs InfluxQL statements against the lab's database meshd,
// with times in ns since the epoch.
func influxQuery(ctx context.Context, q string, raw map[string][]byte, name string) (*influxResult, error) {
	c := NSHTTPClient(MgmtNS)
	c.Timeout = 30 * time.Second
	u := fmt.Sprintf("http://%s:%d/query?db=meshd&epoch=ns&q=%s", MgmtAddr, InfluxPort, url.QueryEscape(q))
	req, err := httpGet(ctx, u)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("InfluxDB: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	raw[name] = b
	return parseInflux(q, b)
}

func parseInflux(q string, b []byte) (*influxResult, error) {
	var res influxResult
	// Numbers as json.Number: times in ns since the epoch do not fit a
	// float64's 53 bits, and a point 1 ns after another must stay after it.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("InfluxQL %q: %w", q, err)
	}
	if res.Error != "" {
		return nil, fmt.Errorf("InfluxQL %q: %s", q, res.Error)
	}
	for _, r := range res.Results {
		if r.Error != "" {
			return nil, fmt.Errorf("InfluxQL %q: %s", q, r.Error)
		}
	}
	return &res, nil
}

func anyNum(v any) (uint64, bool) {
	switch x := v.(type) {
	case float64:
		return uint64(x), true
	case json.Number:
		if n, err := strconv.ParseUint(x.String(), 10, 64); err == nil {
			return n, true
		}
		f, err := x.Float64()
		return uint64(f), err == nil && f >= 0
	}
	return 0, false
}

// anyTime reads a point's time in ns since the epoch (epoch=ns).
func anyTime(v any) int64 {
	if x, ok := v.(json.Number); ok {
		n, _ := x.Int64()
		return n
	}
	return 0
}

// InfluxQL for meshd's last values: last() of each field merges a
// neighbor's series (peer_as is a tag, and a session's first points may
// carry none), the time of the last point of each field being its own.
const (
	qNeighbor = `SELECT last("session_state") AS "session_state", last("established_transitions") AS "established_transitions" FROM "bgp_neighbor" WHERE "network_instance" = 'default' GROUP BY "router", "neighbor"`
	// peer_as is a tag: the series whose session_state was written last
	// carries the current one.
	qPeerAS = `SELECT last("session_state") FROM "bgp_neighbor" WHERE "network_instance" = 'default' GROUP BY "router", "neighbor", "peer_as"`
	qAFI    = `SELECT last("prefixes_received") AS "received", last("prefixes_received_pre_policy") AS "received_pre", last("prefixes_sent") AS "sent" FROM "bgp_neighbor_afi" WHERE "network_instance" = 'default' GROUP BY "router", "neighbor", "afi_safi"`
	qRoutes = `SELECT "prefix", "origin_as", "as_path", "path_id" FROM "bmp_route" GROUP BY "router", "neighbor", "rib", "afi_safi", "action"`
)

// ApplyInflux adds the answers of qNeighbor, qPeerAS and qAFI to a view.
func ApplyInflux(v MeshdView, neighbor, peerAS, afi *influxResult) {
	for _, r := range neighbor.Results {
		for _, s := range r.Series {
			ms := v.get(SessionKey{s.Tags["router"], s.Tags["neighbor"]})
			for _, row := range s.Values {
				for i, col := range s.Columns {
					switch col {
					case "session_state":
						if x, ok := row[i].(string); ok {
							ms.State = strp(x)
						}
					case "established_transitions":
						if n, ok := anyNum(row[i]); ok {
							ms.Transitions = u64(n)
						}
					}
				}
			}
		}
	}
	type latest struct {
		t  int64
		as string
	}
	last := map[SessionKey]latest{}
	for _, r := range peerAS.Results {
		for _, s := range r.Series {
			k := SessionKey{s.Tags["router"], s.Tags["neighbor"]}
			for _, row := range s.Values {
				t := anyTime(row[0])
				if l, ok := last[k]; !ok || t > l.t {
					last[k] = latest{t, s.Tags["peer_as"]}
				}
			}
		}
	}
	for k, l := range last {
		if n, err := strconv.ParseUint(l.as, 10, 32); err == nil {
			v.get(k).PeerAS = u64(n)
		}
	}
	for _, r := range afi.Results {
		for _, s := range r.Series {
			a := v.get(SessionKey{s.Tags["router"], s.Tags["neighbor"]}).af(s.Tags["afi_safi"])
			for _, row := range s.Values {
				for i, col := range s.Columns {
					n, ok := anyNum(row[i])
					if !ok {
						continue
					}
					switch col {
					case "received":
						a.Received = u64(n)
					case "received_pre":
						a.ReceivedPre = u64(n)
					case "sent":
						a.Sent = u64(n)
					}
				}
			}
		}
	}
}

// ApplyRoutes replays bmp_route points in time order into the routes
// meshd holds as announced. Points of one series are in time order; the
// series are merged by time (a point's time is what the router stamped
// on its route monitoring message).
func ApplyRoutes(res *influxResult) map[RouteKey][]MeshdRoute {
	type pt struct {
		t        int64
		key      RouteKey
		pathID   uint64
		withdraw bool
		r        MeshdRoute
	}
	var pts []pt
	for _, r := range res.Results {
		for _, s := range r.Series {
			for _, row := range s.Values {
				p := pt{key: RouteKey{s.Tags["router"], s.Tags["neighbor"], s.Tags["rib"], s.Tags["afi_safi"], ""}, withdraw: s.Tags["action"] == "withdraw"}
				for i, col := range s.Columns {
					switch col {
					case "time":
						p.t = anyTime(row[i])
					case "prefix":
						p.key.Prefix, _ = row[i].(string)
					case "origin_as":
						n, _ := anyNum(row[i])
						p.r.OriginAS = uint32(n)
					case "as_path":
						p.r.ASPath, _ = row[i].(string)
					case "path_id":
						p.pathID, _ = anyNum(row[i])
					}
				}
				pts = append(pts, p)
			}
		}
	}
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].t < pts[j].t })
	type pk struct {
		k  RouteKey
		id uint64
	}
	type state struct {
		r         MeshdRoute
		announced bool
		t         int64
		withdrawT int64
	}
	cur := map[pk]*state{}
	for _, p := range pts {
		k := pk{p.key, p.pathID}
		st := cur[k]
		if st == nil {
			st = &state{withdrawT: -1}
			cur[k] = st
		}
		if p.withdraw {
			if st.announced && st.t == p.t {
				// Same time as the announce: keep the route, marked.
				st.r.Tied = true
				continue
			}
			st.announced, st.withdrawT = false, p.t
			continue
		}
		st.r, st.announced, st.t = p.r, true, p.t
		st.r.Tied = st.withdrawT == p.t
	}
	out := map[RouteKey][]MeshdRoute{}
	for k, st := range cur {
		if st.announced {
			out[k.k] = append(out[k.k], st.r)
		}
	}
	return out
}

func readInflux(ctx context.Context, raw map[string][]byte) (MeshdView, map[RouteKey][]MeshdRoute, error) {
	var res [4]*influxResult
	for i, q := range []string{qNeighbor, qPeerAS, qAFI, qRoutes} {
		r, err := influxQuery(ctx, q, raw, fmt.Sprintf("influx-%s.json", []string{"neighbor", "peer-as", "afi", "routes"}[i]))
		if err != nil {
			return nil, nil, err
		}
		res[i] = r
	}
	v := MeshdView{}
	ApplyInflux(v, res[0], res[1], res[2])
	return v, ApplyRoutes(res[3]), nil
}

// APIRow is the part of an /api/sessions row verify compares.
type APIRow struct {
	Router      string  `json:"router"`
	NI          string  `json:"network_instance"`
	Neighbor    string  `json:"neighbor"`
	PeerAS      uint64  `json:"peer_as"`
	State       string  `json:"session_state"`
	Transitions uint64  `json:"established_transitions"`
	Prefixes    uint64  `json:"prefixes_received"`
	RTT         float64 `json:"rtt_us"`
}

// ApplyAPI adds /api/sessions' rows to a view. The API leaves zero
// values out, so a missing number is 0 there, not absent.
func ApplyAPI(v MeshdView, b []byte) error {
	var rows []APIRow
	if err := json.Unmarshal(b, &rows); err != nil {
		return fmt.Errorf("/api/sessions: %w", err)
	}
	for _, r := range rows {
		if r.NI != "default" {
			continue
		}
		s := v.get(SessionKey{r.Router, r.Neighbor})
		if r.State != "" {
			s.State = strp(r.State)
		}
		if r.PeerAS != 0 {
			s.PeerAS = u64(r.PeerAS)
		}
		s.Transitions = u64(r.Transitions)
		s.PrefixesTotal = u64(r.Prefixes)
	}
	return nil
}

func readAPI(ctx context.Context, addr string, raw map[string][]byte) (MeshdView, error) {
	b, unreachable, err := getSessions(ctx, addr)
	if err != nil {
		return nil, err
	}
	if unreachable != "" {
		// A fleet view with a member missing would show its routers'
		// sessions as absent, and verify would blame meshd's data.
		return nil, fmt.Errorf("meshd /api/sessions at %s: replicas %s did not answer", addr, unreachable)
	}
	raw["api-sessions.json"] = b
	v := MeshdView{}
	return v, ApplyAPI(v, b)
}

// getSessions reads meshd's /api/sessions at addr (in the management
// namespace), with the replicas a fleet-wide answer is missing.
func getSessions(ctx context.Context, addr string) (body []byte, unreachable string, err error) {
	c := NSHTTPClient(MgmtNS)
	req, err := httpGet(ctx, "http://"+addr+"/api/sessions")
	if err != nil {
		return nil, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("meshd /api/sessions: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("meshd /api/sessions at %s: %s", addr, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	return b, resp.Header.Get(sessions.UnreachableHeader), nil
}

// Sessions reads the sessions meshd shows in the lab, from the one meshd
// or the first replica that answers (each answers for the fleet), with
// the replicas that answer is missing.
func (l *Lab) Sessions(ctx context.Context) (rows []sessions.Row, unreachable string, err error) {
	addrs, err := l.meshdAddrs(HTTPPort)
	if err != nil {
		return nil, "", err
	}
	var errs []error
	for _, addr := range addrs {
		b, un, err := getSessions(ctx, addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := json.Unmarshal(b, &rows); err != nil {
			return nil, "", fmt.Errorf("meshd in the lab: sessions: %w", err)
		}
		return rows, un, nil
	}
	return nil, "", fmt.Errorf("meshd in the lab: %w", errors.Join(errs...))
}
