package respcodec

import (
	"fmt"
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/gnmi/proto/gnmi_ext"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/change"
)

func nbrPrefix(addr string) *gpb.Path {
	p := change.NeighborPath("default", addr)
	p.Origin, p.Target = "openconfig", "r1"
	return p
}

func elems(names ...string) *gpb.Path {
	p := &gpb.Path{}
	for _, n := range names {
		p.Elem = append(p.Elem, &gpb.PathElem{Name: n})
	}
	return p
}

func update(n *gpb.Notification) *gpb.SubscribeResponse {
	return &gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: n}}
}

// decoded are responses the decoder must take itself, equal to protobuf's.
var decoded = []struct {
	name string
	msg  *gpb.SubscribeResponse
}{
	{"sync", &gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_SyncResponse{SyncResponse: true}}},
	{"sync false", &gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_SyncResponse{}}},
	{"empty", &gpb.SubscribeResponse{}},
	{"counters", update(&gpb.Notification{Timestamp: 1763766000123456789, Prefix: nbrPrefix("10.0.0.1"), Update: []*gpb.Update{
		{Path: elems("state", "messages", "received", "UPDATE"), Val: change.Uint(12345)},
		{Path: change.NeighborPath("default", "10.0.0.1", "afi-safis"), Val: change.Int(-7)},
		{Path: elems("state", "session-state"), Val: change.String("ESTABLISHED"), Duplicates: 3},
	}})},
	{"every scalar kind", update(&gpb.Notification{Timestamp: -1, Update: []*gpb.Update{
		{Path: elems("a"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_BoolVal{BoolVal: true}}},
		{Path: elems("b"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_BytesVal{BytesVal: []byte{0, 1, 0xff}}}},
		{Path: elems("c"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_DoubleVal{DoubleVal: 2.5}}},
		{Path: elems("d"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_FloatVal{FloatVal: -1.25}}}, //nolint:staticcheck // still decoded
		{Path: elems("e"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_JsonVal{JsonVal: []byte(`{"x":1}`)}}},
		{Path: elems("f"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: []byte(`{"m:y":"z"}`)}}},
		{Path: elems("g"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_AsciiVal{AsciiVal: "line"}}},
		{Path: elems("h"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_ProtoBytes{ProtoBytes: []byte{8, 1}}}},
		{Path: elems("i"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_BytesVal{BytesVal: []byte{}}}},
		{Path: elems("j"), Val: &gpb.TypedValue{}},
		{Path: elems("k")},
		{Val: change.String("a value of " + string(make([]byte, 100)))},
	}})},
	{"deletes and atomic", update(&gpb.Notification{Timestamp: 5, Prefix: nbrPrefix("2001:db8::1"), Atomic: true,
		Delete: []*gpb.Path{elems("state"), {Origin: "openconfig", Elem: []*gpb.PathElem{{Name: "x", Key: map[string]string{"a": "1", "b": "", "": "c"}}}}}})},
	{"no prefix, keys", update(&gpb.Notification{Update: []*gpb.Update{
		{Path: change.NeighborPath("vrf-1", "192.0.2.1", "state", "peer-as"), Val: change.Uint(4200000000)},
		{Path: change.NeighborPath("vrf-1", "192.0.2.1", "state", "description"), Val: change.String("uplink — ünïcode")},
	}})},
}

