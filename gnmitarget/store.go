package gnmitarget

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/change"
)

// leafVal is one leaf's value as published; it is never modified after it
// is stored, so walkers may keep it after releasing the target's lock.
//
// A leaf holds neither its path nor its path's key string: both are built
// from the tree when a walk needs them (see path and key). Held per leaf,
// they were about 330 of the 500 bytes a leaf cost at 1,000 routers x 100
// neighbours, the store's largest part (bench/e2e, gnmi-1000x100 heap
// profile), while only subscriptions' initial syncs, Get and resyncs read
// them.
type leafVal struct {
	at  *node // the leaf's node
	v   cval
	ts  int64
	seq uint64
	// group is the leaf's deepest list entry (or the root); the leaves of
	// one list entry share a notification prefix of depth elements.
	group *node
	depth int
}

// node is a point in a target's tree. Children are indexed by element name
// and, for list entries, then by the canonical string of the element's
// keys, so a query with a concrete name and concrete keys needs no scan.
type node struct {
	kstr   string
	elem   *gpb.PathElem // its name is the node's, without a module prefix
	parent *node
	// kids are the children whose element has no keys (containers and
	// leaves, most of a tree's nodes), found by a scan while there are
	// few and through kidx once there are more; lists are the list
	// entries, by name and keys. A map per name for every child held
	// 1.1 GB of a 1,000 × 100 fleet's 1.9 GB here, and then a map of
	// kids per container still 230 MB.
	kids  []*node
	kidx  map[string]*node
	lists map[string]map[string]*node
	leaf  *leafVal
}

// scanKids is how many unkeyed children a node finds by a scan before it
// indexes them in a map: a scan of this many names is about as fast as a
// map lookup and costs no memory.
const scanKids = 12

func (n *node) name() string { return n.elem.GetName() }

// kid is n's unkeyed child called name.
func (n *node) kid(name string) *node {
	if n.kidx != nil {
		return n.kidx[name]
	}
	for _, c := range n.kids {
		if c.elem.Name == name {
			return c
		}
	}
	return nil
}

// child is n's child called name with keys ks ("" for none).
func (n *node) child(name, ks string) *node {
	if ks == "" {
		return n.kid(name)
	}
	return n.lists[name][ks]
}

func (n *node) addChild(c *node) {
	name := c.name()
	if c.kstr == "" {
		n.kids = append(n.kids, c)
		if n.kidx != nil {
			n.kidx[name] = c
		} else if len(n.kids) > scanKids {
			n.kidx = make(map[string]*node, len(n.kids))
			for _, k := range n.kids {
				n.kidx[k.name()] = k
			}
		}
		return
	}
	if n.lists == nil {
		n.lists = map[string]map[string]*node{}
	}
	byKey := n.lists[name]
	if byKey == nil {
		byKey = map[string]*node{}
		n.lists[name] = byKey
	}
	byKey[c.kstr] = c
}

func (n *node) dropChild(c *node) {
	name := c.name()
	if c.kstr == "" {
		for i, k := range n.kids {
			if k == c {
				last := len(n.kids) - 1
				n.kids[i] = n.kids[last]
				n.kids[last] = nil
				n.kids = n.kids[:last]
				break
			}
		}
		if n.kidx != nil {
			delete(n.kidx, name)
		}
		return
	}
	byKey := n.lists[name]
	delete(byKey, c.kstr)
	if len(byKey) == 0 {
		delete(n.lists, name)
	}
}

// hasKids reports whether n has any child.
func (n *node) hasKids() bool { return len(n.kids) > 0 || len(n.lists) > 0 }

// hasNamed reports whether n has a child called name.
func (n *node) hasNamed(name string) bool { return n.kid(name) != nil || len(n.lists[name]) > 0 }

// eachChild calls fn for every child of n, in no particular order.
func (n *node) eachChild(fn func(*node)) {
	for _, c := range n.kids {
		fn(c)
	}
	for _, byKey := range n.lists {
		for _, c := range byKey {
			fn(c)
		}
	}
}

