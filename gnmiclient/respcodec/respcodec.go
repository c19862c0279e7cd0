// Package respcodec decodes the gNMI SubscribeResponses of one stream
// without protobuf's reflection, sharing the paths that repeat from one
// notification to the next.
//
// A fleet's streams are mostly the same few paths with new numbers: the
// generic decoder spends more on allocating those paths (elements, key
// maps, strings) than meshd spends on the values. Decoder keeps, per
// stream, every path it has decoded, keyed by its wire bytes, and hands
// out the same *gnmi.Path again; the structs of a notification are taken
// from a few slabs. What it does not know (deprecated fields, extensions,
// decimal, leaf-list and Any values, unknown fields, bad UTF-8) it leaves
// to proto.Unmarshal, so its result is always what proto.Unmarshal gives.
//
// Paths handed out are shared between notifications: callers must treat
// decoded messages as read-only, which meshd's translator does.
//
// Why meshd keeps a decoder of its own rather than proto.Unmarshal: on a
// neighbor's update it is 12 times faster, with 8 allocations instead of
// 137 (go test -bench Decode ./gnmiclient/respcodec/), and the fleet
// bench's receive-and-decode stage runs at 2.6 µs an update (README,
// component benches). FuzzDecode holds its output equal to protobuf's.
package respcodec

import (
	"hash/maphash"
	"math"
	"unicode/utf8"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	pb "google.golang.org/protobuf/proto"
)

// Bounds on what one stream's decoder keeps, in wire bytes of the keys;
// the decoded paths cost a few times that (a key map is the most of it).
// A router that puts its neighbors in the prefix repeats about 175 bytes
// of prefix a neighbor and a few short update paths: 32 KiB holds a
// 150-neighbor router's. A cache that is full makes room by dropping
// entries at random (a map's iteration order), so a router with more
// distinct paths than that still hits in proportion, and a fleet of a
// thousand streams holds at most a few hundred MiB however its routers
// shape their paths.
const (
	maxPathBytes = 32 << 10
	maxElemBytes = 8 << 10
	maxStrBytes  = 2 << 10
	maxInterned  = 64 // longest value string kept
)

// cache maps wire bytes to what they decode to, within a byte budget.
//
// A full cache admits a key only the second time it misses: a stream with
// far more distinct paths than the budget holds (a subscriber of a whole
// fleet, each neighbor a prefix of its own) would otherwise pay on every
// miss a key copy, an insert and an eviction, for an entry unlikely to be
// asked for again before it is evicted in turn. A small bit set of hashed
// keys remembers the misses, and is cleared once an eighth of it is set,
// so a key must come back within about doorBits/8 misses to be admitted,
// and a new key wrongly taken for one that came back is rare (under 1 in
// 8). A router that repeats more paths than the budget holds still has
// them admitted, as each comes back within a cycle of its paths.
type cache[T any] struct {
	m      map[string]T
	bytes  int
	budget int
	door   [doorBits / 64]uint64
	doorN  int
	// For tests: lookups that hit, and keys admitted into a full cache.
	hits, admitted int
}

const doorBits = 4096

var doorSeed = maphash.MakeSeed()

func (c *cache[T]) get(b []byte) (T, bool) {
	v, ok := c.m[string(b)]
	if ok {
		c.hits++
	}
	return v, ok
}

func (c *cache[T]) put(b []byte, v T) {
	if len(b) > c.budget {
		return
	}
	if c.bytes+len(b) > c.budget {
		if !c.cameBack(b) {
			return
		}
		c.admitted++
		for k := range c.m {
			delete(c.m, k)
			if c.bytes -= len(k); c.bytes+len(b) <= c.budget {
				break
			}
		}
	}
	if c.m == nil {
		c.m = make(map[string]T)
	}
	c.m[string(b)] = v
	c.bytes += len(b)
}

