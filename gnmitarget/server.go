package gnmitarget

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/goyang/pkg/yang"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/change"
)

// GNMIVersion is the gNMI specification version served.
const GNMIVersion = "0.10.0"

// Option configures a Server.
type Option func(*options)

type options struct {
	certFile, keyFile, caFile string
	user, pass                string
	models                    []*gpb.ModelData
	schemas                   []*yang.Entry
	enumTypes                 []map[string][]reflect.Type
	render                    Renderer
	identityModules           []map[string]map[string]string
	reg                       prometheus.Registerer
	log                       *slog.Logger
	maxSubs                   int
	maxSubsTotal              int
	maxRecvMsg, maxSendMsg    int
	queueSize                 int
	queueBytes                int64
	minSample                 time.Duration
	cluster                   Cluster
	subtree                   Subtree
}

// WithTLS serves over TLS with the given certificate and key files; when
// clientCA is not empty, clients must present a certificate it signed
// (mutual TLS).
func WithTLS(certFile, keyFile, clientCA string) Option {
	return func(o *options) { o.certFile, o.keyFile, o.caFile = certFile, keyFile, clientCA }
}

// WithCredentials requires every RPC to carry "username" and "password"
// metadata equal to these.
func WithCredentials(user, pass string) Option {
	return func(o *options) { o.user, o.pass = user, pass }
}

// WithModels sets the models Capabilities reports.
func WithModels(models ...*gpb.ModelData) Option {
	return func(o *options) { o.models = append(o.models, models...) }
}

// WithSchema gives the schema roots (a generated package's root
// yang.Entry) used to type JSON_IETF values and qualify top-level names.
func WithSchema(roots ...*yang.Entry) Option {
	return func(o *options) { o.schemas = append(o.schemas, roots...) }
}

// WithEnumTypes gives generated packages' ΛEnumTypes maps (schema path to
// the Go enum types of the leaf there). With them JSON_IETF writes an
// identityref value as "module:NAME" (RFC 7951 §6.8), the module being the
// identity's defining module from the enum's ΛMap: what ygot's own RFC 7951
// encoder (EmitJSON, ConstructIETFJSON) writes for the same GoStruct field.
func WithEnumTypes(maps ...map[string][]reflect.Type) Option {
	return func(o *options) { o.enumTypes = append(o.enumTypes, maps...) }
}

// Renderer renders the node at path of a target as one JSON value for
// Get: RFC 7951 (JSON_IETF) when ietf is set, else gNMI's JSON. typ is
// the Get's data type. ok is false when the target holds nothing there
// (any more).
type Renderer func(target string, path *gpb.Path, ietf bool, typ gpb.GetRequest_DataType) (json []byte, ok bool, err error)

// WithRenderer has Get's JSON and JSON_IETF values rendered by r from the
// store the served tree mirrors, instead of from the served tree's own
// leaves: the collector's gNMI server renders them with ygot from the
// merge core's structs. The served tree still finds what a path matches,
// and each matched node's time.
func WithRenderer(r Renderer) Option { return func(o *options) { o.render = r } }

