package merge

import (
	"sort"
	"strings"
	"time"

	"github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ondatra/gnmi/oc"
	"github.com/openconfig/ygot/ygot"

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
			if u, ok := c.leafUpdate(rn, k, l); ok {
				out = append(out, u)
			}
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

// Trees calls fn, under the router's lock, with the router's roots as
// the generated structs (the OpenConfig root, then meshd's) and the
// config leaves at or below configUnder (none when it is nil), which the
// compressed OpenConfig structs keep only as shadow paths, as updates
// with their keys. fn must not keep or change any of them.
func (c *Core) Trees(routerName string, configUnder *gnmi.Path, fn func(roots []ygot.GoStruct, config []change.Update)) bool {
	r := c.lockHeld(routerName)
	if r == nil {
		return false
	}
	defer r.mu.Unlock()
	var config []change.Update
	if configUnder != nil {
		r.leaves.eachUnder(change.PathKey(normalise(configUnder)), func(k string, l *leaf) {
			if !strings.Contains(k, "/config/") {
				return
			}
			if u, ok := c.leafUpdate(routerName, k, l); ok {
				config = append(config, u)
			}
		})
	}
	fn([]ygot.GoStruct{r.oc, r.meshd}, config)
	return true
}

// leafUpdate is a held leaf as an update, with its path parsed back from
// its key.
func (c *Core) leafUpdate(router, key string, l *leaf) (change.Update, bool) {
	p, err := change.KeyPath(key)
	if err != nil {
		c.log.Error("merge: unparsable leaf key", "router", router, "key", key, "err", err)
		return change.Update{}, false
	}
	return change.Update{Router: router, Path: p, Key: key, Value: l.typed(), Time: l.time(), Source: l.src}, true
}

// lockHeld returns the named router locked, nil if it is not held (or
// was removed while this waited for its lock).
func (c *Core) lockHeld(name string) *router {
	r := c.router(name, false)
	if r == nil {
		return nil
	}
	r.mu.Lock()
	if r.removed {
		r.mu.Unlock()
		return nil
	}
	return r
}
