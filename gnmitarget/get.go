package gnmitarget

import (
	"context"
	"sort"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshd/meshd/change"
)

// Get answers from the store: PROTO gives one scalar update per leaf,
// JSON and JSON_IETF one update per matched node holding its subtree.
// Type CONFIG keeps leaves under a "config" container, STATE and
// OPERATIONAL the others, ALL everything.
//
// In a cluster (WithCluster) it answers for the routers this replica
// owns and asks the other replicas for theirs: the owner of the target
// named, or every replica for "*". A forwarded request is answered for
// this replica's routers only.
func (s *Server) Get(ctx context.Context, req *gpb.GetRequest) (resp *gpb.GetResponse, err error) {
	defer func() { s.m.rpcs.WithLabelValues("Get", status.Code(err).String()).Inc() }()
	enc := req.GetEncoding()
	if !encodingOK(enc) {
		return nil, status.Errorf(codes.Unimplemented, "encoding %v not supported; use JSON, JSON_IETF or PROTO", enc)
	}
	if len(req.GetUseModels()) > 0 {
		return nil, status.Error(codes.Unimplemented, "use_models is not supported")
	}
	keep, err := typeFilter(req.GetType())
	if err != nil {
		return nil, err
	}
	pre := req.GetPrefix()
	tname := pre.GetTarget()
	targets := s.own(s.selectTargets(tname))
	var remote []*gpb.Notification
	if s.o.cluster != nil && !forwarded(ctx) && (tname == "" || tname == "*" || len(targets) == 0) {
		if remote, err = s.o.cluster.ForwardGet(ctx, tname, req); err != nil {
			return nil, err
		}
		if len(targets) == 0 && len(remote) > 0 {
			return &gpb.GetResponse{Notification: remote}, nil
		}
	}
	if len(targets) == 0 {
		if tname != "" && tname != "*" {
			return nil, status.Errorf(codes.NotFound, "target %q not found", tname)
		}
		return nil, status.Error(codes.NotFound, "no targets")
	}
	paths := req.GetPath()
	if len(paths) == 0 {
		paths = []*gpb.Path{{}}
	}
	resp = &gpb.GetResponse{}
	for _, p := range paths {
		if len(p.GetElement()) > 0 {
			return nil, status.Error(codes.InvalidArgument, "path element strings (deprecated) are not supported; use elem")
		}
		elems := joinElems(pre, p)
		if err := checkPattern(elems); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		found := false
		if s.claims(elems) {
			want := func(name string) bool {
				if s.o.cluster != nil && s.o.cluster.Elsewhere(name) {
					return false
				}
				return tname == "" || tname == "*" || tname == name
			}
			if req.GetType() == gpb.GetRequest_CONFIG {
				want = func(string) bool { return false } // the RIBs are state
			}
			err := s.o.subtree.Walk(ctx, want, [][]*gpb.PathElem{elems}, false, func(n *gpb.Notification) error {
				n, err := s.encodeNotification(n, enc)
				if err != nil {
					return err
				}
				resp.Notification = append(resp.Notification, n)
				found = true
				return nil
			})
			if err != nil {
				return nil, err
			}
			if !found && len(remote) == 0 {
				return nil, status.Errorf(codes.NotFound, "no data at %s for target %q", change.PathKey(&gpb.Path{Elem: elems}), tname)
			}
			continue
		}
		for _, t := range targets {
			n, err := s.getTarget(t, elems, enc, req.GetType(), keep)
			if err != nil {
				return nil, err
			}
			if n != nil {
				found = true
				resp.Notification = append(resp.Notification, n)
			}
		}
		if !found && len(remote) == 0 {
			return nil, status.Errorf(codes.NotFound, "no data at %s for target %q", change.PathKey(&gpb.Path{Elem: elems}), tname)
		}
	}
	resp.Notification = append(resp.Notification, remote...)
	return resp, nil
}

func typeFilter(t gpb.GetRequest_DataType) (func(*leafVal) bool, error) {
	switch t {
	case gpb.GetRequest_ALL:
		return nil, nil
	case gpb.GetRequest_CONFIG:
		return func(l *leafVal) bool { return nodeUnderConfig(l.at) }, nil
	case gpb.GetRequest_STATE, gpb.GetRequest_OPERATIONAL:
		return func(l *leafVal) bool { return !nodeUnderConfig(l.at) }, nil
	}
	return nil, status.Errorf(codes.InvalidArgument, "unknown data type %v", t)
}