// cameBack reports whether b missed before, since the bit set was last
// cleared; if not, it remembers b.
func (c *cache[T]) cameBack(b []byte) bool {
	h := maphash.Bytes(doorSeed, b) % doorBits
	w, bit := h/64, uint64(1)<<(h%64)
	if c.door[w]&bit != 0 {
		return true
	}
	if c.doorN++; c.doorN > doorBits/8 {
		clear(c.door[:])
		c.doorN = 1
	}
	c.door[w] |= bit
	return false
}

// Decoder decodes one stream's responses. It is not safe for concurrent
// use; a gRPC stream decodes its messages on the one goroutine that
// receives them.
type Decoder struct {
	paths cache[*gpb.Path]
	elems cache[*gpb.PathElem]
	strs  cache[string]
	// Fallbacks counts messages left to proto.Unmarshal.
	Fallbacks uint64
	// Reuse makes Decode decode every message into one Notification and
	// one set of Updates, which then cost nothing to allocate (a fifth of
	// what a fleet's stream allocates). The caller must be done with a
	// notification before it decodes the next one: only its paths and
	// values, which are never reused, may be kept.
	Reuse bool
	notif gpb.Notification
	ups   []gpb.Update
	uptrs []*gpb.Update
	resp  gpb.SubscribeResponse_Update
}

// NewDecoder returns an empty decoder.
func NewDecoder() *Decoder {
	return &Decoder{
		paths: cache[*gpb.Path]{budget: maxPathBytes},
		elems: cache[*gpb.PathElem]{budget: maxElemBytes},
		strs:  cache[string]{budget: maxStrBytes},
	}
}

// Decode decodes b into m, which must be empty. It reports false when b
// holds something it leaves to proto.Unmarshal; m is then undefined and
// must be reset.
func (d *Decoder) Decode(b []byte, m *gpb.SubscribeResponse) bool {
	return fields(b, func(f field) bool {
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			// A second update in one response merges into the first
			// in protobuf's rules: rare enough to leave to it.
			if _, ok := m.Response.(*gpb.SubscribeResponse_Update); ok {
				return false
			}
			notif, ok := d.notification(f.b)
			if d.Reuse {
				d.resp.Update = notif
				m.Response = &d.resp
			} else {
				m.Response = &gpb.SubscribeResponse_Update{Update: notif}
			}
			return ok
		case f.num == 3 && f.typ == protowire.VarintType:
			m.Response = &gpb.SubscribeResponse_SyncResponse{SyncResponse: f.x != 0}
			return true
		}
		return false
	})
}

// field is one field of a message: its number and wire type, and its
// bytes (length-delimited) or number (varint, fixed32, fixed64).
type field struct {
	num protowire.Number
	typ protowire.Type
	b   []byte
	x   uint64
}

// fields calls fn with each field of b in order, and fails at the first
// field that is malformed, a group, or refused by fn.
func fields(b []byte, fn func(field) bool) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			f.x, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(b)
			f.x = uint64(x)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		default:
			return false
		}
		if n < 0 || !fn(f) {
			return false
		}
		b = b[n:]
	}
	return true
}

// notification decodes a Notification: timestamp, prefix, updates,
// deletes and atomic.
func (d *Decoder) notification(b []byte) (*gpb.Notification, bool) {
	// Count the updates first, so they and their values come from one
	// slab each.
	nup := 0
	if !fields(b, func(f field) bool {
		if f.num == 4 && f.typ == protowire.BytesType {
			nup++
		}
		return true
	}) {
		return nil, false
	}
	var out *gpb.Notification
	var ups []gpb.Update
	var vals []gpb.TypedValue
	if d.Reuse {
		out = &d.notif
		out.Reset()
		if cap(d.ups) < nup {
			d.ups, d.uptrs = make([]gpb.Update, nup), make([]*gpb.Update, 0, nup)
		}
		ups = d.ups[:nup]
		for i := range ups {
			ups[i].Reset()
		}
		if nup > 0 {
			out.Update = d.uptrs[:0]
		}
	} else {
		// Made here, not before the branch: it would escape there, and
		// cost a reused stream an allocation a message for nothing.
		out = &gpb.Notification{}
		if nup > 0 {
			out.Update = make([]*gpb.Update, 0, nup)
			ups = make([]gpb.Update, nup)
		}
	}
	if nup > 0 {
		// Values are never reused: the merge core hands them on.
		vals = make([]gpb.TypedValue, nup)
	}
	prefixSeen := false
	ok := fields(b, func(f field) bool {
		switch {
		case f.num == 1 && f.typ == protowire.VarintType:
			out.Timestamp = int64(f.x)
		case f.num == 2 && f.typ == protowire.BytesType && !prefixSeen:
			p, ok := d.path(f.b)
			out.Prefix, prefixSeen = p, true
			return ok
		case f.num == 4 && f.typ == protowire.BytesType:
			i := len(out.Update)
			out.Update = append(out.Update, &ups[i])
			return d.update(f.b, &ups[i], &vals[i])
		case f.num == 5 && f.typ == protowire.BytesType:
			p, ok := d.path(f.b)
			out.Delete = append(out.Delete, p)
			return ok
		case f.num == 6 && f.typ == protowire.VarintType:
			out.Atomic = f.x != 0
		default:
			// A prefix seen twice merges in protobuf's rules: left to it,
			// as is anything unknown or deprecated.
			return false
		}
		return true
	})
	return out, ok
}

