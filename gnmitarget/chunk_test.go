package gnmitarget

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/change"
)

// capture is a Subscribe stream that keeps what is sent, decoding
// pre-encoded messages as a client would.
type capture struct {
	grpc.ServerStream
	got    []*gpb.Notification
	shared int // messages that went out pre-encoded
}

func (c *capture) Send(r *gpb.SubscribeResponse) error {
	// Round-trip through the wire form, like the pre-encoded ones.
	b, err := proto.Marshal(r)
	if err != nil {
		return err
	}
	return c.decode(b)
}

func (c *capture) SendMsg(m any) error {
	if p, ok := m.(*preEncoded); ok {
		c.shared++
		return c.decode(p.b)
	}
	return c.Send(m.(*gpb.SubscribeResponse))
}

func (c *capture) decode(b []byte) error {
	var r gpb.SubscribeResponse
	if err := proto.Unmarshal(b, &r); err != nil {
		return err
	}
	c.got = append(c.got, r.GetUpdate())
	return nil
}
func (c *capture) Context() context.Context             { return context.Background() }
func (c *capture) Recv() (*gpb.SubscribeRequest, error) { return nil, nil }

func TestChunkRuns(t *testing.T) {
	g1, g2 := &node{}, &node{}
	g1in := &node{parent: &node{parent: g1}} // an entry nested in g1's (an AFI-SAFI of a neighbor)
	ev := func(target string, g *node, ts int64) event {
		return event{target: target, group: g, ts: ts, path: &gpb.Path{}}
	}
	many := make([]event, maxPerNotification+3)
	for i := range many {
		many[i] = ev("a", g1, 1)
	}
	for _, tc := range []struct {
		name string
		evs  []event
		want [][2]int
	}{
		{"one entry, one time", []event{ev("a", g1, 1), ev("a", g1, 1), ev("a", g1, 1)}, [][2]int{{0, 3}}},
		{"another time", []event{ev("a", g1, 1), ev("a", g1, 2), ev("a", g1, 2)}, [][2]int{{0, 1}, {1, 3}}},
		{"another list entry", []event{ev("a", g1, 1), ev("a", g2, 1), ev("a", g1, 1)}, [][2]int{{0, 1}, {1, 2}, {2, 3}}},
		{"another target", []event{ev("a", g1, 1), ev("b", g1, 1)}, [][2]int{{0, 1}, {1, 2}}},
		{"a nested entry joins", []event{ev("a", g1, 1), ev("a", g1in, 1), ev("a", g1, 1)}, [][2]int{{0, 3}}},
		{"but not the other way", []event{ev("a", g1in, 1), ev("a", g1, 1)}, [][2]int{{0, 1}, {1, 2}}},
		{"notification full", many, [][2]int{{0, maxPerNotification}, {maxPerNotification, maxPerNotification + 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newChunk(tc.evs)
			var got [][2]int
			for i := range c.runs {
				got = append(got, [2]int{c.runs[i].start, c.runs[i].end})
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("runs %v, want %v", got, tc.want)
			}
			for i := range tc.evs {
				r := &c.runs[c.runOf[i]]
				if i < r.start || i >= r.end {
					t.Fatalf("event %d mapped to run [%d,%d)", i, r.start, r.end)
				}
			}
		})
	}
}

// TestSharedEncodingSameAsBuilt drives random writes (several targets,
// neighbors and timestamps, deletes, repeats that coalesce, subscribers
// that filter) into subscriber queues and checks that what goes out,
// shared encodings included, decodes to exactly the leaves, in the same
// order and with the same timestamps, as notifications built one by one
// without sharing.
func TestSharedEncodingSameAsBuilt(t *testing.T) {
	for _, enc := range []gpb.Encoding{gpb.Encoding_PROTO, gpb.Encoding_JSON, gpb.Encoding_JSON_IETF} {
		t.Run(enc.String(), func(t *testing.T) {
			s, err := New()
			if err != nil {
				t.Fatal(err)
			}
			lists := []*gpb.SubscriptionList{
				streamList("*", gpb.SubscriptionMode_ON_CHANGE, "/"),
				streamList("r1", gpb.SubscriptionMode_ON_CHANGE, "/"),
				streamList("*", gpb.SubscriptionMode_ON_CHANGE, "/network-instances/network-instance/protocols/protocol/bgp/neighbors/neighbor/state/messages"),
			}
			var subs []*subscription
			for _, sl := range lists {
				sl.Encoding = enc
				sub, err := s.newSubscription(sl)
				if err != nil {
					t.Fatal(err)
				}
				s.register(sub)
				subs = append(subs, sub)
			}
			rng := rand.New(rand.NewPCG(7, 9))
			shared := 0
			for round := 0; round < 50; round++ {
				// A few writes between drains, so queues hold several
				// chunks and some leaves coalesce.
				for w := 0; w < 1+rng.IntN(3); w++ {
					var ups []change.Update
					at := t0.Add(time.Duration(round*10+w) * time.Millisecond)
					for k := 0; k < 1+rng.IntN(12); k++ {
						addr := fmt.Sprintf("10.0.0.%d", rng.IntN(4))
						u := change.Update{Router: fmt.Sprintf("r%d", rng.IntN(3)), Time: at,
							Path: change.NeighborPath("default", addr, "state", "messages", "received", []string{"UPDATE", "KEEPALIVE"}[rng.IntN(2)])}
						switch rng.IntN(6) {
						case 0:
							u.Path = change.NeighborPath("default", addr, "state", "session-state")
							u.Value = change.String([]string{"IDLE", "ESTABLISHED"}[rng.IntN(2)])
						case 1:
							if rng.IntN(3) == 0 {
								u.Path = change.NeighborPath("default", addr) // delete the neighbor
								break
							}
							fallthrough
						default:
							u.Value = change.Uint(uint64(rng.IntN(1000)))
						}
						ups = append(ups, u)
					}
					s.UpdateMany(ups)
				}
				for i, sub := range subs {
					ents, resync, _ := sub.q.drain(nil)
					if resync {
						t.Fatal("queue overflowed")
					}
					var built capture
					w := s.streamNotifier(&built, sub.enc, false)
					for _, e := range ents {
						ev := e.ev()
						if err := w.add(ev.target, ev.group, ev.depth, ev.path, ev.val, ev.ts); err != nil {
							t.Fatal(err)
						}
					}
					if err := w.flush(); err != nil {
						t.Fatal(err)
					}
					var sent capture
					if err := s.sendEntries(&sent, sub, ents); err != nil {
						t.Fatal(err)
					}
					shared += sent.shared
					if a, b := texts(sent.got), texts(built.got); a != b {
						t.Fatalf("round %d subscriber %d: sent\n%s\nbuilt\n%s", round, i, a, b)
					}
				}
			}
			if shared == 0 {
				t.Fatal("no notification went out in its shared encoding")
			}
		})
	}
}

// texts lists the leaves of notifications in order, one line each with
// its target, full path, timestamp and value (or delete): notifications
// may be cut differently, the leaves must be the same.
func texts(ns []*gpb.Notification) string {
	var out string
	for _, n := range ns {
		pre := n.GetPrefix()
		full := func(p *gpb.Path) string {
			return change.PathKey(&gpb.Path{Elem: append(append([]*gpb.PathElem{}, pre.GetElem()...), p.GetElem()...)})
		}
		for _, d := range n.GetDelete() {
			out += fmt.Sprintf("%s %s @%d delete\n", pre.GetTarget(), full(d), n.GetTimestamp())
		}
		for _, u := range n.GetUpdate() {
			out += fmt.Sprintf("%s %s @%d %s\n", pre.GetTarget(), full(u.GetPath()), n.GetTimestamp(), prototext.Format(u.GetVal()))
		}
	}
	return out
}

// TestWholeRunRefusesChangedQueues checks the cases where a subscriber's
// queue no longer holds a run as published.
func TestWholeRunRefusesChangedQueues(t *testing.T) {
	c := newChunk([]event{{target: "a", ts: 1}, {target: "a", ts: 1}, {target: "a", ts: 1}, {target: "b", ts: 1}})
	other := newChunk([]event{{target: "a", ts: 1}})
	ent := func(src *chunk, i int) qent { return qent{src: src, idx: i} }
	for _, tc := range []struct {
		name string
		ents []qent
		want int // run length, 0 for none
	}{
		{"whole", []qent{ent(c, 0), ent(c, 1), ent(c, 2), ent(c, 3)}, 3},
		{"second run", []qent{ent(c, 3)}, 1},
		{"first left out", []qent{ent(c, 1), ent(c, 2)}, 0},
		{"middle filtered", []qent{ent(c, 0), ent(c, 2), ent(c, 3)}, 0},
		{"cut short", []qent{ent(c, 0), ent(c, 1)}, 0},
		{"replaced by a newer value", []qent{ent(c, 0), ent(other, 0), ent(c, 2)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := 0
			if r := wholeRun(tc.ents); r != nil {
				got = r.end - r.start
			}
			if got != tc.want {
				t.Fatalf("run of %d, want %d", got, tc.want)
			}
		})
	}
}
