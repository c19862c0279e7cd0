package netlab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// This file reads each router's own view of its sessions and routes: the
// oracle `meshd-lab verify` holds meshd to. Parsers take the daemons' raw
// output, so tests run them on captures of the real daemons (testdata/).

// Counts are a session's prefix counts for one AFI-SAFI as the router
// reports them. A nil count is one the daemon does not report.
type Counts struct {
	Received *uint64 // pre-policy Adj-RIB-In
	Accepted *uint64 // post-policy Adj-RIB-In
	Sent     *uint64 // Adj-RIB-Out
}

// RouterSession is one BGP session as the router itself reports it.
type RouterSession struct {
	Router   string
	Daemon   string
	Neighbor string
	Local    string // the router's own address of the session (BIRD's source address)
	State    string // OpenConfig session-state: ESTABLISHED, IDLE, ...
	LocalAS  uint32
	PeerAS   uint32
	// Transitions is the number of times the session was established; nil
	// when the daemon does not count them.
	Transitions *uint64
	AFs         map[string]*Counts // by OpenConfig AFI-SAFI name: IPV4_UNICAST
	// NotReported says, per field the daemon does not report, why.
	NotReported map[string]string
}

// Route is one path in a router's BGP table.
type Route struct {
	Router   string
	Neighbor string // "" for a route the router originates
	AFISAFI  string
	Prefix   string
	OriginAS uint32 // the last AS of the path; the router's own AS for its own routes
	ASPath   string // as received, ASNs space-separated
	Best     bool
}

// RouterView is everything read from one router.
type RouterView struct {
	Router   Router
	Sessions []RouterSession
	Routes   []Route
	// Raw keeps the daemon's output by command, for --dump.
	Raw map[string][]byte
}

func u64(v uint64) *uint64 { return &v }

// ocState maps the FSM state names daemons print to OpenConfig's.
func ocState(s string) string {
	switch strings.ToLower(s) {
	case "established":
		return "ESTABLISHED"
	case "idle":
		return "IDLE"
	case "connect":
		return "CONNECT"
	case "active":
		return "ACTIVE"
	case "opensent":
		return "OPENSENT"
	case "openconfirm":
		return "OPENCONFIRM"
	}
	return "UNKNOWN(" + s + ")"
}

// originOf returns a path's origin AS: its last ASN (an AS_SET's last
// member, as FRR and gobgp print sets in braces), or local for an empty
// path, which the router originated itself.
func originOf(path string, local uint32) (uint32, error) {
	f := strings.Fields(strings.NewReplacer("{", " ", "}", " ", ",", " ", "(", " ", ")", " ").Replace(path))
	if len(f) == 0 {
		return local, nil
	}
	n, err := strconv.ParseUint(f[len(f)-1], 10, 32)
	if err != nil {
		return 0, fmt.Errorf("AS path %q: %w", path, err)
	}
	return uint32(n), nil
}

var frrAFs = map[string]string{"ipv4Unicast": "IPV4_UNICAST", "ipv6Unicast": "IPV6_UNICAST"}

// ParseFRRNeighbors reads `show bgp vrf all neighbors json`. FRR reports
// established transitions (connectionsEstablished), accepted and sent
// prefixes; its pre-policy count needs soft-reconfiguration inbound,
// which the lab does not configure.
func ParseFRRNeighbors(router string, b []byte) ([]RouterSession, error) {
	var vrfs map[string]map[string]json.RawMessage
	if err := json.Unmarshal(b, &vrfs); err != nil {
		return nil, fmt.Errorf("FRR neighbors json: %w", err)
	}
	var out []RouterSession
	for _, vrf := range vrfs {
		for addr, raw := range vrf {
			if _, err := netip.ParseAddr(addr); err != nil {
				continue // vrfId, vrfName
			}
			var n struct {
				RemoteAs               uint32 `json:"remoteAs"`
				LocalAs                uint32 `json:"localAs"`
				BgpState               string `json:"bgpState"`
				ConnectionsEstablished uint64 `json:"connectionsEstablished"`
				AFI                    map[string]struct {
					Accepted *uint64 `json:"acceptedPrefixCounter"`
					Sent     *uint64 `json:"sentPrefixCounter"`
				} `json:"addressFamilyInfo"`
			}
			if err := json.Unmarshal(raw, &n); err != nil {
				return nil, fmt.Errorf("FRR neighbor %s: %w", addr, err)
			}
			s := RouterSession{Router: router, Daemon: "frr", Neighbor: addr, State: ocState(n.BgpState),
				LocalAS: n.LocalAs, PeerAS: n.RemoteAs, Transitions: u64(n.ConnectionsEstablished), AFs: map[string]*Counts{},
				NotReported: map[string]string{"prefixes-received-pre-policy": "FRR counts pre-policy prefixes only with soft-reconfiguration inbound, which the lab does not configure"}}
			for k, af := range n.AFI {
				name, ok := frrAFs[k]
				if !ok {
					continue
				}
				c := &Counts{Accepted: af.Accepted, Sent: af.Sent}
				// FRR leaves the counters out of a session that is not
				// up: it holds no routes from or to that neighbor.
				if s.State != "ESTABLISHED" {
					if c.Accepted == nil {
						c.Accepted = u64(0)
					}
					if c.Sent == nil {
						c.Sent = u64(0)
					}
				}
				s.AFs[name] = c
			}
			out = append(out, s)
		}
	}
	sortSessions(out)
	return out, nil
}

