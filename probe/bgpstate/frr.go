package bgpstate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// FRR reads neighbor state from FRR's bgpd through vtysh:
// `show bgp vrf all neighbors json` for the sessions, and one
// `prefix-counts json` per established neighbor and address family for
// the prefixes installed in the Loc-RIB (best selected), all of a VRF's in
// one vtysh run.
type FRR struct {
	// Vtysh is the vtysh binary (default "vtysh").
	Vtysh string
	// Socket is bgpd's vty socket directory (vtysh --vty_socket); empty
	// is FRR's default.
	Socket string
	// DefaultInstance names FRR's default VRF in the model (default
	// "default").
	DefaultInstance string
	// run executes vtysh with args; tests replace it.
	run func(ctx context.Context, args ...string) ([]byte, error)
}

// maxCommandsPerRun bounds the -c arguments of one vtysh run.
const maxCommandsPerRun = 256

func (f *FRR) vtysh(ctx context.Context, cmds ...string) ([]byte, error) {
	args := []string{}
	if f.Socket != "" {
		args = append(args, "--vty_socket", f.Socket)
	}
	args = append(args, "-d", "bgpd")
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	if f.run != nil {
		return f.run(ctx, args...)
	}
	bin := f.Vtysh
	if bin == "" {
		bin = "vtysh"
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("vtysh: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Neighbors polls bgpd.
func (f *FRR) Neighbors(ctx context.Context) ([]Neighbor, error) {
	out, err := f.vtysh(ctx, "show bgp vrf all neighbors json")
	if err != nil {
		return nil, err
	}
	def := f.DefaultInstance
	if def == "" {
		def = "default"
	}
	ns, want, err := ParseFRRNeighbors(out, def)
	if err != nil {
		return nil, err
	}
	for _, vrf := range sortedKeys(want) {
		qs := want[vrf]
		for len(qs) > 0 {
			n := min(len(qs), maxCommandsPerRun)
			cmds := make([]string, n)
			for i, q := range qs[:n] {
				cmds[i] = fmt.Sprintf("show bgp vrf %s %s neighbors %s prefix-counts json", vrf, q.afiCLI, q.addr)
			}
			out, err := f.vtysh(ctx, cmds...)
			if err != nil {
				return nil, err
			}
			counts, err := ParseFRRPrefixCounts(out)
			if err != nil {
				return nil, err
			}
			ni := vrf
			if vrf == "default" {
				ni = def
			}
			applyInstalled(ns, ni, counts)
			qs = qs[n:]
		}
	}
	return ns, nil
}

// countQuery asks for one neighbor's prefix counts in one family.
type countQuery struct {
	addr, afiCLI string
}

type frrNeighbor struct {
	RemoteAs                   uint32  `json:"remoteAs"`
	LocalAs                    uint32  `json:"localAs"`
	BgpState                   string  `json:"bgpState"`
	AdminShutDown              bool    `json:"adminShutDown"`
	BgpTimerUpEstablishedEpoch int64   `json:"bgpTimerUpEstablishedEpoch"`
	BgpTimerHoldTimeMsecs      int64   `json:"bgpTimerHoldTimeMsecs"`
	ConnectionsEstablished     *uint64 `json:"connectionsEstablished"`
	HostForeign                string  `json:"hostForeign"`
	MessageStats               struct {
		NotificationsSent uint64 `json:"notificationsSent"`
		NotificationsRecv uint64 `json:"notificationsRecv"`
		UpdatesSent       uint64 `json:"updatesSent"`
		UpdatesRecv       uint64 `json:"updatesRecv"`
	} `json:"messageStats"`
	AddressFamilyInfo map[string]struct {
		AcceptedPrefixCounter *uint32 `json:"acceptedPrefixCounter"`
		SentPrefixCounter     *uint32 `json:"sentPrefixCounter"`
	} `json:"addressFamilyInfo"`
}

// frrFamilies maps FRR's addressFamilyInfo keys to OpenConfig names and
// the CLI's family words.
var frrFamilies = map[string]struct{ oc, cli string }{
	"ipv4Unicast":        {"IPV4_UNICAST", "ipv4 unicast"},
	"ipv6Unicast":        {"IPV6_UNICAST", "ipv6 unicast"},
	"ipv4LabeledUnicast": {"IPV4_LABELED_UNICAST", "ipv4 labeled-unicast"},
	"ipv6LabeledUnicast": {"IPV6_LABELED_UNICAST", "ipv6 labeled-unicast"},
	"ipv4Vpn":            {"L3VPN_IPV4_UNICAST", "ipv4 vpn"},
	"ipv6Vpn":            {"L3VPN_IPV6_UNICAST", "ipv6 vpn"},
	"ipv4Flowspec":       {"IPV4_FLOWSPEC", ""},
	"l2VpnEvpn":          {"L2VPN_EVPN", ""},
}

// frrState maps bgpd's FSM state names (bgp_fsm.c) to OpenConfig's.
// Clearing and Deleted are bgpd-internal moments of a session going
// down, hence IDLE.
var frrState = map[string]string{
	"idle": "IDLE", "connect": "CONNECT", "active": "ACTIVE", "opensent": "OPENSENT",
	"openconfirm": "OPENCONFIRM", "established": "ESTABLISHED", "clearing": "IDLE", "deleted": "IDLE",
}

// ErrBadJSON wraps output of the daemon meshd could not read.
var ErrBadJSON = errors.New("unreadable daemon output")

// ParseFRRNeighbors reads `show bgp vrf all neighbors json`. It returns
// the neighbors (the default VRF named def) and, per FRR VRF name, the
// prefix-count queries for established neighbors. Neighbors whose key is
// not an address (unnumbered, by interface) are named by their
// connection's foreign address, and skipped while it has none.
func ParseFRRNeighbors(data []byte, def string) ([]Neighbor, map[string][]countQuery, error) {
	var vrfs map[string]map[string]json.RawMessage
	if err := json.Unmarshal(data, &vrfs); err != nil {
		return nil, nil, fmt.Errorf("%w: show bgp vrf all neighbors json: %v", ErrBadJSON, err)
	}
	var ns []Neighbor
	want := map[string][]countQuery{}
	for _, vrf := range sortedKeys(vrfs) {
		ni := vrf
		if vrf == "default" {
			ni = def
		}
		body := vrfs[vrf]
		for _, key := range sortedKeys(body) {
			if key == "vrfId" || key == "vrfName" {
				continue
			}
			var fn frrNeighbor
			if err := json.Unmarshal(body[key], &fn); err != nil {
				return nil, nil, fmt.Errorf("%w: neighbor %s: %v", ErrBadJSON, key, err)
			}
			addr, err := netip.ParseAddr(key)
			if err != nil {
				if addr, err = netip.ParseAddr(fn.HostForeign); err != nil {
					continue
				}
			}
			n, err := fn.neighbor(ni, addr.Unmap().String())
			if err != nil {
				return nil, nil, fmt.Errorf("%w: neighbor %s: %v", ErrBadJSON, key, err)
			}
			if n.State == "ESTABLISHED" {
				for _, af := range n.AfiSafis {
					if cli := frrCLI(af.Name); cli != "" {
						want[vrf] = append(want[vrf], countQuery{addr: key, afiCLI: cli})
					}
				}
			}
			ns = append(ns, n)
		}
	}
	return ns, want, nil
}

func frrCLI(ocName string) string {
	for _, f := range frrFamilies {
		if f.oc == ocName {
			return f.cli
		}
	}
	return ""
}

func (fn *frrNeighbor) neighbor(ni, addr string) (Neighbor, error) {
	st, ok := frrState[strings.ToLower(fn.BgpState)]
	if !ok {
		return Neighbor{}, fmt.Errorf("unknown bgpState %q", fn.BgpState)
	}
	n := Neighbor{
		NetworkInstance: ni, Address: addr, State: st, PeerAS: fn.RemoteAs, LocalAS: fn.LocalAs,
		Sent:     Messages{Update: fn.MessageStats.UpdatesSent, Notification: fn.MessageStats.NotificationsSent},
		Received: Messages{Update: fn.MessageStats.UpdatesRecv, Notification: fn.MessageStats.NotificationsRecv},
	}
	if fn.ConnectionsEstablished != nil {
		n.EstablishedTransitions, n.HasTransitions = *fn.ConnectionsEstablished, true
	}
	if st == "ESTABLISHED" {
		if fn.BgpTimerUpEstablishedEpoch > 0 {
			n.LastEstablished = time.Unix(fn.BgpTimerUpEstablishedEpoch, 0)
		}
		if h := fn.BgpTimerHoldTimeMsecs / 1000; h > 0 && h <= 65535 {
			n.NegotiatedHoldTime = uint16(h)
		}
	}
	for _, key := range sortedKeys(fn.AddressFamilyInfo) {
		fam, ok := frrFamilies[key]
		if !ok {
			continue
		}
		ai := fn.AddressFamilyInfo[key]
		af := AfiSafi{Name: fam.oc, Received: ai.AcceptedPrefixCounter, Sent: ai.SentPrefixCounter}
		if st != "ESTABLISHED" {
			// bgpd keeps its counters of a session that is down;
			// nothing is received or sent on it any more.
			af.Received, af.Sent = u32(0), u32(0)
		}
		n.AfiSafis = append(n.AfiSafis, af)
	}
	return n, nil
}

// PrefixCount is one answer of `show bgp ... neighbors X prefix-counts json`.
type PrefixCount struct {
	Neighbor string // as FRR printed it
	AfiSafi  string // OpenConfig name
	// Installed is the count of the neighbor's paths selected best.
	Installed uint32
}

type frrPrefixCounts struct {
	PrefixCountsFor string            `json:"prefixCountsFor"`
	MultiProtocol   string            `json:"multiProtocol"`
	Warning         string            `json:"warning"`
	Walk            map[string]uint32 `json:"ribTableWalkCounters"`
}

// ParseFRRPrefixCounts reads the concatenated JSON objects of several
// prefix-counts commands; answers without counts (a neighbor gone since
// the neighbors poll prints a warning) are left out.
func ParseFRRPrefixCounts(data []byte) ([]PrefixCount, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var out []PrefixCount
	for {
		var pc frrPrefixCounts
		err := dec.Decode(&pc)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("%w: prefix-counts: %v", ErrBadJSON, err)
		}
		fam, ok := frrFamilies[pc.MultiProtocol]
		best, has := pc.Walk["PfxCt Best Selected"]
		if pc.Warning != "" || !ok || !has || pc.PrefixCountsFor == "" {
			continue
		}
		out = append(out, PrefixCount{Neighbor: pc.PrefixCountsFor, AfiSafi: fam.oc, Installed: best})
	}
}

func applyInstalled(ns []Neighbor, ni string, counts []PrefixCount) {
	idx := map[string]*Neighbor{}
	for i := range ns {
		if ns[i].NetworkInstance == ni {
			idx[ns[i].Address] = &ns[i]
		}
	}
	for _, c := range counts {
		a, err := netip.ParseAddr(c.Neighbor)
		if err != nil {
			continue
		}
		n := idx[a.Unmap().String()]
		if n == nil {
			continue
		}
		for i := range n.AfiSafis {
			if n.AfiSafis[i].Name == c.AfiSafi {
				n.AfiSafis[i].Installed = u32(c.Installed)
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