// WithRegisterer registers the server's metrics with reg.
func WithRegisterer(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithMaxSubscriptionsPerClient caps the concurrent Subscribe RPCs of one
// client (its address, with its username when credentials are in use); 0
// is no cap.
func WithMaxSubscriptionsPerClient(n int) Option { return func(o *options) { o.maxSubs = n } }

// WithMaxSubscriptions caps the concurrent Subscribe RPCs of all clients
// together; 0 is no cap.
func WithMaxSubscriptions(n int) Option { return func(o *options) { o.maxSubsTotal = n } }

// WithMaxRecvMsgSize caps the size of a request message (gRPC's
// MaxRecvMsgSize); 0 keeps gRPC's default, 4 MiB.
func WithMaxRecvMsgSize(n int) Option { return func(o *options) { o.maxRecvMsg = n } }

// WithMaxSendMsgSize caps the size of a response message (gRPC's
// MaxSendMsgSize): a notification or GetResponse over it ends the RPC
// with codes.ResourceExhausted naming the limit; 0 keeps gRPC's default
// (2 GiB, no practical cap).
func WithMaxSendMsgSize(n int) Option { return func(o *options) { o.maxSendMsg = n } }

// WithQueueSize sets how many distinct leaves a subscriber's queue holds
// before it overflows into a resynchronisation (default 65536).
func WithQueueSize(n int) Option { return func(o *options) { o.queueSize = n } }

// WithQueueBytes bounds the memory a subscriber's queue keeps alive, by
// an estimate of the changes' size (default 16 MiB; 0: no bound): past
// it the queue overflows into a resynchronisation as past WithQueueSize.
// A queued leaf keeps the whole write it came in alive, so a subscriber
// that stopped reading would otherwise hold up to a queue of writes.
func WithQueueBytes(n int64) Option { return func(o *options) { o.queueBytes = n } }

// WithMinSampleInterval sets the shortest SAMPLE interval served (default
// 1s); shorter requests, and 0, are served at this interval.
func WithMinSampleInterval(d time.Duration) Option { return func(o *options) { o.minSample = d } }

// Server is a gNMI target over a leaf store. It is safe for concurrent use.
type Server struct {
	gpb.UnimplementedGNMIServer
	o   options
	m   *metrics
	log *slog.Logger

	mu      sync.RWMutex
	targets map[string]*target
	wmu     sync.Mutex // serialises writers (see write)

	seq  atomic.Uint64
	subs atomic.Pointer[[]*subscription]
	subM sync.Mutex // serialises writers of subs

	clientsMu sync.Mutex
	clients   map[string]int
	subsTotal int

	ctx    context.Context // cancelled by Stop/GracefulStop: ends streams
	cancel context.CancelFunc

	grpcMu sync.Mutex
	grpc   *grpc.Server

	noShare bool // benchmarks: build every notification per subscriber

	root       *yang.Entry // the schemas' roots joined (entryFor)
	idents     identities
	identCache sync.Map // *yang.Entry → map[string]string (nil: no identityref)
}

// New returns a server; it loads the TLS files given with WithTLS.
func New(opts ...Option) (*Server, error) {
	o := options{queueSize: 1 << 16, queueBytes: 16 << 20, minSample: time.Second, log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.queueSize < 1 {
		return nil, errors.New("gnmitarget: queue size must be > 0")
	}
	if o.queueBytes < 0 {
		return nil, errors.New("gnmitarget: queue bytes must be >= 0")
	}
	if (o.user == "") != (o.pass == "") {
		return nil, errors.New("gnmitarget: credentials need both a username and a password")
	}
	if o.maxSubs < 0 || o.maxSubsTotal < 0 || o.maxRecvMsg < 0 || o.maxSendMsg < 0 {
		return nil, errors.New("gnmitarget: subscription and message size limits must be >= 0")
	}
	s := &Server{o: o, m: newMetrics(), log: o.log, targets: map[string]*target{}, clients: map[string]int{}}
	s.idents = newIdentities(o.enumTypes, o.identityModules)
	if len(o.schemas) > 0 {
		s.root = joinRoots(o.schemas)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.subs.Store(&[]*subscription{})
	if o.reg != nil {
		if err := s.m.register(o.reg); err != nil {
			return nil, fmt.Errorf("gnmitarget: metrics: %w", err)
		}
	}
	gopts := []grpc.ServerOption{
		grpc.UnaryInterceptor(s.unaryAuth),
		grpc.StreamInterceptor(s.streamAuth),
		grpc.ForceServerCodecV2(newCodec()),
	}
	if o.maxRecvMsg > 0 {
		gopts = append(gopts, grpc.MaxRecvMsgSize(o.maxRecvMsg))
	}
	if o.maxSendMsg > 0 {
		gopts = append(gopts, grpc.MaxSendMsgSize(o.maxSendMsg))
	}
	if o.certFile != "" || o.keyFile != "" {
		tc, err := loadTLS(o.certFile, o.keyFile, o.caFile)
		if err != nil {
			return nil, fmt.Errorf("gnmitarget: %w", err)
		}
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(tc)))
	} else if o.caFile != "" {
		return nil, errors.New("gnmitarget: a client CA needs a server certificate and key")
	}
	s.grpc = grpc.NewServer(gopts...)
	gpb.RegisterGNMIServer(s.grpc, s)
	return s, nil
}

func loadTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls client CA %s: no certificate found", caFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// Serve accepts gNMI connections on lis until Stop or GracefulStop.
func (s *Server) Serve(lis net.Listener) error { return s.grpc.Serve(lis) }

// GracefulStop ends every subscription with codes.Unavailable, then waits
// for the RPCs in flight to finish.
func (s *Server) GracefulStop() {
	s.cancel()
	s.grpc.GracefulStop()
}

// Stop closes every connection at once.
func (s *Server) Stop() {
	s.cancel()
	s.grpc.Stop()
}

// Update applies leaves to a target's tree (a nil Value deletes the path
// and everything below it) and hands the changed leaves to subscribers.
// Unchanged values are not sent again.
func (s *Server) Update(targetName string, ups []change.Update) {
	if len(ups) == 0 || targetName == "" {
		return
	}
	s.write(ups, func(*change.Update) string { return targetName })
}

// UpdateMany is Update for the leaves of several targets, each update's
// Router naming its target: all of them reach a subscriber together, so
// it wakes once and sends them in one go rather than once per target.
// Updates without a Router are ignored.
func (s *Server) UpdateMany(ups []change.Update) {
	if len(ups) == 0 {
		return
	}
	s.write(ups, func(u *change.Update) string { return u.Router })
}

// write applies ups, each to the target nameOf gives, and fans the
// changed leaves out as one chunk. Writers are serialised by wmu, and
// every target written keeps its lock until the fan-out is done, so each
// subscriber sees changes in the order they were applied, and one that
// registers before its initial walk can neither miss a change nor get
// it twice.
func (s *Server) write(ups []change.Update, nameOf func(*change.Update) string) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var (
		evs    = make([]event, 0, len(ups))
		locked []*target
		deltas []int
		byName = map[string]int{} // index into locked
	)
	for i := 0; i < len(ups); {
		name := nameOf(&ups[i])
		j := i + 1
		for j < len(ups) && nameOf(&ups[j]) == name {
			j++
		}
		if name == "" {
			i = j
			continue
		}
		k, ok := byName[name]
		if !ok {
			// Writers hold wmu, so a target in the map is never one
			// being dropped.
			t := s.target(name, true)
			t.mu.Lock()
			locked = append(locked, t)
			deltas = append(deltas, t.leaves)
			k = len(locked) - 1
			byName[name] = k
		}
		evs = s.applyLocked(locked[k], ups[i:j], evs)
		i = j
	}
	s.fanout(evs)
	var delta int
	for k, t := range locked {
		delta += t.leaves - deltas[k]
		if t.leaves == 0 {
			s.dropTargetLocked(t)
		}
		t.mu.Unlock()
	}
	if delta != 0 {
		s.m.leaves.Add(float64(delta))
	}
}

