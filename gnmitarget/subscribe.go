package gnmitarget

import (
	"context"
	"errors"
	"io"
	"sort"
	"sync/atomic"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshd/meshd/change"
)

// maxPerNotification caps the updates packed into one notification.
const maxPerNotification = 512

// pathSub is one Subscription of a SubscriptionList, with its schedule.
type pathSub struct {
	elems     []*gpb.PathElem // prefix and path elements together
	mode      gpb.SubscriptionMode
	interval  time.Duration
	heartbeat time.Duration
	suppress  bool

	next, nextHB time.Time
	lastSeq      uint64
}

func (p *pathSub) onChange() bool { return p.mode != gpb.SubscriptionMode_SAMPLE }

// subscription is one Subscribe RPC's view: which targets and paths it
// wants, and its queue of live changes.
type subscription struct {
	target string // "" and "*" select every target
	// elsewhere (cluster mode) leaves out the routers another replica
	// answers for.
	elsewhere func(string) bool
	paths     []*pathSub
	// rib are the paths a Subtree serves (WithSubtree).
	rib    [][]*gpb.PathElem
	enc    gpb.Encoding
	q      *queue
	keepFn func(*event) bool
	// streaming is set for a STREAM subscription, whose SAMPLE paths are
	// stamped with the sample time (see sendWalk).
	streaming bool

	resyncs atomic.Int64
}

func (sub *subscription) wantsTarget(t string) bool {
	if sub.elsewhere != nil && sub.elsewhere(t) {
		return false
	}
	return sub.target == "" || sub.target == "*" || sub.target == t
}

// keep decides whether a live change goes to this subscriber: every change
// of a target it selects under an ON_CHANGE path, and only deletes under a SAMPLE path (a sample
// cannot show that a leaf went away).
//
// A key leaf's event goes only to a path that names the key leaf, as the
// walks serve key leaves only to such paths (see matchFrom).
func (sub *subscription) keep(ev *event) bool {
	if !sub.wantsTarget(ev.target) {
		return false
	}
	for _, p := range sub.paths {
		if !p.onChange() && ev.val != nil {
			continue
		}
		if ev.keyLeaf && !namesLeaf(p.elems, ev.path.GetElem()) {
			continue
		}
		if matchPath(p.elems, ev.path.GetElem()) {
			return true
		}
	}
	return false
}

// namesLeaf reports whether the pattern ends in the leaf's own name.
func namesLeaf(pat, elems []*gpb.PathElem) bool {
	return len(pat) > 0 && len(elems) > 0 && stripModule(pat[len(pat)-1].GetName()) == elems[len(elems)-1].GetName()
}

func (s *Server) newSubscription(sl *gpb.SubscriptionList) (*subscription, error) {
	enc := sl.GetEncoding()
	if !encodingOK(enc) {
		return nil, status.Errorf(codes.Unimplemented, "encoding %v not supported; use JSON, JSON_IETF or PROTO", enc)
	}
	if len(sl.GetSubscription()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "subscription list has no subscription")
	}
	pre := sl.GetPrefix()
	sub := &subscription{target: pre.GetTarget(), enc: enc, q: newQueue(s.o.queueSize, s.o.queueBytes)}
	sub.keepFn = sub.keep
	for _, sp := range sl.GetSubscription() {
		if len(sp.GetPath().GetElement()) > 0 {
			return nil, status.Error(codes.InvalidArgument, "path element strings (deprecated) are not supported; use elem")
		}
		elems := joinElems(pre, sp.GetPath())
		if err := checkPattern(elems); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		if s.claims(elems) {
			if sl.GetMode() == gpb.SubscriptionList_STREAM && sp.GetMode() == gpb.SubscriptionMode_SAMPLE {
				return nil, status.Errorf(codes.Unimplemented, "SAMPLE of %s is not supported: the RIB paths are served ON_CHANGE (and ONCE, POLL, Get)", change.PathKey(&gpb.Path{Elem: elems}))
			}
			sub.rib = append(sub.rib, elems)
			continue
		}
		ps := &pathSub{
			elems:     elems,
			mode:      sp.GetMode(),
			interval:  time.Duration(sp.GetSampleInterval()),
			heartbeat: time.Duration(sp.GetHeartbeatInterval()),
			suppress:  sp.GetSuppressRedundant(),
		}
		if ps.mode == gpb.SubscriptionMode_SAMPLE && ps.interval < s.o.minSample {
			ps.interval = s.o.minSample
		}
		if ps.heartbeat > 0 && ps.heartbeat < s.o.minSample {
			ps.heartbeat = s.o.minSample
		}
		sub.paths = append(sub.paths, ps)
	}
	return sub, nil
}

