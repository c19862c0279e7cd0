//go:build integration

package ocschema

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/change"
	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/probe/bgpstate"
)

// TestRealDaemonsServeSame runs FRR and gobgpd peering over IPv4 and IPv6,
// polls each through bgpstate as `meshd-probe --bgp` does, hands what the
// poller publishes to the probe's gNMI target built with this package and
// to one built with the generated binding, and compares their answers once
// the sessions are up with prefixes counted, and again after a reset.
func TestRealDaemonsServeSame(t *testing.T) {
	const frrAS, gobgpAS = 4200000011, 65012
	pair := testenv.StartBGPPair(t, "ocs", 78, frrAS, gobgpAS)
	gb := pair.Gobgpd
	gb.Gobgp(t, "global", "rib", "add", "203.0.113.0/24", "-a", "ipv4")
	gb.Gobgp(t, "global", "rib", "add", "2001:db8:78::/48", "-a", "ipv6")

	p := newPair(t)
	published := map[string][]change.Update{}
	poller := func(daemon, router string, r bgpstate.Reader) *bgpstate.Poller {
		publish := func(chs []change.Change) {
			ups := make([]change.Update, len(chs))
			for i, c := range chs {
				ups[i] = change.Update{Router: router, Path: c.Path, Key: change.PathKey(c.Path), Value: c.Value, Time: c.Time, Source: c.Source}
			}
			published[router] = append(published[router], ups...)
			p.update(router, ups)
		}
		pl, err := bgpstate.NewPoller(bgpstate.Config{Daemon: daemon, Interval: time.Second}, r, router, publish)
		if err != nil {
			t.Fatal(err)
		}
		return pl
	}
	// Polled by hand, not Run: the two servers must hold the same leaves
	// while they are compared.
	pollers := map[string]*bgpstate.Poller{
		"ra": poller("frr", "ra", &bgpstate.FRR{Vtysh: testenv.Binary(t, "vtysh"), Socket: pair.FRR.Dir}),
		"rb": poller("gobgp", "rb", &bgpstate.GoBGP{Netns: gb.NS.Name}),
	}
	// ready polls until every want leaf is served with its value.
	type want struct {
		router string
		path   *gpb.Path
		val    *gpb.TypedValue
	}
	ready := func(ws ...want) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			for _, pl := range pollers {
				_ = pl.Poll(context.Background())
			}
			missing := ""
			for _, w := range ws {
				resp, err := p.sub.Get(context.Background(), &gpb.GetRequest{Prefix: &gpb.Path{Target: w.router},
					Path: []*gpb.Path{w.path}, Encoding: gpb.Encoding_PROTO})
				if err != nil || !proto.Equal(resp.GetNotification()[0].GetUpdate()[0].GetVal(), w.val) {
					missing = fmt.Sprintf("%s %s = %v (%v)", w.router, change.PathKey(w.path), w.val, err)
					break
				}
			}
			if missing == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 60s: not %s", missing)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	state := func(router, addr string, v *gpb.TypedValue, elems ...string) want {
		return want{router, change.NeighborPath("default", addr, append([]string{"state"}, elems...)...), v}
	}
	prefixes := func(router, addr, afi, leaf string, n uint64) want {
		return want{router, change.AfiSafiPath("default", addr, afi, "state", "prefixes", leaf), change.Uint(n)}
	}
	est := change.String("ESTABLISHED")
	check := func(t *testing.T) {
		paths := queryPaths(published)
		ietf := p.compare(t, []string{"ra", "rb"}, paths, len(paths))
		for _, want := range []string{`"afi-safi-name":"openconfig-bgp-types:IPV4_UNICAST"`, `"afi-safi-name":"openconfig-bgp-types:IPV6_UNICAST"`,
			`"identifier":"openconfig-policy-types:BGP"`, `"session-state":"ESTABLISHED"`, `"local-as":4200000011`} {
			if !strings.Contains(ietf, want) {
				t.Errorf("no JSON_IETF answer holds %s", want)
			}
		}
	}

	ready(state("ra", "10.78.0.2", est, "session-state"), state("ra", "fd00:78::2", est, "session-state"),
		state("rb", "10.78.0.1", est, "session-state"), state("rb", "fd00:78::1", est, "session-state"),
		prefixes("ra", "10.78.0.2", "IPV4_UNICAST", "received", 1), prefixes("ra", "10.78.0.2", "IPV4_UNICAST", "installed", 1),
		prefixes("ra", "fd00:78::2", "IPV6_UNICAST", "received", 1), prefixes("rb", "10.78.0.1", "IPV4_UNICAST", "received", 1))
	t.Run("up", check)

	gb.Gobgp(t, "neighbor", "10.78.0.1", "reset")
	ready(state("ra", "10.78.0.2", change.Uint(2), "established-transitions"), state("ra", "10.78.0.2", est, "session-state"),
		state("rb", "10.78.0.1", change.Uint(2), "established-transitions"), state("rb", "10.78.0.1", est, "session-state"))
	t.Run("after a reset", check)
}