// ParseFRRRoutes reads `show bgp vrf all ipv4|ipv6 unicast json`: every
// path of the BGP table, the routes the router originates with peerId
// "(unspec)" and an empty path.
func ParseFRRRoutes(router, afiSafi string, b []byte) ([]Route, error) {
	var vrfs map[string]struct {
		LocalAS uint32 `json:"localAS"`
		Routes  map[string][]struct {
			PeerID   string `json:"peerId"`
			Path     string `json:"path"`
			Best     bool   `json:"bestpath"`
			Valid    bool   `json:"valid"`
			Network  string `json:"network"`
			PathFrom string `json:"pathFrom"`
		} `json:"routes"`
	}
	if err := json.Unmarshal(b, &vrfs); err != nil {
		return nil, fmt.Errorf("FRR routes json: %w", err)
	}
	var out []Route
	for _, vrf := range vrfs {
		for prefix, paths := range vrf.Routes {
			for _, p := range paths {
				r := Route{Router: router, AFISAFI: afiSafi, Prefix: prefix, ASPath: p.Path, Best: p.Best}
				if _, err := netip.ParseAddr(p.PeerID); err == nil {
					r.Neighbor = p.PeerID
				}
				o, err := originOf(p.Path, vrf.LocalAS)
				if err != nil {
					return nil, err
				}
				r.OriginAS = o
				out = append(out, r)
			}
		}
	}
	sortRoutes(out)
	return out, nil
}

func gobgpFamily(f *api.Family) string {
	switch {
	case f.GetAfi() == api.Family_AFI_IP && f.GetSafi() == api.Family_SAFI_UNICAST:
		return "IPV4_UNICAST"
	case f.GetAfi() == api.Family_AFI_IP6 && f.GetSafi() == api.Family_SAFI_UNICAST:
		return "IPV6_UNICAST"
	}
	return ""
}