func joinElems(pre, p *gpb.Path) []*gpb.PathElem {
	out := make([]*gpb.PathElem, 0, len(pre.GetElem())+len(p.GetElem()))
	for _, e := range pre.GetElem() {
		out = append(out, &gpb.PathElem{Name: stripModule(e.GetName()), Key: e.GetKey()})
	}
	for _, e := range p.GetElem() {
		out = append(out, &gpb.PathElem{Name: stripModule(e.GetName()), Key: e.GetKey()})
	}
	return out
}

func encodingOK(e gpb.Encoding) bool {
	return e == gpb.Encoding_JSON || e == gpb.Encoding_JSON_IETF || e == gpb.Encoding_PROTO
}

// Subscribe serves ONCE, POLL and STREAM subscriptions.
func (s *Server) Subscribe(stream gpb.GNMI_SubscribeServer) (err error) {
	defer func() {
		s.m.rpcs.WithLabelValues("Subscribe", status.Code(err).String()).Inc()
		if overRecvLimit(err) {
			s.m.limits.WithLabelValues(limitRecv).Inc()
		}
	}()
	ctx := stream.Context()
	id := s.clientID(ctx)
	switch s.acquireClient(id) {
	case limitSubsClient:
		s.m.limits.WithLabelValues(limitSubsClient).Inc()
		return status.Errorf(codes.ResourceExhausted, "limit of %d concurrent subscriptions per client reached (the server's %s limit)", s.o.maxSubs, limitSubsClient)
	case limitSubsTotal:
		s.m.limits.WithLabelValues(limitSubsTotal).Inc()
		return status.Errorf(codes.ResourceExhausted, "limit of %d concurrent subscriptions over all clients reached (the server's %s limit)", s.o.maxSubsTotal, limitSubsTotal)
	}
	defer s.releaseClient(id)
	req, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	sl := req.GetSubscribe()
	if sl == nil {
		return status.Error(codes.InvalidArgument, "the first SubscribeRequest must carry a SubscriptionList")
	}
	sub, err := s.newSubscription(sl)
	if err != nil {
		return err
	}
	var merged *mergedStream
	if s.o.cluster != nil && !forwarded(ctx) {
		remote, err := s.o.cluster.ForwardSubscribe(ctx, sub.target, req)
		if err != nil {
			return err
		}
		if len(remote) > 0 && sl.GetMode() == gpb.SubscriptionList_POLL {
			for _, r := range remote {
				_ = r.CloseSend()
			}
			return status.Error(codes.Unimplemented, "POLL across the replicas of a cluster is not supported: use ONCE, or STREAM")
		}
		if len(remote) > 0 {
			local := sub.target == "" || sub.target == "*" || !s.o.cluster.Elsewhere(sub.target)
			target := sub.target
			merged = newMergedStream(stream, remote, local, func() []string { return s.o.cluster.Peers(target) })
			defer merged.close()
			if !local {
				return merged.wait()
			}
			stream, ctx = merged, merged.Context()
		}
	}
	if s.o.cluster != nil {
		sub.elsewhere = s.o.cluster.Elsewhere
	}
	mode := sl.GetMode().String()
	s.m.subscriptions.WithLabelValues(mode).Inc()
	defer s.m.subscriptions.WithLabelValues(mode).Dec()
	if merged != nil {
		// Another replica's stream that ends in error ends the client's:
		// going on without that replica's routers would pass for whole.
		defer func() {
			if e := merged.failed(); e != nil {
				err = e
			}
		}()
	}

	switch sl.GetMode() {
	case gpb.SubscriptionList_ONCE:
		if !sl.GetUpdatesOnly() {
			if err := s.sendWalk(stream, sub, sub.paths, nil); err != nil {
				return err
			}
			if err := s.walkSubtree(ctx, stream, sub, false); err != nil {
				return err
			}
		}
		if err := sendSync(stream); err != nil || merged == nil {
			return err
		}
		// The other replicas' parts: the sync_response goes with the
		// last of them.
		return merged.wait()
	case gpb.SubscriptionList_POLL:
		return s.poll(stream, sub, sl.GetUpdatesOnly())
	case gpb.SubscriptionList_STREAM:
		return s.stream(ctx, stream, sub, sl.GetUpdatesOnly())
	}
	return status.Errorf(codes.InvalidArgument, "unknown subscription mode %v", sl.GetMode())
}

