package gnmitarget

import (
	"context"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Subtree serves paths the store does not hold: the routers' RIBs
// (ribview), too large to copy into the store and read from their
// source when asked. A path it Claims goes to it alone, in Get and in
// every subscription mode but SAMPLE.
type Subtree interface {
	// Claims reports whether a path (prefix and path joined, without
	// module prefixes) is the subtree's.
	Claims(pattern []*gpb.PathElem) bool
	// Walk sends the current values under patterns of the targets want
	// accepts, in PROTO; with deleteFirst each target's part starts
	// with a delete of each pattern.
	Walk(ctx context.Context, want func(string) bool, patterns [][]*gpb.PathElem, deleteFirst bool, send func(*gpb.Notification) error) error
	// Watch starts following the changes under patterns.
	Watch(want func(string) bool, patterns [][]*gpb.PathElem) SubtreeWatch
}

// SubtreeWatch is one subscription's queue of a Subtree's changes.
type SubtreeWatch interface {
	// Ready is signalled when changes wait.
	Ready() <-chan struct{}
	// Drain appends the waiting notifications; lost reports that some
	// were dropped, and the subscriber is to be walked again.
	Drain(buf []*gpb.Notification) (out []*gpb.Notification, lost bool)
	Close()
}

// WithSubtree serves st's paths beside the store.
func WithSubtree(st Subtree) Option { return func(o *options) { o.subtree = st } }

// claims reports whether the subtree serves elems.
func (s *Server) claims(elems []*gpb.PathElem) bool {
	return s.o.subtree != nil && s.o.subtree.Claims(elems)
}

// subtreeSend returns a send for a Subtree's notifications on a stream in
// the subscription's encoding.
func (s *Server) subtreeSend(stream gpb.GNMI_SubscribeServer, enc gpb.Encoding) func(*gpb.Notification) error {
	return func(n *gpb.Notification) error {
		n, err := s.encodeNotification(n, enc)
		if err != nil {
			return err
		}
		s.m.sent.Add(float64(len(n.GetUpdate()) + len(n.GetDelete())))
		if b, ok := encodeResponse(n); ok {
			return stream.SendMsg(&preEncoded{b})
		}
		return stream.Send(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: n}})
	}
}

// encodeNotification returns n with its values in enc: n itself for
// PROTO, else a copy (a Subtree may share n between subscribers).
func (s *Server) encodeNotification(n *gpb.Notification, enc gpb.Encoding) (*gpb.Notification, error) {
	if enc == gpb.Encoding_PROTO || len(n.GetUpdate()) == 0 {
		return n, nil
	}
	out := &gpb.Notification{Timestamp: n.Timestamp, Prefix: n.Prefix, Delete: n.Delete, Update: make([]*gpb.Update, len(n.Update))}
	full := &gpb.Path{}
	for i, u := range n.Update {
		full.Elem = append(append(full.Elem[:0], n.GetPrefix().GetElem()...), u.GetPath().GetElem()...)
		v, err := s.encodeLeaf(full, u.GetVal(), enc)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "encoding %s: %v", full, err)
		}
		out.Update[i] = &gpb.Update{Path: u.Path, Val: v}
	}
	return out, nil
}
