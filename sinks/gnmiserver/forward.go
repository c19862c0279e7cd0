package gnmiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/meshd/meshd/gnmitarget"
	"github.com/meshd/meshd/stage"
)

// forwarder answers gnmitarget.Cluster for a replica of a cluster: it
// asks the other replicas' gNMI targets, as gNMI, with the credentials
// this one's serves with (a cluster's replicas share them).
type forwarder struct {
	place stage.Placement
	cfg   Config

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

// WithPlacement makes the gNMI target answer for the whole fleet of a
// cluster, forwarding to the replicas that own the routers.
func WithPlacement(p stage.Placement) Option {
	return func(s *Sink) { s.place = p }
}

func (f *forwarder) Elsewhere(target string) bool {
	_, remote := f.place.GNMIRoute(target)
	return remote
}

// Peers are the replicas a request for target goes to: its owner, or
// every other replica for "*" or "".
func (f *forwarder) Peers(target string) []string {
	if target != "" && target != "*" {
		if addr, remote := f.place.GNMIRoute(target); remote {
			return []string{addr}
		}
		return nil
	}
	return f.place.GNMIPeers()
}

// outgoing marks a request as forwarded, with this replica's credentials.
func (f *forwarder) outgoing(ctx context.Context) context.Context {
	ctx = metadata.AppendToOutgoingContext(ctx, gnmitarget.ForwardedKey, "1")
	if f.cfg.Username != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "username", f.cfg.Username, "password", f.cfg.Password)
	}
	return ctx
}

func (f *forwarder) ForwardSubscribe(ctx context.Context, target string, req *gpb.SubscribeRequest) ([]gpb.GNMI_SubscribeClient, error) {
	addrs := f.Peers(target)
	ctx = f.outgoing(ctx)
	var out []gpb.GNMI_SubscribeClient
	for _, addr := range addrs {
		cc, err := f.conn(addr)
		if err == nil {
			var st gpb.GNMI_SubscribeClient
			if st, err = gpb.NewGNMIClient(cc).Subscribe(ctx); err == nil {
				if err = st.Send(req); err == nil {
					out = append(out, st)
					continue
				}
			}
		}
		for _, st := range out {
			_ = st.CloseSend()
		}
		return nil, status.Errorf(codes.Unavailable, "replica at %s did not take the subscription: %v", addr, err)
	}
	return out, nil
}

func (f *forwarder) ForwardGet(ctx context.Context, target string, req *gpb.GetRequest) ([]*gpb.Notification, error) {
	addrs := f.Peers(target)
	ctx = f.outgoing(ctx)
	type answer struct {
		addr string
		ns   []*gpb.Notification
		err  error
	}
	answers := make(chan answer, len(addrs))
	for _, addr := range addrs {
		go func() {
			cc, err := f.conn(addr)
			if err != nil {
				answers <- answer{addr: addr, err: err}
				return
			}
			r, err := gpb.NewGNMIClient(cc).Get(ctx, req)
			answers <- answer{addr, r.GetNotification(), err}
		}()
	}
	var out []*gpb.Notification
	var firstErr error
	for range addrs {
		a := <-answers
		switch {
		case a.err == nil:
			out = append(out, a.ns...)
		case status.Code(a.err) == codes.NotFound:
			// Nothing there for this request: an answer.
		case firstErr == nil:
			// A fleet-wide answer without one replica's routers would
			// pass for whole: fail it, naming the replica.
			firstErr = status.Errorf(codes.Unavailable, "replica at %s did not answer: %v", a.addr, a.err)
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// conn is a client connection to a replica's gNMI target, made once.
func (f *forwarder) conn(addr string) (*grpc.ClientConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cc := f.conns[addr]; cc != nil {
		return cc, nil
	}
	creds := insecure.NewCredentials()
	if f.cfg.TLSCert != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if f.cfg.TLSCA != "" {
			pem, err := os.ReadFile(f.cfg.TLSCA)
			if err != nil {
				return nil, err
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("gnmi-server.tls-ca %s: no certificate", f.cfg.TLSCA)
			}
			// Mutual TLS: the other replicas ask for a client
			// certificate signed by the same CA.
			cert, err := tls.LoadX509KeyPair(f.cfg.TLSCert, f.cfg.TLSKey)
			if err != nil {
				return nil, err
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		creds = credentials.NewTLS(tc)
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, err
	}
	if f.conns == nil {
		f.conns = map[string]*grpc.ClientConn{}
	}
	f.conns[addr] = cc
	return cc, nil
}

func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, cc := range f.conns {
		cc.Close()
	}
}