// fallback are responses the decoder leaves to protobuf.
var fallback = []struct {
	name string
	msg  *gpb.SubscribeResponse
}{
	{"decimal", update(&gpb.Notification{Update: []*gpb.Update{{Path: elems("a"), Val: &gpb.TypedValue{Value: &gpb.TypedValue_DecimalVal{DecimalVal: &gpb.Decimal64{Digits: 15, Precision: 1}}}}}})}, //nolint:staticcheck // old targets still send it
	{"leaf-list", update(&gpb.Notification{Update: []*gpb.Update{{Path: elems("a"), Val: change.StringList([]string{"x", "y"})}}})},
	{"extension", &gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_SyncResponse{SyncResponse: true},
		Extension: []*gnmi_ext.Extension{{Ext: &gnmi_ext.Extension_History{History: &gnmi_ext.History{}}}}}},
	{"deprecated element", update(&gpb.Notification{Prefix: &gpb.Path{Element: []string{"a", "b"}}})},                    //nolint:staticcheck // as above
	{"error", &gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Error{Error: &gpb.Error{Code: 3, Message: "no"}}}}, //nolint:staticcheck // as above
}

func marshal(t testing.TB, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeMatchesProtobuf(t *testing.T) {
	d := NewDecoder()
	for _, tc := range decoded {
		t.Run(tc.name, func(t *testing.T) {
			b := marshal(t, tc.msg)
			// Twice: once decoding, once from the caches.
			for i := 0; i < 2; i++ {
				var got gpb.SubscribeResponse
				if !d.Decode(b, &got) {
					t.Fatalf("pass %d: left to protobuf", i)
				}
				if !proto.Equal(&got, tc.msg) {
					t.Fatalf("pass %d: decoded\n%v\nwant\n%v", i, &got, tc.msg)
				}
			}
		})
	}
}

// A reusing decoder gives each message what protobuf gives, in any order
// (more updates, fewer, none), keeps the values of the last message as
// they were, and allocates no notification or update for the next.
func TestReuse(t *testing.T) {
	d := NewDecoder()
	d.Reuse = true
	order := []int{3, 5, 0, 3, 6, 2, 5, 1, 4}
	var lastVals []*gpb.TypedValue
	var lastWant []*gpb.TypedValue
	for _, i := range order {
		tc := decoded[i]
		var got gpb.SubscribeResponse
		if !d.Decode(marshal(t, tc.msg), &got) {
			t.Fatalf("%s: left to protobuf", tc.name)
		}
		if !proto.Equal(&got, tc.msg) {
			t.Fatalf("%s: decoded\n%v\nwant\n%v", tc.name, &got, tc.msg)
		}
		for j, v := range lastVals {
			if !proto.Equal(v, lastWant[j]) {
				t.Fatalf("%s: a value of the message before changed to %v, want %v", tc.name, v, lastWant[j])
			}
		}
		lastVals, lastWant = nil, nil
		for j, u := range got.GetUpdate().GetUpdate() {
			lastVals = append(lastVals, u.GetVal())
			lastWant = append(lastWant, tc.msg.GetUpdate().GetUpdate()[j].GetVal())
		}
	}
	b := marshal(t, decoded[3].msg)
	var m gpb.SubscribeResponse
	fresh := NewDecoder()
	allocs := func(d *Decoder) float64 {
		return testing.AllocsPerRun(100, func() { m.Reset(); d.Decode(b, &m) })
	}
	if a, f := allocs(d), allocs(fresh); a > f-4 {
		t.Errorf("reusing decoder: %v allocations a message, fresh one %v: want 4 fewer (response, notification, updates, their pointers)", a, f)
	}
}

// unknownField is a notification with a field this gNMI version does
// not know (3 was the deprecated alias).
func unknownField(t testing.TB) []byte {
	n := protowire.AppendTag(nil, 3, protowire.BytesType)
	n = protowire.AppendString(n, "#alias")
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendBytes(b, n)
}

func TestFallback(t *testing.T) {
	cases := map[string][]byte{"unknown field": unknownField(t)}
	for _, tc := range fallback {
		cases[tc.name] = marshal(t, tc.msg)
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			var want gpb.SubscribeResponse
			if err := proto.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			if NewDecoder().Decode(b, &gpb.SubscribeResponse{}) {
				t.Fatal("decoded a message it should leave to protobuf")
			}
			c := NewCodec()
			var got gpb.SubscribeResponse
			if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&got, &want) || c.D.Fallbacks != 1 {
				t.Fatalf("codec gave\n%v (fallbacks %d)\nwant\n%v", &got, c.D.Fallbacks, &want)
			}
		})
	}
}

