package testenv

import (
	"net"
	"testing"
	"time"

	"github.com/openconfig/gnmi/cache"
	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/gnmi/subscribe"
	"google.golang.org/grpc"
)

// CacheTarget is openconfig/gnmi's cache behind its subscribe server: a
// real gNMI target for Subscribe (ONCE, POLL and STREAM ON_CHANGE), holding
// what the test puts in it. It has no SAMPLE mode and no Get.
type CacheTarget struct {
	Name  string
	Cache *cache.Cache
	Sub   *subscribe.Server
}

// NewCacheTarget makes an empty cache for one target.
func NewCacheTarget(t testing.TB, name string) *CacheTarget {
	t.Helper()
	ch := cache.New([]string{name})
	sub, err := subscribe.NewServer(ch)
	if err != nil {
		t.Fatal(err)
	}
	ch.SetClient(sub.Update)
	return &CacheTarget{Name: name, Cache: ch, Sub: sub}
}

// Put stores each update as a notification of its own, stamped now.
func (c *CacheTarget) Put(t testing.TB, ups ...*gpb.Update) {
	t.Helper()
	for _, u := range ups {
		n := &gpb.Notification{Timestamp: time.Now().UnixNano(), Prefix: &gpb.Path{Target: c.Name}, Update: []*gpb.Update{u}}
		if err := c.Cache.GnmiUpdate(n); err != nil {
			t.Fatal(err)
		}
	}
}

// Sync marks the target's initial state complete, so subscribers get
// their sync_response.
func (c *CacheTarget) Sync() { c.Cache.Sync(c.Name) }

// ServeGNMI serves srv over gRPC on a loopback port until the test ends
// and returns the address.
func ServeGNMI(t testing.TB, srv gpb.GNMIServer, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(opts...)
	gpb.RegisterGNMIServer(g, srv)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}