// update decodes an Update's path, val and duplicates into u, with tv as
// the value's storage.
func (d *Decoder) update(b []byte, u *gpb.Update, tv *gpb.TypedValue) bool {
	pathSeen, valSeen := false, false
	return fields(b, func(f field) bool {
		switch {
		case f.num == 1 && f.typ == protowire.BytesType && !pathSeen:
			p, ok := d.path(f.b)
			u.Path, pathSeen = p, true
			return ok
		case f.num == 3 && f.typ == protowire.BytesType && !valSeen:
			u.Val, valSeen = tv, true
			return d.value(f.b, tv)
		case f.num == 4 && f.typ == protowire.VarintType:
			u.Duplicates = uint32(f.x)
			return true
		}
		return false
	})
}

// value decodes the scalar and JSON kinds of TypedValue; the last of
// several oneof members wins, as in protobuf.
func (d *Decoder) value(b []byte, tv *gpb.TypedValue) bool {
	return fields(b, func(f field) bool {
		switch {
		case f.typ == protowire.VarintType && f.num == 2:
			tv.Value = &gpb.TypedValue_IntVal{IntVal: int64(f.x)}
		case f.typ == protowire.VarintType && f.num == 3:
			tv.Value = &gpb.TypedValue_UintVal{UintVal: f.x}
		case f.typ == protowire.VarintType && f.num == 4:
			tv.Value = &gpb.TypedValue_BoolVal{BoolVal: f.x != 0}
		case f.typ == protowire.Fixed64Type && f.num == 14:
			tv.Value = &gpb.TypedValue_DoubleVal{DoubleVal: math.Float64frombits(f.x)}
		case f.typ == protowire.Fixed32Type && f.num == 6:
			tv.Value = &gpb.TypedValue_FloatVal{FloatVal: math.Float32frombits(uint32(f.x))} //nolint:staticcheck // old targets still send it
		case f.typ == protowire.BytesType && (f.num == 1 || f.num == 12):
			s, ok := d.str(f.b, true)
			if f.num == 1 {
				tv.Value = &gpb.TypedValue_StringVal{StringVal: s}
			} else {
				tv.Value = &gpb.TypedValue_AsciiVal{AsciiVal: s}
			}
			return ok
		case f.typ == protowire.BytesType && f.num == 5:
			tv.Value = &gpb.TypedValue_BytesVal{BytesVal: clone(f.b)}
		case f.typ == protowire.BytesType && f.num == 10:
			tv.Value = &gpb.TypedValue_JsonVal{JsonVal: clone(f.b)}
		case f.typ == protowire.BytesType && f.num == 11:
			tv.Value = &gpb.TypedValue_JsonIetfVal{JsonIetfVal: clone(f.b)}
		case f.typ == protowire.BytesType && f.num == 13:
			tv.Value = &gpb.TypedValue_ProtoBytes{ProtoBytes: clone(f.b)}
		default:
			return false
		}
		return true
	})
}

