package gnmitarget

import (
	"context"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc/metadata"
)

// Cluster is what the server needs to answer for a whole fleet that
// several replicas share (meshd's cluster mode): which routers another
// replica answers for, and a way to ask the others.
type Cluster interface {
	// Elsewhere reports whether another replica answers for target.
	Elsewhere(target string) bool
	// ForwardGet asks the other replicas, the one that owns target or
	// every one for "*" or "", marking the request as forwarded, and
	// returns their notifications.
	ForwardGet(ctx context.Context, target string, req *gpb.GetRequest) ([]*gpb.Notification, error)
}

// ForwardedKey is the metadata key of a request one replica forwards to
// another: the receiver answers for its own routers only and never
// forwards it again.
const ForwardedKey = "meshd-forwarded"

// WithCluster makes Get answer for the whole fleet of a cluster.
func WithCluster(c Cluster) Option { return func(o *options) { o.cluster = c } }

// forwarded reports whether ctx is a request another replica forwarded.
func forwarded(ctx context.Context) bool {
	md, ok := metadata.FromIncomingContext(ctx)
	return ok && len(md.Get(ForwardedKey)) > 0
}

// own keeps the targets this replica answers for: a router another
// replica owns may linger in this one's tree from before it moved.
func (s *Server) own(ts []*target) []*target {
	if s.o.cluster == nil {
		return ts
	}
	out := ts[:0:0]
	for _, t := range ts {
		if !s.o.cluster.Elsewhere(t.name) {
			out = append(out, t)
		}
	}
	return out
}
