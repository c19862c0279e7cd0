package gnmitarget

import (
	"sync"
	"unsafe"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the codec wrapped here
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// chunk is the changes of one write, shared by every queue it is pushed
// to and never modified after. Its events are cut into runs, one
// notification each, by the same rule a subscriber's notifier uses; a
// subscriber whose queue holds a whole run, in order and unchanged, sends
// the run's notification encoded once for all subscribers instead of
// building and marshalling its own copy.
type chunk struct {
	evs   []event
	runs  []run
	runOf []int32 // index into runs of the run each event belongs to
	// size estimates the memory the chunk keeps alive: its events with
	// their paths and values, and one encoding of them.
	size int64
}

type run struct {
	start, end int
	enc        [3]encoded // by encSlot
}

type encoded struct {
	once sync.Once
	msg  *preEncoded // nil when there was nothing to send
	err  error
}

// encSlot maps the encodings served to a slot of run.enc.
func encSlot(e gpb.Encoding) int {
	switch e {
	case gpb.Encoding_JSON:
		return 0
	case gpb.Encoding_PROTO:
		return 1
	}
	return 2
}

func newChunk(evs []event) *chunk {
	c := &chunk{evs: evs, runOf: make([]int32, len(evs))}
	c.size = chunkBytes(evs)
	for i := range evs {
		if i == 0 || !sameNotification(&evs[c.runs[len(c.runs)-1].start], &evs[i], i-c.runs[len(c.runs)-1].start) {
			c.runs = append(c.runs, run{start: i})
		}
		c.runs[len(c.runs)-1].end = i + 1
		c.runOf[i] = int32(len(c.runs) - 1)
	}
	return c
}

// sameNotification reports whether b joins a notification that holds a
// run of n leaves starting with first: the notifier's grouping rule for
// changes.
func sameNotification(first, b *event, n int) bool {
	return first.target == b.target && within(first.group, b.group) && first.ts == b.ts && n < maxPerNotification
}

// within reports whether list entry g is entry outer or nested in it: a
// leaf of g can then go in outer's notification, its path relative to
// outer's. One event of a BGP neighbor moves leaves of the neighbor and of
// its AFI-SAFIs together, and sent as one notification they cost every
// subscriber one message to decode instead of two or three.
func within(outer, g *node) bool {
	if outer == g {
		return true
	}
	if outer == nil || g == nil {
		return false
	}
	for n := g.parent; n != nil; n = n.parent {
		if n == outer {
			return true
		}
	}
	return false
}

// wholeRun returns the run that ents starts with when ents holds it whole,
// in order and with the values it was published with.
func wholeRun(ents []qent) *run {
	e := ents[0]
	r := &e.src.runs[e.src.runOf[e.idx]]
	n := r.end - r.start
	if e.idx != r.start || len(ents) < n {
		return nil
	}
	for k := 1; k < n; k++ {
		if ents[k] != (qent{e.src, r.start + k}) {
			return nil
		}
	}
	return r
}

// encoded returns the run's SubscribeResponse marshalled in enc, encoding
// it on first use.
func (c *chunk) encoded(s *Server, r *run, enc gpb.Encoding) (*preEncoded, error) {
	x := &r.enc[encSlot(enc)]
	x.once.Do(func() {
		var n *gpb.Notification
		w := notifier{s: s, enc: enc, out: func(nn *gpb.Notification, _ int) error { n = nn; return nil }}
		for i := r.start; i < r.end; i++ {
			ev := &c.evs[i]
			_ = w.add(ev.target, ev.group, ev.depth, ev.path, ev.val, ev.ts)
		}
		_ = w.flush()
		if n == nil {
			return
		}
		b, err := proto.Marshal(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: n}})
		x.msg, x.err = &preEncoded{b}, err
	})
	return x.msg, x.err
}

// preEncoded is a message already in its wire form; codec sends it as is.
type preEncoded struct{ b []byte }

// codec is gRPC's proto codec that also passes preEncoded messages
// through, so one marshalled notification can go to many streams.
type codec struct{ encoding.CodecV2 }

func newCodec() codec { return codec{encoding.GetCodecV2("proto")} }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*preEncoded); ok {
		// A SliceBuffer's Free does nothing: the bytes stay shared and
		// immutable however many streams send them.
		return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
	}
	return c.CodecV2.Marshal(v)
}

// Rough sizes of the structures an event holds, on 64-bit Go with
// protobuf-go's message state: they make chunkBytes an estimate within
// a small factor, which is what a memory bound needs, at the cost of a
// few additions per event.
const (
	eventBytes   = int64(unsafe.Sizeof(event{})) + 4 // and its runOf entry
	pathBytes    = 64
	elemBytes    = 80 + 8  // a PathElem and its pointer in the path
	keyMapBytes  = 200     // a small map's buckets
	keyBytes     = 32      // a key's two string headers
	valueBytes   = 64 + 16 // a TypedValue and its oneof wrapper
	encodedShare = 2       // one encoding of the leaf, per byte of its strings
)

// chunkBytes estimates the memory a chunk of evs holds.
func chunkBytes(evs []event) int64 {
	n := int64(len(evs)) * eventBytes
	var last *gpb.Path
	for i := range evs {
		ev := &evs[i]
		strs := int64(len(ev.key))
		if p := ev.path; p != nil && p != last {
			last = p
			n += pathBytes
			for _, e := range p.GetElem() {
				n += elemBytes + int64(len(e.GetName()))
				if k := e.GetKey(); len(k) > 0 {
					n += keyMapBytes
					for kk, kv := range k {
						n += keyBytes + int64(len(kk)+len(kv))
					}
				}
			}
		}
		if v := ev.val; v != nil {
			n += valueBytes
			strs += int64(len(v.GetStringVal()) + len(v.GetJsonIetfVal()) + len(v.GetJsonVal()) + len(v.GetBytesVal()))
		}
		n += strs * encodedShare
	}
	return n
}
