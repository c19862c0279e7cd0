package cluster

import "sort"

// placement is what the last reconcile read: each target's owner and
// each member's advertised addresses. It answers where a router's BMP
// is joined and which gNMI target answers for it (stage.Placement).
type placement struct {
	owner           map[string]string
	bmp, gnmi, http map[string]string // member → advertised address
}

// Placed reports whether this replica knows where each router belongs:
// false until its first reconcile after membership settled. Before then
// it cannot tell a router it owns from one another replica does.
func (m *Member) Placed() bool { return m.placed.Load() != nil }

// BMPRoute says which replica joins router's BMP (stage.Placement): the
// owner of the gNMI target of that name, when it is another replica that
// advertises a BMP address; otherwise this one.
func (m *Member) BMPRoute(router string) (string, bool) {
	return m.route(router, func(p *placement) map[string]string { return p.bmp })
}

// GNMIRoute says which replica's gNMI target answers for router
// (stage.Placement), as BMPRoute.
func (m *Member) GNMIRoute(router string) (string, bool) {
	return m.route(router, func(p *placement) map[string]string { return p.gnmi })
}

func (m *Member) route(router string, addrs func(*placement) map[string]string) (string, bool) {
	p := m.placed.Load()
	if p == nil {
		return "", false
	}
	o := p.owner[router]
	if o == "" || o == m.cfg.Name {
		return "", false
	}
	addr := addrs(p)[o]
	return addr, addr != ""
}

// GNMIPeers are the other live members' gNMI targets (stage.Placement).
func (m *Member) GNMIPeers() []string {
	return m.peers(func(p *placement) map[string]string { return p.gnmi })
}

// HTTPPeers are the other live members' HTTP listeners, where the
// fleet-wide /api/sessions reads each one's own sessions.
func (m *Member) HTTPPeers() []string {
	return m.peers(func(p *placement) map[string]string { return p.http })
}

func (m *Member) peers(addrs func(*placement) map[string]string) []string {
	p := m.placed.Load()
	if p == nil {
		return nil
	}
	var out []string
	for name, addr := range addrs(p) {
		if name != m.cfg.Name && addr != "" {
			out = append(out, addr)
		}
	}
	sort.Strings(out)
	return out
}