func sendSync(stream gpb.GNMI_SubscribeServer) error {
	return stream.Send(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_SyncResponse{SyncResponse: true}})
}

func (s *Server) poll(stream gpb.GNMI_SubscribeServer, sub *subscription, updatesOnly bool) error {
	if !updatesOnly {
		if err := s.sendWalk(stream, sub, sub.paths, nil); err != nil {
			return err
		}
		if err := s.walkSubtree(stream.Context(), stream, sub, false); err != nil {
			return err
		}
	}
	if err := sendSync(stream); err != nil {
		return err
	}
	for {
		req, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if req.GetPoll() == nil {
			return status.Error(codes.InvalidArgument, "a POLL subscription takes only Poll requests after the SubscriptionList")
		}
		if err := s.sendWalk(stream, sub, sub.paths, nil); err != nil {
			return err
		}
		if err := s.walkSubtree(stream.Context(), stream, sub, false); err != nil {
			return err
		}
		if err := sendSync(stream); err != nil {
			return err
		}
	}
}

// walkSubtree sends the Subtree's part of a subscription.
func (s *Server) walkSubtree(ctx context.Context, stream gpb.GNMI_SubscribeServer, sub *subscription, deleteFirst bool) error {
	if len(sub.rib) == 0 {
		return nil
	}
	return s.o.subtree.Walk(ctx, sub.wantsTarget, sub.rib, deleteFirst, s.subtreeSend(stream, sub.enc))
}

func (s *Server) register(sub *subscription) {
	s.subM.Lock()
	defer s.subM.Unlock()
	old := *s.subs.Load()
	next := make([]*subscription, len(old), len(old)+1)
	copy(next, old)
	next = append(next, sub)
	s.subs.Store(&next)
}

func (s *Server) unregister(sub *subscription) {
	s.subM.Lock()
	defer s.subM.Unlock()
	old := *s.subs.Load()
	next := make([]*subscription, 0, len(old))
	for _, o := range old {
		if o != sub {
			next = append(next, o)
		}
	}
	s.subs.Store(&next)
}

// fanout hands changes to every subscriber that wants them, as one chunk
// they share. The caller holds the lock of every target changed.
func (s *Server) fanout(evs []event) {
	if len(evs) == 0 {
		return
	}
	c := newChunk(evs)
	var coalesced, dropped int
	for _, sub := range *s.subs.Load() {
		cc, d := sub.q.push(c, sub.keepFn)
		coalesced += cc
		dropped += d
	}
	if coalesced > 0 {
		s.m.dropped.WithLabelValues("coalesced").Add(float64(coalesced))
	}
	if dropped > 0 {
		s.m.dropped.WithLabelValues("overflow").Add(float64(dropped))
	}
}

