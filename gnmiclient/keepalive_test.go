package gnmiclient

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// pingCounter is a TCP proxy in front of a plaintext gRPC server that
// counts the HTTP/2 PING frames the client sends (not the acks).
type pingCounter struct {
	addr  string
	pings atomic.Int32
}

func startPingCounter(t *testing.T, upstream string) *pingCounter {
	t.Helper()
	lis := listen(t)
	t.Cleanup(func() { lis.Close() })
	p := &pingCounter{addr: lis.Addr().String()}
	go func() {
		for {
			down, err := lis.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				down.Close()
				continue
			}
			t.Cleanup(func() { down.Close(); up.Close() })
			go io.Copy(down, up)
			go p.forward(up, down)
		}
	}()
	return p
}

// forward copies the client's bytes upstream frame by frame.
func (p *pingCounter) forward(up io.Writer, down io.Reader) {
	preface := make([]byte, 24) // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	if _, err := io.ReadFull(down, preface); err != nil {
		return
	}
	if _, err := up.Write(preface); err != nil {
		return
	}
	hdr := make([]byte, 9)
	for {
		if _, err := io.ReadFull(down, hdr); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(append([]byte{0}, hdr[:3]...)))
		body := make([]byte, n)
		if _, err := io.ReadFull(down, body); err != nil {
			return
		}
		if hdr[3] == 0x6 && hdr[4]&0x1 == 0 { // PING, not ACK
			p.pings.Add(1)
		}
		if _, err := up.Write(append(hdr, body...)); err != nil {
			return
		}
	}
}

// A quiet session is kept alive with gRPC keepalive pings at the target's
// keepalive-time (gRPC's floor is 10s); the default (5m) sends none in
// that time.
func TestKeepalive(t *testing.T) {
	quiet := func(ctx context.Context, conn int, req *gpb.SubscribeRequest, send func(*gpb.SubscribeResponse) error) error {
		send(syncResp)
		<-ctx.Done()
		return nil
	}
	// The server allows pings that often; gRPC servers refuse them more
	// often than every 5 minutes by default.
	allow := grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second})
	fast10, slow := startFake(t, quiet, allow), startFake(t, quiet, allow)
	p10, pDefault := startPingCounter(t, fast10.addr), startPingCounter(t, slow.addr)
	ka := fast(&Target{Address: p10.addr})
	ka.KeepaliveTime = 10 * time.Second
	ka.SyncTimeout = time.Minute
	def := fast(&Target{Address: pDefault.addr})
	def.SyncTimeout = time.Minute
	c, _ := runClient(t, Config{Targets: map[string]*Target{"ka": ka, "default": def}}, newCore(t))
	waitFor(t, 5*time.Second, "both synced", func() bool {
		return statusOf(c, "ka").State == StateSynced && statusOf(c, "default").State == StateSynced
	})
	// gRPC may ping once while the connection starts (its BDP probe):
	// count from here.
	base10, baseDef := p10.pings.Load(), pDefault.pings.Load()
	waitFor(t, 20*time.Second, "a keepalive ping", func() bool { return p10.pings.Load() > base10 })
	if n := pDefault.pings.Load() - baseDef; n != 0 {
		t.Errorf("the default keepalive-time (5m) sent %d pings within %v", n, 10*time.Second)
	}
	for _, name := range []string{"ka", "default"} {
		if st := statusOf(c, name); st.Connects != 1 || st.Failures != 0 {
			t.Errorf("%s: keepalives disturbed the session: %+v", name, st)
		}
	}
}