// eachNamed calls fn for every child of n called name.
func (n *node) eachNamed(name string, fn func(*node)) {
	if c := n.kid(name); c != nil {
		fn(c)
	}
	for _, c := range n.lists[name] {
		fn(c)
	}
}

// names are the names of n's children, sorted.
func (n *node) names() []string {
	out := make([]string, 0, len(n.kids)+len(n.lists))
	for _, c := range n.kids {
		out = append(out, c.name())
	}
	for name := range n.lists {
		if n.kid(name) == nil {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

type target struct {
	name   string
	mu     sync.RWMutex
	root   node
	leaves int
	dead   bool // removed from the server's map; writers must look it up again
	// entryOps are the list entries the current write created or removed,
	// in order: their key leaves, which the store does not hold, appear
	// and vanish with them (see keyLeafEvents).
	entryOps []entryOp
}

type entryOp struct {
	n       *node
	removed bool
	ts      int64
}

// event is one leaf change handed to subscribers; val nil is a delete.
type event struct {
	target string
	key    string
	path   *gpb.Path
	val    *gpb.TypedValue
	ts     int64
	seq    uint64
	group  *node
	depth  int
	// keyLeaf marks a list entry's key leaf, which only subscriptions
	// naming it get (see subscription.keep).
	keyLeaf bool
}

func keyString(keys map[string]string) string {
	switch len(keys) {
	case 0:
		return ""
	case 1:
		for k, v := range keys {
			return k + "=" + v
		}
	}
	ks := make([]string, 0, len(keys))
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for i, k := range ks {
		if i > 0 {
			b.WriteByte(0)
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(keys[k])
	}
	return b.String()
}

// stripModule removes a YANG module prefix from an element name.
func stripModule(name string) string {
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// normalise returns p without origin, target and module prefixes; p itself
// when it has none of them.
func normalise(p *gpb.Path) *gpb.Path {
	needs := p.GetOrigin() != "" || p.GetTarget() != ""
	for _, e := range p.GetElem() {
		if strings.IndexByte(e.GetName(), ':') >= 0 {
			needs = true
			break
		}
	}
	if !needs {
		return p
	}
	out := &gpb.Path{Elem: make([]*gpb.PathElem, len(p.GetElem()))}
	for i, e := range p.GetElem() {
		out.Elem[i] = &gpb.PathElem{Name: stripModule(e.GetName()), Key: e.GetKey()}
	}
	return out
}

// path builds the leaf's path from the tree's elements, so the leaves of
// one list entry share their keys' PathElems (and maps) rather than each
// holding the copy its update came with.
func (l *leafVal) path() *gpb.Path { return nodePath(l.at) }

// key is the canonical string of the leaf's path.
func (l *leafVal) key() string { return change.PathKey(l.path()) }

// set stores a leaf; it reports false when the value is unchanged.
func (t *target) set(p *gpb.Path, v *gpb.TypedValue, ts int64, seq func() uint64) (*leafVal, bool) {
	n := &t.root
	group, depth := n, 0
	for i, e := range p.GetElem() {
		ks := keyString(e.GetKey())
		c := n.child(e.GetName(), ks)
		if c == nil {
			ce := e
			if ks == "" {
				ce = sharedElem(e.GetName())
			}
			c = &node{kstr: ks, elem: ce, parent: n}
			n.addChild(c)
			if len(e.GetKey()) > 0 && i < len(p.GetElem())-1 {
				t.entryOps = append(t.entryOps, entryOp{n: c})
			}
		}
		n = c
		if len(e.GetKey()) > 0 && i < len(p.GetElem())-1 {
			group, depth = c, i+1
		}
	}
	if n.leaf != nil && n.leaf.v.equal(v) {
		return nil, false
	}
	if n.leaf == nil {
		t.leaves++
	}
	n.leaf = &leafVal{at: n, v: compact(v), ts: ts, seq: seq(), group: group, depth: depth}
	return n.leaf, true
}

// remove deletes the node at p and everything below it, appending a delete
// event per removed leaf.
func (t *target) remove(p *gpb.Path, ts int64, evs []event) []event {
	n := &t.root
	for _, e := range p.GetElem() {
		c := n.child(e.GetName(), keyString(e.GetKey()))
		if c == nil {
			return evs
		}
		n = c
	}
	eachLeaf(n, func(l *leafVal) {
		lp := l.path()
		evs = append(evs, event{target: t.name, key: change.PathKey(lp), path: lp, ts: ts, group: l.group, depth: l.depth})
		t.leaves--
	})
	eachEntry(n, func(e *node) { t.entryOps = append(t.entryOps, entryOp{n: e, removed: true, ts: ts}) })
	if n == &t.root {
		t.root = node{}
		return evs
	}
	// Prune the node and every ancestor it leaves empty.
	for n.parent != nil {
		par := n.parent
		par.dropChild(n)
		if par.hasKids() || par.leaf != nil || par.parent == nil {
			break
		}
		if len(par.elem.GetKey()) > 0 {
			t.entryOps = append(t.entryOps, entryOp{n: par, removed: true, ts: ts})
		}
		n = par
	}
	return evs
}

// eachLeaf calls fn for every leaf at or below n, in no particular order.
func eachLeaf(n *node, fn func(*leafVal)) {
	if n.leaf != nil {
		fn(n.leaf)
	}
	n.eachChild(func(c *node) { eachLeaf(c, fn) })
}

// eachEntry calls fn for every list entry at or below n.
func eachEntry(n *node, fn func(*node)) {
	if len(n.elem.GetKey()) > 0 {
		fn(n)
	}
	n.eachChild(func(c *node) {
		if c.leaf == nil {
			eachEntry(c, fn)
		}
	})
}

// attached reports whether n is still in t's tree.
func (t *target) attached(n *node) bool {
	for ; n.parent != nil; n = n.parent {
		if n.parent.child(n.name(), n.kstr) != n {
			return false
		}
	}
	return n == &t.root
}

// matchNodes calls fn for every node matched by the pattern elems: "*" as a
// name matches any one element, "..." any number (zero included), a key
// value "*" or a key left out matches any value. A node is reported once
// even when "..." lets the pattern match it in more than one way.
//
// keyLeaf, when not nil, stands in for a child a list entry lacks: a
// concrete name that is one of the entry's keys matches the key leaf
// keyLeaf builds (OpenConfig's list/name leafref next to config/name).
func matchNodes(n *node, pat []*gpb.PathElem, keyLeaf func(entry *node, name string) *node, fn func(*node)) {
	var seen map[*node]bool
	if hasEllipsis(pat) {
		seen = map[*node]bool{}
	}
	matchFrom(n, pat, keyLeaf, func(m *node) {
		if seen != nil {
			if seen[m] {
				return
			}
			seen[m] = true
		}
		fn(m)
	})
}

func hasEllipsis(pat []*gpb.PathElem) bool {
	for _, e := range pat {
		if e.GetName() == "..." {
			return true
		}
	}
	return false
}

func matchFrom(n *node, pat []*gpb.PathElem, keyLeaf func(*node, string) *node, fn func(*node)) {
	if len(pat) == 0 {
		fn(n)
		return
	}
	e := pat[0]
	name := stripModule(e.GetName())
	switch name {
	case "...":
		if len(pat) == 1 {
			fn(n)
			return
		}
		matchFrom(n, pat[1:], keyLeaf, fn)
		n.eachChild(func(c *node) { matchFrom(c, pat, keyLeaf, fn) })
		return
	case "*":
		n.eachChild(func(c *node) {
			if keysMatch(e.GetKey(), c.elem.GetKey()) {
				matchFrom(c, pat[1:], keyLeaf, fn)
			}
		})
		return
	}
	if !n.hasNamed(name) {
		if keyLeaf != nil && len(e.GetKey()) == 0 {
			if _, isKey := n.elem.GetKey()[name]; isKey {
				if kl := keyLeaf(n, name); kl != nil {
					matchFrom(kl, pat[1:], nil, fn)
				}
			}
		}
		return
	}
	if len(e.GetKey()) > 0 && concreteKeys(e.GetKey()) {
		if c := n.child(name, keyString(e.GetKey())); c != nil {
			matchFrom(c, pat[1:], keyLeaf, fn)
			return
		}
	}
	// Wildcard keys, keys left out, or fewer keys than the list has.
	n.eachNamed(name, func(c *node) {
		if keysMatch(e.GetKey(), c.elem.GetKey()) {
			matchFrom(c, pat[1:], keyLeaf, fn)
		}
	})
}

func concreteKeys(keys map[string]string) bool {
	for _, v := range keys {
		if v == "*" {
			return false
		}
	}
	return true
}

func keysMatch(pat, have map[string]string) bool {
	for k, v := range pat {
		if v == "*" {
			continue
		}
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// matchPath reports whether a leaf path lies at or below something the
// pattern matches.
func matchPath(pat, elems []*gpb.PathElem) bool {
	for i, e := range pat {
		name := stripModule(e.GetName())
		if name == "..." {
			if i == len(pat)-1 {
				return true
			}
			for j := 0; j <= len(elems); j++ {
				if matchPath(pat[i+1:], elems[j:]) {
					return true
				}
			}
			return false
		}
		if len(elems) == 0 {
			return false
		}
		if name != "*" && name != elems[0].GetName() {
			return false
		}
		if !keysMatch(e.GetKey(), elems[0].GetKey()) {
			return false
		}
		elems = elems[1:]
	}
	return true
}

// elems holds one PathElem per element name without keys, shared by every
// target's tree: a fleet's containers and leaves have a few dozen names
// between them, and a PathElem of their own cost each about 80 bytes. The
// elements are read, never changed, once shared. The table is bounded, so
// a source sending endless names costs each its own element instead.
var elems = struct {
	sync.RWMutex
	m map[string]*gpb.PathElem
}{m: map[string]*gpb.PathElem{}}

const maxSharedElems = 4096

func sharedElem(name string) *gpb.PathElem {
	elems.RLock()
	e := elems.m[name]
	elems.RUnlock()
	if e != nil {
		return e
	}
	e = &gpb.PathElem{Name: strings.Clone(name)}
	elems.Lock()
	defer elems.Unlock()
	if old := elems.m[name]; old != nil {
		return old
	}
	if len(elems.m) < maxSharedElems {
		elems.m[e.Name] = e
	}
	return e
}

// pathLess orders two nodes of one tree by their paths, element by element
// from the root (name, then keys; an ancestor first), as sorting their
// path strings would but without building them.
func pathLess(a, b *node) bool {
	da, db := nodeDepth(a), nodeDepth(b)
	for ; da > db; da-- {
		if a.parent == b {
			return false
		}
		a = a.parent
	}
	for ; db > da; db-- {
		if b.parent == a {
			return true
		}
		b = b.parent
	}
	if a == b {
		return false
	}
	for a.parent != b.parent {
		a, b = a.parent, b.parent
	}
	if a.name() != b.name() {
		return a.name() < b.name()
	}
	return a.kstr < b.kstr
}

func nodeDepth(n *node) int {
	d := 0
	for ; n.parent != nil; n = n.parent {
		d++
	}
	return d
}

// sortLeaves sorts leaves by path (see pathLess).
func sortLeaves(ls []*leafVal) {
	sort.Slice(ls, func(i, j int) bool { return pathLess(ls[i].at, ls[j].at) })
}

// leafKey returns the canonical key of an update's path.
func leafKey(u *change.Update, p *gpb.Path) string {
	if u.Key != "" && p == u.Path {
		return u.Key
	}
	return change.PathKey(p)
}

// checkPattern refuses request paths whose matching cost could explode:
// "..." may appear once (each more multiplies the work), and paths are
// kept to a sane depth.
func checkPattern(elems []*gpb.PathElem) error {
	if len(elems) > 64 {
		return fmt.Errorf("path has %d elements, more than 64", len(elems))
	}
	n := 0
	for _, e := range elems {
		if e.GetName() == "..." {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("path has %d \"...\" elements; at most one is supported", n)
	}
	return nil
}