func (s *Server) stream(ctx context.Context, stream gpb.GNMI_SubscribeServer, sub *subscription, updatesOnly bool) error {
	// Registering before the initial walk means no change can fall between
	// the two: one made before the walk is in it, one made after is queued.
	sub.streaming = true
	s.register(sub)
	defer s.unregister(sub)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				cancel(err)
				return
			}
			// Nothing but the first request is meaningful in STREAM mode;
			// later ones are read and ignored so the client can close.
		}
	}()

	// The Subtree's watch, like the store's registration, starts before
	// its walk.
	var ribReady <-chan struct{}
	var ribW SubtreeWatch
	if len(sub.rib) > 0 {
		ribW = s.o.subtree.Watch(sub.wantsTarget, sub.rib)
		defer ribW.Close()
		ribReady = ribW.Ready()
	}
	now := time.Now()
	startSeq := s.seq.Load()
	if !updatesOnly {
		if err := s.sendWalk(stream, sub, sub.paths, nil); err != nil {
			return err
		}
		if err := s.walkSubtree(ctx, stream, sub, false); err != nil {
			return err
		}
	}
	for _, p := range sub.paths {
		p.lastSeq = startSeq
		if p.mode == gpb.SubscriptionMode_SAMPLE {
			p.next = now.Add(p.interval)
		}
		if p.heartbeat > 0 {
			p.nextHB = now.Add(p.heartbeat)
		}
	}
	if err := sendSync(stream); err != nil {
		return err
	}

	// Only SAMPLE and heartbeats need the timer; a subscription with
	// neither (most ON_CHANGE ones) leaves its channel nil rather than
	// rearm a timer for every batch it sends.
	var timer *time.Timer
	var tick <-chan time.Time
	for _, p := range sub.paths {
		if p.mode == gpb.SubscriptionMode_SAMPLE || p.heartbeat > 0 {
			timer = time.NewTimer(time.Hour)
			defer timer.Stop()
			tick = timer.C
			break
		}
	}
	var buf []qent
	var ribBuf []*gpb.Notification
	ribSend := s.subtreeSend(stream, sub.enc)
	for {
		if timer != nil {
			resetTimer(timer, sub.paths)
		}
		select {
		case <-ctx.Done():
			if s.ctx.Err() != nil {
				return status.Error(codes.Unavailable, "server shutting down")
			}
			if c := context.Cause(ctx); c != nil && !errors.Is(c, io.EOF) && !errors.Is(c, context.Canceled) {
				return c
			}
			return nil
		case <-s.ctx.Done():
			return status.Error(codes.Unavailable, "server shutting down")
		case <-sub.q.ready:
			var resync bool
			var dirty []string
			buf, resync, dirty = sub.q.drain(buf)
			if resync {
				if err := s.resync(stream, sub, dirty); err != nil {
					return err
				}
			}
			if err := s.sendEntries(stream, sub, buf); err != nil {
				return err
			}
			clear(buf)
		case now := <-tick:
			if err := s.tick(stream, sub, now); err != nil {
				return err
			}
		case <-ribReady:
			var lost bool
			ribBuf, lost = ribW.Drain(ribBuf[:0])
			if lost {
				// Fell a whole queue behind: what it missed is unknown,
				// so its RIB paths are deleted and walked again.
				ribBuf = ribBuf[:0]
				if err := s.walkSubtree(ctx, stream, sub, true); err != nil {
					return err
				}
			}
			for _, n := range ribBuf {
				if err := ribSend(n); err != nil {
					return err
				}
			}
			clear(ribBuf)
		}
	}
}

// resetTimer arms the timer for the earliest sample or heartbeat due.
func resetTimer(t *time.Timer, paths []*pathSub) {
	var next time.Time
	for _, p := range paths {
		if p.mode == gpb.SubscriptionMode_SAMPLE && (next.IsZero() || p.next.Before(next)) {
			next = p.next
		}
		if p.heartbeat > 0 && (next.IsZero() || p.nextHB.Before(next)) {
			next = p.nextHB
		}
	}
	t.Stop()
	select {
	case <-t.C:
	default:
	}
	if next.IsZero() {
		t.Reset(time.Hour)
		return
	}
	t.Reset(max(time.Until(next), 0))
}

// tick sends the samples and heartbeats that are due.
func (s *Server) tick(stream gpb.GNMI_SubscribeServer, sub *subscription, now time.Time) error {
	for _, p := range sub.paths {
		hbDue := p.heartbeat > 0 && !now.Before(p.nextHB)
		sampleDue := p.mode == gpb.SubscriptionMode_SAMPLE && !now.Before(p.next)
		if !hbDue && !sampleDue {
			continue
		}
		cur := s.seq.Load()
		var filter func(*leafVal) bool
		switch {
		case hbDue:
			// A heartbeat resends everything, changed or not.
		case p.suppress:
			last := p.lastSeq
			filter = func(l *leafVal) bool { return l.seq > last }
		}
		if err := s.sendWalk(stream, sub, []*pathSub{p}, filter); err != nil {
			return err
		}
		if sampleDue {
			p.lastSeq = cur
			p.next = p.next.Add(p.interval)
			if p.next.Before(now) {
				p.next = now.Add(p.interval)
			}
		}
		if hbDue {
			p.lastSeq = cur
			p.nextHB = p.nextHB.Add(p.heartbeat)
			if p.nextHB.Before(now) {
				p.nextHB = now.Add(p.heartbeat)
			}
			if p.mode == gpb.SubscriptionMode_SAMPLE {
				// The heartbeat was this interval's sample too.
				p.next = now.Add(p.interval)
			}
		}
	}
	return nil
}