// applyLocked applies ups to t, appending an event per changed leaf.
func (s *Server) applyLocked(t *target, ups []change.Update, evs []event) []event {
	for i := range ups {
		u := &ups[i]
		p := normalise(u.Path)
		ts := u.Time.UnixNano()
		if u.Value == nil {
			evs = t.remove(p, ts, evs)
			continue
		}
		if l, changed := t.set(p, u.Value, ts, s.nextSeq); changed {
			evs = append(evs, event{target: t.name, key: leafKey(u, p), path: p, val: u.Value, ts: ts, seq: l.seq, group: l.group, depth: l.depth})
		}
	}
	return s.keyLeafEvents(t, evs)
}

// Replace makes a target's leaves exactly ups: leaves held but not in ups
// are deleted, the others set as Update does (for a resynchronisation
// from a full snapshot).
func (s *Server) Replace(targetName string, ups []change.Update) {
	if targetName == "" {
		return
	}
	keep := make(map[string]bool, len(ups))
	for i := range ups {
		keep[leafKey(&ups[i], normalise(ups[i].Path))] = true
	}
	var gone []change.Update
	if t := s.target(targetName, false); t != nil {
		t.mu.RLock()
		eachLeaf(&t.root, func(l *leafVal) {
			if k := l.key(); !keep[k] {
				gone = append(gone, change.Update{Path: l.path(), Key: k, Time: time.Now()})
			}
		})
		t.mu.RUnlock()
	}
	s.Update(targetName, append(gone, ups...))
}

func (s *Server) nextSeq() uint64 { return s.seq.Add(1) }

