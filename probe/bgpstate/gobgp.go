package bgpstate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshd/meshd/internal/netns"
)

// GoBGP reads neighbor state from gobgpd's gRPC API (ListPeer).
//
// gobgpd reports no count of established transitions (its flops count
// only sessions shorter than a threshold), so GoBGP counts them itself:
// every session seen coming up, by its state or by a new uptime, since
// the agent started watching. The first poll counts an established
// session as one transition.
type GoBGP struct {
	// Addr is gobgpd's API address (default 127.0.0.1:50051).
	Addr string
	// NetworkInstance names gobgpd's global instance in the model
	// (default "default").
	NetworkInstance string
	// Netns is the network namespace gobgpd's API listens in (a name in
	// /run/netns); empty is the agent's own.
	Netns string

	once    sync.Once
	conn    *grpc.ClientConn
	client  api.GoBgpServiceClient
	dialErr error
	track   map[string]*upTrack
}

type upTrack struct {
	established bool
	uptime      int64
	count       uint64
}

func (g *GoBGP) dial() error {
	g.once.Do(func() {
		addr := g.Addr
		if addr == "" {
			addr = "127.0.0.1:50051"
		}
		opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if g.Netns != "" {
			ns := g.Netns
			opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
				return netns.Dial(ctx, ns, a)
			}))
		}
		g.conn, g.dialErr = grpc.NewClient("passthrough:///"+addr, opts...)
		if g.dialErr == nil {
			g.client = api.NewGoBgpServiceClient(g.conn)
		}
	})
	return g.dialErr
}

// Close releases the API connection.
func (g *GoBGP) Close() error {
	if g.conn != nil {
		return g.conn.Close()
	}
	return nil
}

// Neighbors polls gobgpd.
func (g *GoBGP) Neighbors(ctx context.Context) ([]Neighbor, error) {
	if err := g.dial(); err != nil {
		return nil, fmt.Errorf("gobgp api: %w", err)
	}
	st, err := g.client.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true})
	if err != nil {
		return nil, fmt.Errorf("gobgp ListPeer: %w", err)
	}
	var peers []*api.Peer
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("gobgp ListPeer: %w", err)
		}
		peers = append(peers, r.GetPeer())
	}
	return g.Convert(peers), nil
}

// gobgpState maps the API's session states to OpenConfig's.
var gobgpState = map[api.PeerState_SessionState]string{
	api.PeerState_SESSION_STATE_IDLE: "IDLE", api.PeerState_SESSION_STATE_CONNECT: "CONNECT",
	api.PeerState_SESSION_STATE_ACTIVE: "ACTIVE", api.PeerState_SESSION_STATE_OPENSENT: "OPENSENT",
	api.PeerState_SESSION_STATE_OPENCONFIRM: "OPENCONFIRM", api.PeerState_SESSION_STATE_ESTABLISHED: "ESTABLISHED",
}

type family struct {
	afi  api.Family_Afi
	safi api.Family_Safi
}

var gobgpFamilies = map[family]string{
	{api.Family_AFI_IP, api.Family_SAFI_UNICAST}:           "IPV4_UNICAST",
	{api.Family_AFI_IP6, api.Family_SAFI_UNICAST}:          "IPV6_UNICAST",
	{api.Family_AFI_IP, api.Family_SAFI_MPLS_LABEL}:        "IPV4_LABELED_UNICAST",
	{api.Family_AFI_IP6, api.Family_SAFI_MPLS_LABEL}:       "IPV6_LABELED_UNICAST",
	{api.Family_AFI_IP, api.Family_SAFI_MPLS_VPN}:          "L3VPN_IPV4_UNICAST",
	{api.Family_AFI_IP6, api.Family_SAFI_MPLS_VPN}:         "L3VPN_IPV6_UNICAST",
	{api.Family_AFI_L2VPN, api.Family_SAFI_EVPN}:           "L2VPN_EVPN",
	{api.Family_AFI_IP, api.Family_SAFI_FLOW_SPEC_UNICAST}: "IPV4_FLOWSPEC",
}

// Convert turns ListPeer answers into neighbors and updates the
// transition counts. Peers without a usable address are left out.
func (g *GoBGP) Convert(peers []*api.Peer) []Neighbor {
	ni := g.NetworkInstance
	if ni == "" {
		ni = "default"
	}
	if g.track == nil {
		g.track = map[string]*upTrack{}
	}
	seen := make(map[string]bool, len(peers))
	ns := make([]Neighbor, 0, len(peers))
	for _, p := range peers {
		s := p.GetState()
		as := p.GetConf().GetNeighborAddress()
		if as == "" {
			as = s.GetNeighborAddress()
		}
		addr, err := netip.ParseAddr(as)
		if err != nil {
			continue
		}
		key := addr.Unmap().String()
		state, ok := gobgpState[s.GetSessionState()]
		if !ok {
			state = "IDLE"
		}
		n := Neighbor{
			NetworkInstance: ni, Address: key, State: state,
			PeerAS: s.GetPeerAsn(), LocalAS: s.GetLocalAsn(),
			Sent:     Messages{Update: s.GetMessages().GetSent().GetUpdate(), Notification: s.GetMessages().GetSent().GetNotification()},
			Received: Messages{Update: s.GetMessages().GetReceived().GetUpdate(), Notification: s.GetMessages().GetReceived().GetNotification()},
		}
		if n.PeerAS == 0 {
			n.PeerAS = p.GetConf().GetPeerAsn()
		}
		if n.LocalAS == 0 {
			n.LocalAS = p.GetConf().GetLocalAsn()
		}
		ts := p.GetTimers().GetState()
		up := ts.GetUptime()
		var upSec int64
		if up != nil && up.GetSeconds() > 0 {
			upSec = up.GetSeconds()
			n.LastEstablished = time.Unix(up.GetSeconds(), int64(up.GetNanos()))
		}
		tr := g.track[key]
		if tr == nil {
			tr = &upTrack{}
			g.track[key] = tr
		}
		est := state == "ESTABLISHED"
		if est && (!tr.established || upSec != tr.uptime) {
			tr.count++
		}
		tr.established, tr.uptime = est, upSec
		n.EstablishedTransitions, n.HasTransitions = tr.count, true
		if est && ts.GetNegotiatedHoldTime() > 0 && ts.GetNegotiatedHoldTime() <= 65535 {
			n.NegotiatedHoldTime = uint16(ts.GetNegotiatedHoldTime())
		}
		for _, af := range p.GetAfiSafis() {
			fam := af.GetConfig().GetFamily()
			if af.GetState() != nil && af.GetState().GetFamily() != nil {
				fam = af.GetState().GetFamily()
			}
			name, ok := gobgpFamilies[family{fam.GetAfi(), fam.GetSafi()}]
			if !ok || !af.GetConfig().GetEnabled() && !af.GetState().GetEnabled() {
				continue
			}
			st := af.GetState()
			n.AfiSafis = append(n.AfiSafis, AfiSafi{
				Name:              name,
				ReceivedPrePolicy: u32(clamp32(st.GetReceived())),
				Received:          u32(clamp32(st.GetAccepted())),
				Sent:              u32(clamp32(st.GetAdvertised())),
			})
		}
		seen[key] = true
		ns = append(ns, n)
	}
	for k := range g.track {
		if !seen[k] {
			delete(g.track, k)
		}
	}
	return ns
}

func clamp32(v uint64) uint32 {
	if v > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(v)
}