// resync follows a queue overflow: deletes of the subscribed paths for the
// targets that lost leaves meanwhile, then the current values of every
// subscribed path.
func (s *Server) resync(stream gpb.GNMI_SubscribeServer, sub *subscription, dirty []string) error {
	s.m.resyncs.Inc()
	sub.resyncs.Add(1)
	sort.Strings(dirty)
	for _, t := range dirty {
		n := &gpb.Notification{Timestamp: time.Now().UnixNano(), Prefix: &gpb.Path{Target: t}}
		for _, p := range sub.paths {
			n.Delete = append(n.Delete, &gpb.Path{Elem: p.elems})
		}
		if err := stream.Send(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: n}}); err != nil {
			return err
		}
	}
	// SAMPLE paths are walked too: their deletes above removed leaves
	// that may never change again, and with suppress_redundant no later
	// sample would send those back.
	return s.sendWalk(stream, sub, sub.paths, nil)
}

// notifier packs leaves into notifications: a run of leaves of the same
// list entry (with the same timestamp, unless anyTime) shares one
// notification whose prefix is the entry's path, so list keys are encoded
// once per entry rather than once per leaf. newChunk cuts changes into
// runs by the same rule.
type notifier struct {
	s     *Server
	enc   gpb.Encoding
	out   func(n *gpb.Notification, leaves int) error
	n     *gpb.Notification
	group *node
	depth int // elements in n's prefix
	count int
	// anyTime groups siblings whatever their timestamps, stamping the
	// notification with the latest (for syncs, samples and heartbeats,
	// which report current state rather than changes).
	anyTime bool
}

func (s *Server) streamNotifier(stream gpb.GNMI_SubscribeServer, enc gpb.Encoding, anyTime bool) notifier {
	return notifier{s: s, enc: enc, anyTime: anyTime, out: func(n *gpb.Notification, leaves int) error {
		s.m.sent.Add(float64(leaves))
		return stream.Send(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: n}})
	}}
}

func (w *notifier) add(target string, group *node, depth int, p *gpb.Path, v *gpb.TypedValue, ts int64) error {
	elems := p.GetElem()
	if len(elems) == 0 || depth >= len(elems) {
		depth = 0
	}
	if w.n == nil || w.n.Prefix.Target != target || !within(w.group, group) || (!w.anyTime && w.n.Timestamp != ts) ||
		len(w.n.Update)+len(w.n.Delete) >= maxPerNotification {
		if err := w.flush(); err != nil {
			return err
		}
		w.n = &gpb.Notification{Timestamp: ts, Prefix: &gpb.Path{Target: target, Elem: elems[:depth]}}
		w.group, w.depth = group, depth
	}
	w.n.Timestamp = max(w.n.Timestamp, ts)
	rel := &gpb.Path{Elem: elems[w.depth:]}
	if v == nil {
		w.n.Delete = append(w.n.Delete, rel)
	} else {
		ev, err := w.s.encodeLeaf(p, v, w.enc)
		if err != nil {
			return nil
		}
		w.n.Update = append(w.n.Update, &gpb.Update{Path: rel, Val: ev})
	}
	w.count++
	return nil
}

func (w *notifier) flush() error {
	if w.n == nil {
		return nil
	}
	n, c := w.n, w.count
	w.n, w.group, w.count = nil, nil, 0
	return w.out(n, c)
}