// Malformed bytes get protobuf's error, never a partial message.
func TestCodecMalformed(t *testing.T) {
	good := marshal(t, decoded[3].msg)
	badUTF8 := marshal(t, update(&gpb.Notification{Update: []*gpb.Update{{Path: elems("a"), Val: change.String("x")}}}))
	badUTF8[len(badUTF8)-1] = 0xff
	for name, b := range map[string][]byte{
		"truncated":   good[:len(good)-3],
		"bad tag":     {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"bad utf-8":   badUTF8,
		"field zero":  protowire.AppendTag(nil, 0, protowire.VarintType),
		"long length": append(protowire.AppendTag(nil, 1, protowire.BytesType), 0x7f),
	} {
		t.Run(name, func(t *testing.T) {
			var got gpb.SubscribeResponse
			err := NewCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &got)
			werr := proto.Unmarshal(b, &gpb.SubscribeResponse{})
			if err == nil || werr == nil {
				t.Fatalf("codec error %v, protobuf error %v: want both", err, werr)
			}
		})
	}
}

// Paths repeat between notifications: the second decode hands out the
// same Path, and a value string is interned.
func TestSharesPaths(t *testing.T) {
	d := NewDecoder()
	b := marshal(t, decoded[3].msg)
	var a, c gpb.SubscribeResponse
	if !d.Decode(b, &a) || !d.Decode(b, &c) {
		t.Fatal("left to protobuf")
	}
	na, nc := a.GetUpdate(), c.GetUpdate()
	if na.Prefix != nc.Prefix || na.Update[0].Path != nc.Update[0].Path {
		t.Error("paths decoded again, not shared")
	}
	if na.Update[0].Val == nc.Update[0].Val {
		t.Error("values shared between notifications")
	}
	allocs := testing.AllocsPerRun(100, func() {
		var m gpb.SubscribeResponse
		d.Decode(b, &m)
	})
	// Response wrapper, notification, update pointers, updates, values,
	// three oneof wrappers.
	if allocs > 8 {
		t.Errorf("%.0f allocations a warm decode, want at most 8", allocs)
	}
}

// The caches stay inside their budgets however many distinct paths come.
func TestCacheBudget(t *testing.T) {
	d := NewDecoder()
	for i := 0; i < 5000; i++ {
		p := change.NeighborPath("default", "10.0."+string(rune('a'+i%26))+"."+string(rune('0'+i/26%10))+string(rune('0'+i/260)), "state", "peer-as")
		b := marshal(t, update(&gpb.Notification{Update: []*gpb.Update{{Path: p, Val: change.Uint(uint64(i))}}}))
		var m gpb.SubscribeResponse
		if !d.Decode(b, &m) {
			t.Fatal("left to protobuf")
		}
	}
	if d.paths.bytes > maxPathBytes || d.elems.bytes > maxElemBytes || d.strs.bytes > maxStrBytes {
		t.Errorf("caches hold %d, %d, %d bytes; budgets %d, %d, %d", d.paths.bytes, d.elems.bytes, d.strs.bytes, maxPathBytes, maxElemBytes, maxStrBytes)
	}
	if d.paths.bytes < maxPathBytes*9/10 {
		t.Errorf("path cache holds %d bytes after 5000 paths: it should stay nearly full", d.paths.bytes)
	}
}