func underConfig(p *gpb.Path) bool {
	for _, e := range p.GetElem() {
		if e.GetName() == "config" {
			return true
		}
	}
	return false
}

// getTarget builds one target's notification for one path, nil if nothing
// matched.
func (s *Server) getTarget(t *target, elems []*gpb.PathElem, enc gpb.Encoding, typ gpb.GetRequest_DataType, keep func(*leafVal) bool) (*gpb.Notification, error) {
	n := &gpb.Notification{Prefix: &gpb.Path{Target: t.name}}
	var rendered []renderAt
	func() {
		t.mu.RLock()
		defer t.mu.RUnlock()
		s.matchForGet(t, n, elems, enc, keep, &rendered)
	}()
	for _, ra := range rendered {
		b, ok, err := s.o.render(t.name, ra.path, enc == gpb.Encoding_JSON_IETF, typ)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "rendering %s of target %q: %v", change.PathKey(ra.path), t.name, err)
		}
		if !ok {
			continue // gone since it matched
		}
		n.Update = append(n.Update, &gpb.Update{Path: ra.path, Val: jsonValue(b, enc == gpb.Encoding_JSON_IETF)})
		n.Timestamp = max(n.Timestamp, ra.ts)
	}
	if len(n.Update) == 0 {
		return nil, nil
	}
	return n, nil
}

// matchForGet adds to n what the nodes elems matches hold (PROTO leaves
// and JSON renders of the served tree), and to rendered the nodes a
// Renderer renders; t.mu is held.
func (s *Server) matchForGet(t *target, n *gpb.Notification, elems []*gpb.PathElem, enc gpb.Encoding, keep func(*leafVal) bool, rendered *[]renderAt) {
	matchNodes(&t.root, elems, s.keyLeaf, func(nd *node) {
		if enc == gpb.Encoding_PROTO {
			var ls []*leafVal
			eachLeaf(nd, func(l *leafVal) {
				if keep == nil || keep(l) {
					ls = append(ls, l)
				}
			})
			sortLeaves(ls)
			for _, l := range ls {
				n.Update = append(n.Update, &gpb.Update{Path: l.path(), Val: l.v.typed()})
				n.Timestamp = max(n.Timestamp, l.ts)
			}
			return
		}
		if s.o.render != nil {
			// Rendered by getTarget once this target's lock is let go:
			// the renderer reads the store it belongs to under that
			// store's own lock, which a writer holds while it writes here.
			latest, hit := int64(0), false
			eachLeaf(nd, func(l *leafVal) {
				if keep == nil || keep(l) {
					latest, hit = max(latest, l.ts), true
				}
			})
			if hit {
				*rendered = append(*rendered, renderAt{path: nodePath(nd), ts: latest})
			}
			return
		}
		r := renderer{s: s, ietf: enc == gpb.Encoding_JSON_IETF, keep: keep}
		path := nodePath(nd)
		v := r.render(nd, s.entryFor(path.GetElem()), true)
		if v == nil {
			return
		}
		b, err := marshalJSON(v)
		if err != nil {
			return
		}
		n.Update = append(n.Update, &gpb.Update{Path: path, Val: jsonValue(b, r.ietf)})
		n.Timestamp = max(n.Timestamp, r.latest)
	})
}

// renderAt is a node a Renderer renders: its path and its newest leaf's
// time.
type renderAt struct {
	path *gpb.Path
	ts   int64
}

func jsonValue(b []byte, ietf bool) *gpb.TypedValue {
	if ietf {
		return &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: b}}
	}
	return &gpb.TypedValue{Value: &gpb.TypedValue_JsonVal{JsonVal: b}}
}

// nodeUnderConfig is underConfig of n's path, without building it.
func nodeUnderConfig(n *node) bool {
	for ; n.parent != nil; n = n.parent {
		if n.elem.GetName() == "config" {
			return true
		}
	}
	return false
}

// appendNodeElems appends the elements of n's path to elems.
func appendNodeElems(elems []*gpb.PathElem, n *node) []*gpb.PathElem {
	d := nodeDepth(n)
	start := len(elems)
	for range d {
		elems = append(elems, nil)
	}
	for i := start + d - 1; i >= start; i, n = i-1, n.parent {
		elems[i] = n.elem
	}
	return elems
}

func nodePath(n *node) *gpb.Path {
	return &gpb.Path{Elem: appendNodeElems(make([]*gpb.PathElem, 0, nodeDepth(n)), n)}
}

func sortTargets(ts []*target) {
	sort.Slice(ts, func(i, j int) bool { return ts[i].name < ts[j].name })
}