// sendEntries sends queued changes in order. A run of them that is a
// whole notification of the chunk they came from goes out in the bytes
// encoded once for every subscriber; the rest is built here.
func (s *Server) sendEntries(stream gpb.GNMI_SubscribeServer, sub *subscription, ents []qent) error {
	w := s.streamNotifier(stream, sub.enc, false)
	for i := 0; i < len(ents); {
		if r := wholeRun(ents[i:]); r != nil && !s.noShare {
			m, err := ents[i].src.encoded(s, r, sub.enc)
			if err == nil && m != nil {
				if err := w.flush(); err != nil {
					return err
				}
				n := r.end - r.start
				s.m.sent.Add(float64(n))
				s.m.shared.Add(float64(n))
				if err := stream.SendMsg(m); err != nil {
					return err
				}
				i += n
				continue
			}
		}
		ev := ents[i].ev()
		if err := w.add(ev.target, ev.group, ev.depth, ev.path, ev.val, ev.ts); err != nil {
			return err
		}
		i++
	}
	return w.flush()
}

// sendWalk sends the current leaves under paths (those filter keeps) for
// every target the subscription selects, a target at a time so no lock is
// held while sending.
//
// In a STREAM, the leaves of SAMPLE paths are stamped with the time the
// store was read, not with their last change: the gNMI specification
// (§3.5.2.3) sets a notification's timestamp to "the time at which the
// value of the path that is being updated was collected from the
// underlying data source", and §3.5.2.1 speaks of "the timestamp at which
// an event occurred, or a sample was taken". A sample is collected when it
// is taken. ON_CHANGE (and its heartbeats, a resend of the last event)
// keeps the event's time, as do ONCE and POLL, which report when each
// value became what it is.
func (s *Server) sendWalk(stream gpb.GNMI_SubscribeServer, sub *subscription, paths []*pathSub, filter func(*leafVal) bool) error {
	if len(paths) == 0 {
		return nil
	}
	var sampled, rest []*pathSub
	for _, p := range paths {
		if sub.streaming && p.mode == gpb.SubscriptionMode_SAMPLE {
			sampled = append(sampled, p)
		} else {
			rest = append(rest, p)
		}
	}
	var leaves []*leafVal
	for _, t := range s.selectTargets(sub.target) {
		if !sub.wantsTarget(t.name) {
			continue
		}
		for _, group := range [...]struct {
			paths  []*pathSub
			sample bool
		}{{rest, false}, {sampled, true}} {
			if len(group.paths) == 0 {
				continue
			}
			var stamp int64
			if group.sample {
				stamp = time.Now().UnixNano()
			}
			leaves = collect(t, group.paths, s.keyLeaf, filter, leaves[:0])
			if err := s.sendLeaves(stream, t.name, leaves, sub.enc, stamp); err != nil {
				return err
			}
		}
	}
	return nil
}

// collect gathers the leaves of a target under any of paths.
func collect(t *target, paths []*pathSub, keyLeaf func(*node, string) *node, filter func(*leafVal) bool, out []*leafVal) []*leafVal {
	var seen map[*leafVal]bool
	if len(paths) > 1 {
		seen = map[*leafVal]bool{}
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, p := range paths {
		matchNodes(&t.root, p.elems, keyLeaf, func(n *node) {
			eachLeaf(n, func(l *leafVal) {
				if filter != nil && !filter(l) {
					return
				}
				if seen != nil {
					if seen[l] {
						return
					}
					seen[l] = true
				}
				out = append(out, l)
			})
		})
	}
	return out
}

// sendLeaves sends leaves sorted by path, so siblings share notifications;
// stamp, when not 0, is every notification's timestamp (a sample's time).
func (s *Server) sendLeaves(stream gpb.GNMI_SubscribeServer, targetName string, leaves []*leafVal, enc gpb.Encoding, stamp int64) error {
	sortLeaves(leaves)
	w := s.streamNotifier(stream, enc, true)
	// The leaves' paths and values are built in two allocations for the
	// lot, not two or three a leaf: the notifications keep sub-slices
	// of elems (never appended to: their capacity ends with them) and
	// pointers into vals until they are sent.
	elems := make([]*gpb.PathElem, 0, len(leaves)*12)
	vals := make([]gpb.TypedValue, len(leaves))
	var p gpb.Path
	for i, l := range leaves {
		ts := l.ts
		if stamp != 0 {
			ts = stamp
		}
		start := len(elems)
		elems = appendNodeElems(elems, l.at)
		p.Elem = elems[start:len(elems):len(elems)]
		if err := w.add(targetName, l.group, l.depth, &p, l.v.typedIn(&vals[i]), ts); err != nil {
			return err
		}
	}
	return w.flush()
}