// ParseGobgpPeers reads gobgpd's ListPeer answers (with advertised
// counts), one protojson Peer a line. gobgpd counts received (pre-policy),
// accepted and advertised prefixes; it has no count of established
// transitions (its flops count only sessions shorter than a threshold).
func ParseGobgpPeers(router string, b []byte) ([]RouterSession, error) {
	var out []RouterSession
	err := eachProtoLine(b, "gobgp peer", func(p *api.Peer) error {
		st := strings.TrimPrefix(p.GetState().GetSessionState().String(), "SESSION_STATE_")
		s := RouterSession{Router: router, Daemon: "gobgpd", Neighbor: p.GetState().GetNeighborAddress(), State: ocState(st),
			LocalAS: p.GetState().GetLocalAsn(), PeerAS: p.GetState().GetPeerAsn(), AFs: map[string]*Counts{},
			NotReported: map[string]string{"established-transitions": "gobgpd counts no established transitions (its flops count only sessions shorter than a threshold)"}}
		if s.LocalAS == 0 {
			s.LocalAS = p.GetConf().GetLocalAsn()
		}
		if s.PeerAS == 0 {
			s.PeerAS = p.GetConf().GetPeerAsn()
		}
		for _, af := range p.GetAfiSafis() {
			name := gobgpFamily(af.GetState().GetFamily())
			if name == "" || !af.GetState().GetEnabled() {
				continue
			}
			st := af.GetState()
			s.AFs[name] = &Counts{Received: u64(st.GetReceived()), Accepted: u64(st.GetAccepted()), Sent: u64(st.GetAdvertised())}
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortSessions(out)
	return out, nil
}

// eachProtoLine decodes b, one protojson message of type M a line (blank
// lines skipped), and calls f with each; what names M in errors.
func eachProtoLine[M any, PM interface {
	*M
	proto.Message
}](b []byte, what string, f func(PM) error) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		m := PM(new(M))
		if err := protojson.Unmarshal(line, m); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := f(m); err != nil {
			return err
		}
	}
	return sc.Err()
}

// ParseGobgpPaths reads gobgpd's ListPath answers for its global table,
// one protojson Destination a line.
func ParseGobgpPaths(router, afiSafi string, localAS uint32, b []byte) ([]Route, error) {
	var out []Route
	err := eachProtoLine(b, "gobgp destination", func(d *api.Destination) error {
		for _, p := range d.GetPaths() {
			r := Route{Router: router, AFISAFI: afiSafi, Prefix: d.GetPrefix(), Best: p.GetBest()}
			if _, err := netip.ParseAddr(p.GetNeighborIp()); err == nil && !netip.MustParseAddr(p.GetNeighborIp()).IsUnspecified() {
				r.Neighbor = p.GetNeighborIp()
			}
			var asns []string
			for _, a := range p.GetPattrs() {
				for _, seg := range a.GetAsPath().GetSegments() {
					set := seg.GetType() == api.AsSegment_TYPE_AS_SET || seg.GetType() == api.AsSegment_TYPE_AS_CONFED_SET
					var nums []string
					for _, n := range seg.GetNumbers() {
						nums = append(nums, strconv.FormatUint(uint64(n), 10))
					}
					if set {
						asns = append(asns, "{"+strings.Join(nums, ",")+"}")
					} else {
						asns = append(asns, nums...)
					}
				}
			}
			r.ASPath = strings.Join(asns, " ")
			o, err := originOf(r.ASPath, localAS)
			if err != nil {
				return err
			}
			r.OriginAS = o
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortRoutes(out)
	return out, nil
}

// ParseBIRDProtocols reads `birdc show protocols all`, BIRD 2's text
// output (it has no JSON). Per BGP protocol: "BGP state:", "Neighbor
// address:", "Neighbor AS:", "Local AS:", "Source address:" and per
// channel "Routes: N imported, [M filtered, ]K exported, P preferred".
// BIRD counts no established transitions and, without an import table,
// no pre-policy prefixes.
func ParseBIRDProtocols(router string, b []byte) ([]RouterSession, error) {
	var out []RouterSession
	var cur *RouterSession
	var chanAF string
	flush := func() {
		if cur != nil && cur.Neighbor != "" {
			out = append(out, *cur)
		}
		cur = nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, " ") {
			// A protocol's summary line: name, protocol, table, state,
			// since, info.
			flush()
			f := strings.Fields(line)
			if len(f) >= 2 && f[1] == "BGP" {
				cur = &RouterSession{Router: router, Daemon: "bird", AFs: map[string]*Counts{}, NotReported: map[string]string{
					"established-transitions":      "BIRD counts no established transitions",
					"prefixes-received-pre-policy": "BIRD keeps no pre-policy count without an import table, which the lab does not configure",
				}}
			}
			continue
		}
		if cur == nil {
			continue
		}
		key, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		val = strings.TrimSpace(val)
		switch {
		case strings.HasPrefix(strings.TrimSpace(line), "Channel "):
			chanAF = map[string]string{"ipv4": "IPV4_UNICAST", "ipv6": "IPV6_UNICAST"}[strings.TrimPrefix(strings.TrimSpace(line), "Channel ")]
		case !ok:
		case key == "BGP state":
			cur.State = ocState(val)
		case key == "Neighbor address":
			cur.Neighbor = val
		case key == "Source address":
			cur.Local = val
		case key == "Neighbor AS" || key == "Local AS":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("BIRD %s: %q: %w", key, val, err)
			}
			if key == "Local AS" {
				cur.LocalAS = uint32(n)
			} else {
				cur.PeerAS = uint32(n)
			}
		case key == "Routes" && chanAF != "":
			c := &Counts{}
			for _, part := range strings.Split(val, ",") {
				f := strings.Fields(part)
				if len(f) != 2 {
					return nil, fmt.Errorf("BIRD routes %q", val)
				}
				n, err := strconv.ParseUint(f[0], 10, 64)
				if err != nil {
					return nil, fmt.Errorf("BIRD routes %q: %w", val, err)
				}
				switch f[1] {
				case "imported":
					c.Accepted = u64(n)
				case "exported":
					c.Sent = u64(n)
				}
			}
			cur.AFs[chanAF] = c
		}
	}
	flush()
	// A channel of a session that is down prints no Routes line: BIRD
	// holds no routes from or to that neighbor then.
	for i := range out {
		if len(out[i].AFs) == 0 {
			af := "IPV4_UNICAST"
			if a, err := netip.ParseAddr(out[i].Neighbor); err == nil && a.Is6() {
				af = "IPV6_UNICAST"
			}
			out[i].AFs[af] = &Counts{Accepted: u64(0), Sent: u64(0)}
		}
	}
	sortSessions(out)
	return out, sc.Err()
}

func sortSessions(s []RouterSession) {
	sort.Slice(s, func(i, j int) bool { return s[i].Neighbor < s[j].Neighbor })
}

func sortRoutes(r []Route) {
	sort.Slice(r, func(i, j int) bool {
		if r[i].Prefix != r[j].Prefix {
			return r[i].Prefix < r[j].Prefix
		}
		return r[i].Neighbor < r[j].Neighbor
	})
}

// ReadRouter reads a lab router's own view from its daemon.
func (l *Lab) ReadRouter(ctx context.Context, r Router) (*RouterView, error) {
	v := &RouterView{Router: r, Raw: map[string][]byte{}}
	switch r.Daemon {
	case "frr":
		for _, c := range []struct{ cmd, af string }{
			{"show bgp vrf all neighbors json", ""},
			{"show bgp vrf all ipv4 unicast json", "IPV4_UNICAST"},
			{"show bgp vrf all ipv6 unicast json", "IPV6_UNICAST"},
		} {
			out, err := l.vtyshOut(ctx, r, c.cmd)
			if err != nil {
				return nil, err
			}
			v.Raw[c.cmd] = out
			if c.af == "" {
				if v.Sessions, err = ParseFRRNeighbors(r.Name, out); err != nil {
					return nil, err
				}
				continue
			}
			rs, err := ParseFRRRoutes(r.Name, c.af, out)
			if err != nil {
				return nil, err
			}
			v.Routes = append(v.Routes, rs...)
		}
	case "gobgpd":
		if err := l.readGobgp(ctx, r, v); err != nil {
			return nil, err
		}
	case "bird":
		out, err := l.Birdc(r, "show", "protocols", "all")
		if err != nil {
			return nil, err
		}
		v.Raw["show protocols all"] = out
		if v.Sessions, err = ParseBIRDProtocols(r.Name, out); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s: unknown daemon %q", r.Name, r.Daemon)
	}
	return v, nil
}

func (l *Lab) vtyshOut(ctx context.Context, r Router, cmd string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	bin, err := l.bin("vtysh")
	if err != nil {
		bin = "vtysh"
	}
	// vtysh needs only bgpd's vty socket, which is a file: it runs in
	// the root namespace.
	return outputCtx(ctx, bin, "--vty_socket", l.FRRDir(r), "-d", "bgpd", "-c", cmd)
}

func (l *Lab) readGobgp(ctx context.Context, r Router, v *RouterView) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	conn, err := NSConn(r.NS, fmt.Sprintf("127.0.0.1:%d", gobgpAPIPort))
	if err != nil {
		return err
	}
	defer conn.Close()
	c := api.NewGoBgpServiceClient(conn)
	var peers bytes.Buffer
	st, err := c.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true})
	if err != nil {
		return fmt.Errorf("%s gobgpd ListPeer: %w", r.Name, err)
	}
	for {
		m, err := st.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("%s gobgpd ListPeer: %w", r.Name, err)
		}
		b, _ := protojson.Marshal(m.GetPeer())
		peers.Write(b)
		peers.WriteByte('\n')
	}
	v.Raw["ListPeer"] = peers.Bytes()
	if v.Sessions, err = ParseGobgpPeers(r.Name, peers.Bytes()); err != nil {
		return err
	}
	for _, f := range []struct {
		af  string
		fam *api.Family
	}{
		{"IPV4_UNICAST", &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}},
		{"IPV6_UNICAST", &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}},
	} {
		ps, err := c.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: f.fam})
		if err != nil {
			return fmt.Errorf("%s gobgpd ListPath: %w", r.Name, err)
		}
		var buf bytes.Buffer
		for {
			m, err := ps.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return fmt.Errorf("%s gobgpd ListPath: %w", r.Name, err)
			}
			b, _ := protojson.Marshal(m.GetDestination())
			buf.Write(b)
			buf.WriteByte('\n')
		}
		v.Raw["ListPath "+f.af] = buf.Bytes()
		rs, err := ParseGobgpPaths(r.Name, f.af, r.ASN, buf.Bytes())
		if err != nil {
			return err
		}
		v.Routes = append(v.Routes, rs...)
	}
	return nil
}

// outputCtx runs a command under ctx and returns its standard output; its
// error says what the command printed on standard error.
func outputCtx(ctx context.Context, name string, args ...string) ([]byte, error) {
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