// DeleteTarget removes a target and sends a delete for each of its leaves.
func (s *Server) DeleteTarget(name string) {
	s.mu.RLock()
	t := s.targets[name]
	s.mu.RUnlock()
	if t == nil {
		return
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dead {
		return
	}
	n := t.leaves
	evs := t.remove(&gpb.Path{}, time.Now().UnixNano(), nil)
	s.fanout(s.keyLeafEvents(t, evs))
	s.dropTargetLocked(t)
	s.m.leaves.Sub(float64(n))
}

// dropTargetLocked removes an emptied target; the caller holds t.mu.
func (s *Server) dropTargetLocked(t *target) {
	t.dead = true
	s.mu.Lock()
	if s.targets[t.name] == t {
		delete(s.targets, t.name)
	}
	s.m.targets.Set(float64(len(s.targets)))
	s.mu.Unlock()
}

// Targets returns the names of the targets held.
func (s *Server) Targets() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.targets))
	for n := range s.targets {
		out = append(out, n)
	}
	return out
}

func (s *Server) target(name string, create bool) *target {
	s.mu.RLock()
	t := s.targets[name]
	s.mu.RUnlock()
	if t != nil || !create {
		return t
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t = s.targets[name]; t == nil {
		t = &target{name: name}
		s.targets[name] = t
		s.m.targets.Set(float64(len(s.targets)))
	}
	return t
}

// selectTargets returns the targets a request's prefix target selects:
// all of them for "*" or "", else the named one if it exists.
func (s *Server) selectTargets(name string) []*target {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if name != "" && name != "*" {
		if t := s.targets[name]; t != nil {
			return []*target{t}
		}
		return nil
	}
	out := make([]*target, 0, len(s.targets))
	for _, t := range s.targets {
		out = append(out, t)
	}
	sortTargets(out)
	return out
}

// Capabilities reports the models given with WithModels and the encodings
// served.
func (s *Server) Capabilities(context.Context, *gpb.CapabilityRequest) (*gpb.CapabilityResponse, error) {
	s.m.rpcs.WithLabelValues("Capabilities", codes.OK.String()).Inc()
	return &gpb.CapabilityResponse{
		SupportedModels:    s.o.models,
		SupportedEncodings: []gpb.Encoding{gpb.Encoding_JSON, gpb.Encoding_JSON_IETF, gpb.Encoding_PROTO},
		GNMIVersion:        GNMIVersion,
	}, nil
}

// Set is refused: the tree is derived state, owned by its sources.
func (s *Server) Set(context.Context, *gpb.SetRequest) (*gpb.SetResponse, error) {
	s.m.rpcs.WithLabelValues("Set", codes.Unimplemented.String()).Inc()
	return nil, status.Error(codes.Unimplemented, "Set is not supported: this target re-serves state collected from its sources")
}

// Authentication. Credentials are compared as SHA-256 digests in constant
// time, so neither content nor length leaks through timing; they are
// never logged.

var errMissingCreds = status.Error(codes.Unauthenticated, "missing username/password metadata")
var errBadCreds = status.Error(codes.Unauthenticated, "invalid username or password")

func (s *Server) authenticate(ctx context.Context) error {
	if s.o.user == "" {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	u, p := md.Get("username"), md.Get("password")
	if len(u) == 0 || len(p) == 0 {
		s.m.authFailures.WithLabelValues("missing").Inc()
		s.log.Debug("gnmi target: RPC without credentials refused", slog.String("client", peerAddr(ctx)))
		return errMissingCreds
	}
	wu, wp := sha256.Sum256([]byte(s.o.user)), sha256.Sum256([]byte(s.o.pass))
	gu, gp := sha256.Sum256([]byte(u[0])), sha256.Sum256([]byte(p[0]))
	okU := subtle.ConstantTimeCompare(wu[:], gu[:])
	okP := subtle.ConstantTimeCompare(wp[:], gp[:])
	if okU&okP != 1 {
		s.m.authFailures.WithLabelValues("invalid").Inc()
		s.log.Debug("gnmi target: RPC with wrong credentials refused", slog.String("client", peerAddr(ctx)))
		return errBadCreds
	}
	return nil
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	if err := s.authenticate(ctx); err != nil {
		s.m.rpcs.WithLabelValues(rpcName(info.FullMethod), codes.Unauthenticated.String()).Inc()
		return nil, err
	}
	defer s.recoverRPC(info.FullMethod, peerAddr(ctx), &err)
	resp, err = h(ctx, req)
	if err == nil && s.o.maxSendMsg > 0 {
		// gRPC checks a unary response's size after the interceptors, and
		// its error names no limit: check it here.
		if m, ok := resp.(proto.Message); ok {
			if n := proto.Size(m); n > s.o.maxSendMsg {
				s.m.limits.WithLabelValues(limitSend).Inc()
				return nil, status.Errorf(codes.ResourceExhausted, "%s response of %d bytes is over the server's %s limit (%d bytes): ask for less (narrower paths, one target)", rpcName(info.FullMethod), n, limitSend, s.o.maxSendMsg)
			}
		}
	}
	return resp, err
}

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	if err := s.authenticate(ss.Context()); err != nil {
		s.m.rpcs.WithLabelValues(rpcName(info.FullMethod), codes.Unauthenticated.String()).Inc()
		return err
	}
	defer s.recoverRPC(info.FullMethod, peerAddr(ss.Context()), &err)
	if s.o.maxSendMsg > 0 {
		ss = sizeChecked{ss, s}
	}
	return h(srv, ss)
}

// recoverRPC turns a panic in an RPC into an INTERNAL status, counted and
// logged with its stack: gRPC does not recover handlers, and one request
// that hits a bug must not end the process and every other client's
// stream with it.
func (s *Server) recoverRPC(method, client string, err *error) {
	r := recover()
	if r == nil {
		return
	}
	name := rpcName(method)
	s.m.panics.WithLabelValues(name).Inc()
	s.log.Error("gnmi target: RPC panicked", slog.String("rpc", name), slog.String("client", client),
		slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
	*err = status.Errorf(codes.Internal, "internal error serving %s", name)
}

// Limits, as metric labels and in errors.
const (
	limitSubsClient = "max-subscriptions-per-client"
	limitSubsTotal  = "max-subscriptions"
	limitRecv       = "max-recv-msg-size"
	limitSend       = "max-send-msg-size"
)

// sizeChecked checks each response's size against max-send-msg-size
// before gRPC does: gRPC's own check writes a status that names no limit
// before the handler can return a better one.
type sizeChecked struct {
	grpc.ServerStream
	s *Server
}

func (w sizeChecked) SendMsg(m any) error {
	var n int
	switch m := m.(type) {
	case *preEncoded:
		n = len(m.b)
	case proto.Message:
		n = proto.Size(m)
	}
	if n > w.s.o.maxSendMsg {
		w.s.m.limits.WithLabelValues(limitSend).Inc()
		return status.Errorf(codes.ResourceExhausted, "notification of %d bytes is over the server's %s limit (%d bytes)", n, limitSend, w.s.o.maxSendMsg)
	}
	return w.ServerStream.SendMsg(m)
}

// overRecvLimit reports whether err is gRPC's refusal of a request over
// the receive limit. gRPC writes that status itself, naming the sizes
// ("grpc: received message larger than max (n vs. m)"); a Subscribe sees
// it from Recv and counts it. A unary request over it is refused before
// any meshd code runs and is not counted: only a stats handler would see
// it, at a cost on every message sent (BenchmarkStreamGRPC: one more
// allocation per message).
func overRecvLimit(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.ResourceExhausted &&
		(strings.HasPrefix(st.Message(), "grpc: received message") || strings.HasPrefix(st.Message(), "grpc: message after decompression"))
}

func rpcName(full string) string {
	for i := len(full) - 1; i >= 0; i-- {
		if full[i] == '/' {
			return full[i+1:]
		}
	}
	return full
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// clientID names a client for the per-client subscription cap: its
// address without the port, and its user name when credentials are in
// use. The address is always part of it: there is one configured
// account, so the user name alone would make the cap one for every
// client together.
func (s *Server) clientID(ctx context.Context) string {
	a := peerAddr(ctx)
	if h, _, err := net.SplitHostPort(a); err == nil {
		a = h
	}
	if s.o.user != "" {
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if u := md.Get("username"); len(u) > 0 {
				return "user:" + u[0] + "@" + a
			}
		}
	}
	return "addr:" + a
}

// acquireClient takes a subscription slot for client id; it returns the
// limit that refuses one, or "".
func (s *Server) acquireClient(id string) string {
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	if s.o.maxSubs > 0 && s.clients[id] >= s.o.maxSubs {
		return limitSubsClient
	}
	if s.o.maxSubsTotal > 0 && s.subsTotal >= s.o.maxSubsTotal {
		return limitSubsTotal
	}
	s.clients[id]++
	s.subsTotal++
	return ""
}

func (s *Server) releaseClient(id string) {
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	s.subsTotal--
	if s.clients[id]--; s.clients[id] <= 0 {
		delete(s.clients, id)
	}
}
