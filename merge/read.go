package merge

import (
	"sort"
	"time"

	"github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ondatra/gnmi/oc"

	"github.com/meshd/meshd/change"
	mygot "github.com/meshd/meshd/ygot"
)

// Snapshot returns every leaf held for a router (all routers when name is
// empty) as updates, sorted by router and path.
func (c *Core) Snapshot(name string) []change.Update {
	var rs []*router
	c.mu.RLock()
	for rn, r := range c.routers {
		if name == "" || rn == name {
			rs = append(rs, r)
		}
	}
	c.mu.RUnlock()
	var out []change.Update
	for _, r := range rs {
		rn := r.name
		r.mu.Lock()
		r.leaves.eachUnder("/", func(k string, l *leaf) {
			p, err := change.KeyPath(k)
			if err != nil {
				c.log.Error("merge: unparsable leaf key", "router", rn, "key", k, "err", err)
				return
			}
			out = append(out, change.Update{Router: rn, Path: p, Key: k, Value: l.typed(), Time: l.time(), Source: l.src})
		})
		r.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Router != out[j].Router {
			return out[i].Router < out[j].Router
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// Leaf returns the value, time and source of one leaf.
func (c *Core) Leaf(routerName string, p *gnmi.Path) (*gnmi.TypedValue, time.Time, change.Source, bool) {
	r := c.router(routerName, false)
	if r == nil {
		return nil, time.Time{}, 0, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.leaves.getString(change.PathKey(normalise(p)))
	if l == nil {
		return nil, time.Time{}, 0, false
	}
	return l.typed(), l.time(), l.src, true
}

// View calls fn with a router's OpenConfig and meshd roots under the
// router's lock; fn must not keep or change them.
func (c *Core) View(routerName string, fn func(*oc.Root, *mygot.Root)) bool {
	r := c.router(routerName, false)
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(r.oc, r.meshd)
	return true
}
