package gnmiclient

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/ygot/ygot"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
)

// parsePath parses a gnmic-style path string, with an optional
// "origin:" before the first slash ("openconfig:/network-instances").
func parsePath(s string) (*gpb.Path, error) {
	origin := ""
	if i := strings.Index(s, ":/"); i > 0 && !strings.Contains(s[:i], "/") && !strings.Contains(s[:i], "[") {
		origin, s = s[:i], s[i+1:]
	}
	p, err := ygot.StringToStructuredPath(s)
	if err != nil {
		return nil, fmt.Errorf("path %q: %v", s, err)
	}
	p.Origin = origin
	return p, nil
}

// BuildRequest builds one SubscribeRequest for subscriptions: one
// SubscriptionList, so a target has one Subscribe session whatever it
// subscribes to. Each subscription's prefix is folded into its paths.
// encoding, when not empty, overrides the subscriptions' encoding.
func BuildRequest(subs []*Subscription, mode, encoding string) (*gpb.SubscribeRequest, error) {
	if len(subs) == 0 {
		return nil, fmt.Errorf("no subscriptions")
	}
	lm, err := parseMode(mode)
	if err != nil {
		return nil, err
	}
	if encoding == "" {
		encoding = subs[0].Encoding
	}
	enc, err := ParseEncoding(encoding)
	if err != nil {
		return nil, err
	}
	list := &gpb.SubscriptionList{Mode: lm, Encoding: enc, UpdatesOnly: true}
	for _, s := range subs {
		if s.Target != "" && list.Prefix == nil {
			list.Prefix = &gpb.Path{Target: s.Target}
		}
		list.UpdatesOnly = list.UpdatesOnly && s.UpdatesOnly
		if s.Qos != nil && list.Qos == nil {
			list.Qos = &gpb.QOSMarking{Marking: *s.Qos}
		}
		for _, m := range s.Models {
			list.UseModels = append(list.UseModels, &gpb.ModelData{Name: m})
		}
		sm, err := parseStreamMode(s.StreamMode)
		if err != nil {
			return nil, err
		}
		var prefix *gpb.Path
		if s.Prefix != "" {
			if prefix, err = parsePath(s.Prefix); err != nil {
				return nil, err
			}
		}
		for _, ps := range s.Paths {
			p, err := parsePath(ps)
			if err != nil {
				return nil, err
			}
			if prefix != nil {
				p.Elem = append(append([]*gpb.PathElem(nil), prefix.GetElem()...), p.GetElem()...)
				if p.Origin == "" {
					p.Origin = prefix.GetOrigin()
				}
			}
			sub := &gpb.Subscription{Path: p, SuppressRedundant: s.SuppressRedundant}
			if lm == gpb.SubscriptionList_STREAM {
				sub.Mode = sm
				sub.SampleInterval = uint64(s.SampleInterval.Nanoseconds())
				sub.HeartbeatInterval = uint64(s.HeartbeatInterval.Nanoseconds())
			}
			list.Subscription = append(list.Subscription, sub)
		}
	}
	return &gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: list}}, nil
}

// transportCredentials returns the target's TLS settings: server
// verification against tls-ca (or the system roots), a client certificate
// for mTLS, skip-verify, or no TLS at all with insecure.
func transportCredentials(t *Target) (credentials.TransportCredentials, error) {
	if isTrue(t.Insecure) {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: isTrue(t.SkipVerify), //nolint:gosec // the operator asked for it per target
		ServerName:         t.TLSServerName,
	}
	if t.TLSCA != "" {
		pem, err := os.ReadFile(t.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls-ca %s: no PEM certificate in it", t.TLSCA)
		}
		cfg.RootCAs = pool
	}
	if t.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(t.TLSCert, t.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("tls-cert/tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(cfg), nil
}

// Dial opens a gRPC client connection to a target and returns it with a
// context carrying the target's credentials as gNMI metadata (username,
// password), for every RPC made with it.
func Dial(ctx context.Context, t *Target) (*grpc.ClientConn, context.Context, error) {
	creds, err := transportCredentials(t)
	if err != nil {
		return nil, nil, err
	}
	ka, kto := t.KeepaliveTime, t.KeepaliveTimeout
	if ka == 0 {
		ka = 5 * time.Minute
	}
	if kto == 0 {
		kto = 20 * time.Second
	}
	to := t.Timeout
	if to == 0 {
		to = 10 * time.Second
	}
	conn, err := grpc.NewClient(t.Address,
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: ka, Timeout: kto, PermitWithoutStream: false}),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.DefaultConfig, MinConnectTimeout: to}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cmp.Or(t.MaxMsgSize, DefaultMaxMsgSize))),
		// A fixed flow-control window bounds what one target can have
		// buffered in meshd: gRPC's default grows it (BDP estimation) up
		// to megabytes a connection, which a fleet syncing at once turns
		// into gigabytes. 128 KiB still moves ~1.3 MB/s over a 100 ms
		// path, far more than BGP state needs.
		grpc.WithInitialWindowSize(recvWindow),
		grpc.WithInitialConnWindowSize(recvWindow),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("target %s: %w", t.Name, err)
	}
	if t.Username != "" || t.Password != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "username", t.Username, "password", t.Password)
	}
	return conn, ctx, nil
}

// recvWindow is the gRPC flow-control window for each target's stream and
// connection.
const recvWindow = 128 << 10
