//go:build integration

package bmpbridge_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/bmpbridge"
	"github.com/meshd/meshd/internal/testenv"
)

// reach joins ns to the test's namespace with a veth of its own and a
// route to the harness's address through it, as a second router's
// network would be; it returns ns's address on that veth.
func (h *harness) reach(t *testing.T, ns *testenv.Netns) string {
	t.Helper()
	hostCIDR, nsCIDR, hostIP := hostNet()
	testenv.HostVeth(t, ns, hostCIDR, nsCIDR)
	ns.Run(t, "ip", "route", "add", h.ip+"/32", "via", hostIP)
	return strings.Split(nsCIDR, "/")[0]
}

// TestGobgpdBMPLimits has three gobgpd routers, each in its own network
// namespace, export BMP to a bridge with bmp.allow naming two of their
// addresses and bmp.max-routers 1:
//
//   - spk-a, from outside the allow-list, is refused at accept and
//     counted (gobgpd retries; one warning however often);
//   - spk-b, allowed, opens two BMP sessions at once (two bmp-servers
//     entries, to two listeners of the bridge: a router with a second
//     session, as in a reconnect race): both are served, counting as one
//     router;
//   - spk-c, allowed, is a second router: refused at its Initiation and
//     counted.
//
// On the code before, spk-a was served and spk-b's second session was
// refused (max-routers counted connections).
func TestGobgpdBMPLimits(t *testing.T) {
	a := testenv.NewNetns(t, "lima")
	b := testenv.NewNetns(t, "limb")
	c := testenv.NewNetns(t, "limc")
	// The harness's own veth goes to a; b and c reach it by their own.
	h := newHarnessWith(t, a, func(h *harness) bmpbridge.Config {
		return bmpbridge.Config{Allow: []string{h.reach(t, b) + "/32", h.reach(t, c)}, MaxRouters: 1}
	})
	// Each speaker's router ID is its BGP listen address; its neighbor
	// never answers: BMP needs no established peer.
	for i, ns := range []*testenv.Netns{a, b, c} {
		ns.AddAddr(t, "lo", fmt.Sprintf("10.0.%d.1/32", i+1))
	}
	ln2, err := net.Listen("tcp", net.JoinHostPort(h.ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = h.bridge.Serve(ctx, ln2) }()
	port2 := ln2.Addr().(*net.TCPAddr).Port

	testenv.StartGobgpd(t, a, gobgpdConf(4200000001, "10.0.1.1", "10.0.1.2", 4200000002, h.ip, h.port, "spk-a"))
	testenv.WaitFor(t, 30*time.Second, "spk-a refused as not allowed", func() bool {
		return h.metric(t, "meshd_bmp_refused_total", "reason", "not_allowed") >= 1
	})

	testenv.StartGobgpd(t, b, gobgpdConf(4200000011, "10.0.2.1", "10.0.2.2", 4200000012, h.ip, h.port, "spk-b")+bmpServer(h.ip, port2, "", 15, "spk-b"))
	testenv.WaitFor(t, 30*time.Second, "spk-b's two sessions", func() bool {
		return h.value("spk-b", "/meshd/router/state/bmp-connected") == "true" && h.metric(t, "meshd_bmp_sessions") == 2
	})

	testenv.StartGobgpd(t, c, gobgpdConf(4200000021, "10.0.3.1", "10.0.3.2", 4200000022, h.ip, h.port, "spk-c"))
	testenv.WaitFor(t, 30*time.Second, "spk-c refused over max-routers", func() bool {
		return h.metric(t, "meshd_bmp_refused_total", "reason", "max_routers") >= 1
	})

	if got := h.value("spk-b", "/meshd/router/state/bmp-connected"); got != "true" {
		t.Errorf("spk-b bmp-connected = %q after the refusals, want true", got)
	}
	for _, r := range []string{"spk-a", "spk-c"} {
		if got := h.value(r, "/meshd/router/state/bmp-connected"); got != "" {
			t.Errorf("%s bmp-connected = %q, want unset: refused routers get no state", r, got)
		}
	}
	if n := h.metric(t, "meshd_bmp_sessions"); n != 2 {
		t.Errorf("open sessions = %v, want spk-b's 2", n)
	}
	// Only the allowed routers' connections were taken at accept.
	if acc, ref := h.metric(t, "meshd_bmp_sessions_total", "result", "accepted"), h.metric(t, "meshd_bmp_refused_total", "reason", "max_routers"); acc != 2+ref {
		t.Errorf("accepted connections = %v, want spk-b's 2 + spk-c's %v", acc, ref)
	}
}