// distinctPaths returns n responses, each updating a leaf of another
// neighbor, as a subscriber of a whole fleet sees them.
// It returns the prefixes' wire bytes too.
func distinctPaths(tb testing.TB, n int) (msgs, prefixes [][]byte) {
	for i := 0; i < n; i++ {
		addr := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		pre := &gpb.Path{Target: fmt.Sprintf("router%03d", i%200), Elem: change.NeighborPath("default", addr).GetElem()}
		n := &gpb.Notification{Timestamp: int64(i), Prefix: pre,
			Update: []*gpb.Update{{Path: &gpb.Path{Elem: []*gpb.PathElem{{Name: "state"}, {Name: "peer-as"}}}, Val: change.Uint(uint64(i))}}}
		msgs = append(msgs, marshal(tb, update(n)))
		prefixes = append(prefixes, marshal(tb, pre))
	}
	return msgs, prefixes
}

// A full cache admits a path the second time it misses: not a stream of
// paths that never repeat, but paths that come back, even more of them
// than the cache holds.
func TestCacheAdmission(t *testing.T) {
	d := NewDecoder()
	decode := func(b []byte) {
		t.Helper()
		var m gpb.SubscribeResponse
		if !d.Decode(b, &m) {
			t.Fatal("left to protobuf")
		}
	}
	msgs, _ := distinctPaths(t, 60000)
	for _, b := range msgs[:20000] {
		decode(b)
	}
	// Once full, a new path that never comes back is seldom admitted.
	admitted := d.paths.admitted
	for _, b := range msgs[20000:40000] {
		decode(b)
	}
	if n := d.paths.admitted - admitted; n > 20000/8 {
		t.Errorf("%d of 20000 paths seen once admitted into the full cache", n)
	}
	// 300 paths in turn, more than the cache holds: those it holds hit,
	// and each one it does not is admitted when it comes back.
	cycle := msgs[40000:40300]
	for range 20 {
		for _, b := range cycle {
			decode(b)
		}
	}
	hits := d.paths.hits
	for _, b := range cycle {
		decode(b)
	}
	// Each message looks up its prefix and its update's path, which
	// hits all but rarely; the prefixes' hits are the rest. Under random
	// eviction about a third of a 300-path cycle hits a cache of ~170
	// (admitting every miss was measured no better).
	if got, held := d.paths.hits-hits-len(cycle), len(d.paths.m); got < held/3 {
		t.Errorf("%d of %d cycling prefixes hit a cache of %d paths", got, len(cycle), held)
	}
}

func BenchmarkDecode(b *testing.B) {
	msg := marshal(b, decoded[3].msg)
	b.Run("distinct-paths", func(b *testing.B) {
		// A subscriber of a whole fleet: no path repeats within the
		// caches' reach.
		msgs, _ := distinctPaths(b, 20000)
		d := NewDecoder()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			var m gpb.SubscribeResponse
			d.Decode(msgs[i%len(msgs)], &m)
			i++
		}
	})
	b.Run("respcodec", func(b *testing.B) {
		d := NewDecoder()
		b.ReportAllocs()
		for b.Loop() {
			var m gpb.SubscribeResponse
			d.Decode(msg, &m)
		}
	})
	b.Run("protobuf", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m gpb.SubscribeResponse
			proto.Unmarshal(msg, &m)
		}
	})
}

// FuzzDecode: whatever the bytes, a message the decoder takes is the one
// protobuf makes of them, and it takes it again the same from its caches.
func FuzzDecode(f *testing.F) {
	for _, tc := range decoded {
		f.Add(marshal(f, tc.msg))
	}
	for _, tc := range fallback {
		f.Add(marshal(f, tc.msg))
	}
	f.Add(unknownField(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDecoder()
		for i := 0; i < 2; i++ {
			var got gpb.SubscribeResponse
			if !d.Decode(b, &got) {
				return
			}
			var want gpb.SubscribeResponse
			if err := proto.Unmarshal(b, &want); err != nil {
				t.Fatalf("decoded what protobuf refuses (%v): %v", err, &got)
			}
			if !proto.Equal(&got, &want) {
				t.Fatalf("pass %d: decoded\n%v\nprotobuf\n%v", i, &got, &want)
			}
		}
	})
}