// clone copies bytes out of gRPC's receive buffer, which is reused.
// protobuf gives an empty bytes field a non-nil empty slice.
func clone(v []byte) []byte {
	return append(make([]byte, 0, len(v)), v...)
}

// bytesFields calls fn with each field of b, all of which must be
// length-delimited (strings, messages, map entries).
func bytesFields(b []byte, fn func(num protowire.Number, v []byte) bool) bool {
	return fields(b, func(f field) bool { return f.typ == protowire.BytesType && fn(f.num, f.b) })
}

// path returns the decoded Path for its wire bytes, decoding it once per
// stream.
func (d *Decoder) path(b []byte) (*gpb.Path, bool) {
	if p, ok := d.paths.get(b); ok {
		return p, true
	}
	p := &gpb.Path{}
	ok := bytesFields(b, func(num protowire.Number, v []byte) bool {
		switch num {
		case 2, 4:
			s, ok := d.str(v, false)
			if num == 2 {
				p.Origin = s
			} else {
				p.Target = s
			}
			return ok
		case 3:
			e, ok := d.elem(v)
			p.Elem = append(p.Elem, e)
			return ok
		}
		return false
	})
	if !ok {
		return nil, false
	}
	d.paths.put(b, p)
	return p, true
}

func (d *Decoder) elem(b []byte) (*gpb.PathElem, bool) {
	if e, ok := d.elems.get(b); ok {
		return e, true
	}
	e := &gpb.PathElem{}
	ok := bytesFields(b, func(num protowire.Number, v []byte) bool {
		switch num {
		case 1:
			s, ok := d.str(v, false)
			e.Name = s
			return ok
		case 2:
			k, val, ok := d.mapEntry(v)
			if e.Key == nil {
				e.Key = make(map[string]string, 1)
			}
			e.Key[k] = val
			return ok
		}
		return false
	})
	if !ok {
		return nil, false
	}
	d.elems.put(b, e)
	return e, true
}

// mapEntry decodes one entry of a map<string,string>.
func (d *Decoder) mapEntry(b []byte) (k, v string, ok bool) {
	ok = bytesFields(b, func(num protowire.Number, raw []byte) bool {
		s, ok := d.str(raw, false)
		switch num {
		case 1:
			k = s
		case 2:
			v = s
		default:
			return false
		}
		return ok
	})
	return k, v, ok
}

// str makes a string of b, which must be valid UTF-8 as proto3 requires.
// Value strings (session states, mostly) are interned; path strings need
// not be, as their paths are kept whole.
func (d *Decoder) str(b []byte, intern bool) (string, bool) {
	if !utf8.Valid(b) {
		return "", false
	}
	if !intern || len(b) > maxInterned {
		return string(b), true
	}
	if s, ok := d.strs.get(b); ok {
		return s, true
	}
	s := string(b)
	d.strs.put(b, s)
	return s, true
}

// Codec is a gRPC codec for one Subscribe stream: SubscribeResponses go
// through a Decoder, everything else through gRPC's proto codec.
type Codec struct {
	D     *Decoder
	proto encoding.CodecV2
}

// NewCodec returns a codec for one stream.
func NewCodec() *Codec {
	return &Codec{D: NewDecoder(), proto: encoding.GetCodecV2(proto.Name)}
}

// Name is empty so that the call keeps gRPC's default content-type,
// "application/grpc", exactly as without this codec: the content-subtype
// is taken from a forced codec's name.
func (c *Codec) Name() string { return "" }

// Marshal encodes with gRPC's proto codec.
func (c *Codec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

// Unmarshal decodes SubscribeResponses itself and leaves anything else,
// and anything it does not know, to protobuf.
func (c *Codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*gpb.SubscribeResponse)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData()
	} else {
		buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
		defer buf.Free()
		b = buf.ReadOnlyData()
	}
	if c.D.Decode(b, m) {
		return nil
	}
	c.D.Fallbacks++
	pb.Reset(m)
	return pb.Unmarshal(b, m)
}
