package merge

import (
	"slices"
	"sort"
	"time"

	"github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ondatra/gnmi/oc"

	"github.com/meshd/meshd/change"
	mygot "github.com/meshd/meshd/ygot"
)

// lockRouters locks the routers the changes name, creating those not
// held yet.
func (c *Core) lockRouters(changes []change.Change) routerSet {
	// Nearly every batch is one router's (a notification's leaves): name
	// it without collecting and sorting every change's router.
	one := true
	for i := 1; i < len(changes) && one; i++ {
		one = changes[i].Router == changes[0].Router
	}
	if one && len(changes) > 0 {
		return c.lock([]string{changes[0].Router}, true)
	}
	names := make([]string, len(changes))
	for i := range changes {
		names[i] = changes[i].Router
	}
	return c.lock(names, true)
}

// lock locks the named routers (empty names ignored), in name order so
// that two calls naming the same routers cannot deadlock. Routers not held
// are created when create is set, else left out.
func (c *Core) lock(names []string, create bool) routerSet {
	slices.Sort(names)
	names = slices.Compact(names)
	locked := make(routerSet, 0, len(names))
	for _, n := range names {
		if n == "" {
			continue
		}
		for {
			r := c.router(n, create)
			if r == nil {
				break
			}
			r.mu.Lock()
			if !r.removed {
				locked = append(locked, r)
				break
			}
			// Emptied and dropped while this call waited: look again.
			r.mu.Unlock()
		}
	}
	return locked
}

// unlockRouters drops routers left with no leaves from the core, then
// unlocks them.
func (c *Core) unlockRouters(locked routerSet) {
	for _, r := range locked {
		if r.leaves.n == 0 && r.dropWhenEmpty {
			c.mu.Lock()
			if c.routers[r.name] == r {
				delete(c.routers, r.name)
				c.nrouters.Add(-1)
			}
			c.mu.Unlock()
			r.removed = true
		}
		r.dropWhenEmpty = false
		r.mu.Unlock()
	}
}

// routerSet is the routers one call holds locked: a handful at most, so
// a slice searched in order, not a map made for every call.
type routerSet []*router

func (rs routerSet) get(name string) *router {
	for _, r := range rs {
		if r.name == name {
			return r
		}
	}
	return nil
}

// router returns a router by name, creating it if create is set (else nil
// when there is none).
func (c *Core) router(name string, create bool) *router {
	c.mu.RLock()
	r := c.routers[name]
	c.mu.RUnlock()
	if r != nil || !create {
		return r
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r = c.routers[name]; r == nil {
		r = &router{name: name, oc: &oc.Root{}, meshd: &mygot.Root{}, leaves: newLeafStore(c.intern, &c.nleaves),
			released: map[change.Source]bool{}, nodes: map[string]nodeRef{}, nbrs: map[nbrID]*nbrInfo{}}
		c.routers[name] = r
		c.nrouters.Add(1)
	}
	return r
}

// RemoveRouter deletes everything held for a router and publishes the
// deletes.
func (c *Core) RemoveRouter(name string, src change.Source, at time.Time) {
	c.Apply([]change.Change{{Router: name, Path: &gnmi.Path{}, Time: at, Source: src}})
}

// ReleaseSource marks a source's values for a router as no longer live
// (its session ended): they stay in the tree, but any other source may
// now replace them. The source's next change makes it live again.
func (c *Core) ReleaseSource(routerName string, src change.Source) {
	if r := c.router(routerName, false); r != nil {
		r.mu.Lock()
		r.released[src] = true
		r.mu.Unlock()
	}
}

// Routers returns the names of the routers held, sorted.
func (c *Core) Routers() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]string, 0, len(c.routers))
	for n := range c.routers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
