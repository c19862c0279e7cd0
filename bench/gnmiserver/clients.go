package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshd/meshd/gnmiclient/respcodec"
)

// clients are the bench's gNMI subscribers, in this process or in a child
// process (so that the server's CPU and memory are measured apart from
// theirs; both share the machine's cores all the same).
type clients interface {
	syncTime() time.Duration
	start() error
	stop() (result, error)
	close()
}

// result is what the subscribers saw while measuring.
type result struct {
	Received      int64         // leaf updates
	Notifications int64         // notifications, one latency sample each
	P50, P99      time.Duration //
	P999, Max     time.Duration //
	// Per change batch (one timestamp): when its first subscriber had it,
	// and when its last one did; the gap is the fan-out's.
	FirstP50, FirstP99 time.Duration
	LastP50, LastP99   time.Duration
	Batches            int
	CPU                time.Duration // the clients' CPU while measuring (child only)
	RSS                string        // the clients' RSS (child only)
}

// subscriberSet is n STREAM ON_CHANGE subscribers on the whole tree, each
// on its own connection, each fully decoding what it receives (the gRPC
// proto codec unmarshals every SubscribeResponse, as gnmic does). Latency
// is the receive time minus the notification's timestamp, which is the
// time the bench stamped on the change before handing it to the merge core.
type subscriberSet struct {
	lat       hist
	batches   batchSpread
	received  atomic.Int64
	measuring atomic.Bool
	wg        sync.WaitGroup
	conns     []*grpc.ClientConn
	synced    time.Duration
	cpu0      time.Duration
	cpu       time.Duration
}

func connect(ctx context.Context, addr string, n int, withSync bool) (*subscriberSet, error) {
	s := &subscriberSet{}
	ready := make(chan struct{}, n)
	w0 := time.Now()
	for i := 0; i < n; i++ {
		dopts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if clientWindow > 0 {
			dopts = append(dopts, grpc.WithInitialWindowSize(clientWindow), grpc.WithInitialConnWindowSize(clientWindow))
		}
		cc, err := grpc.NewClient(addr, dopts...)
		if err != nil {
			return nil, err
		}
		s.conns = append(s.conns, cc)
		// Subscribers decode as meshd's own gNMI client does: the
		// generic protobuf decoder would make a hundred subscribers on
		// this 2-core machine cost more than the server they measure.
		codec := respcodec.NewCodec()
		codec.D.Reuse = true
		st, err := gpb.NewGNMIClient(cc).Subscribe(ctx, grpc.ForceCodecV2(codec))
		if err != nil {
			return nil, err
		}
		if err := st.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: &gpb.SubscriptionList{
			Prefix: &gpb.Path{Target: "*"}, Mode: gpb.SubscriptionList_STREAM, Encoding: gpb.Encoding_PROTO, UpdatesOnly: !withSync,
			Subscription: []*gpb.Subscription{{Path: &gpb.Path{}, Mode: gpb.SubscriptionMode_ON_CHANGE}}}}}); err != nil {
			return nil, err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			r := new(gpb.SubscribeResponse)
			for {
				r.Reset()
				if err := st.RecvMsg(r); err != nil {
					return
				}
				if r.GetSyncResponse() {
					ready <- struct{}{}
					continue
				}
				n := r.GetUpdate()
				if s.measuring.Load() {
					d := time.Duration(time.Now().UnixNano() - n.GetTimestamp())
					s.lat.add(d)
					s.batches.add(n.GetTimestamp(), d)
					s.received.Add(int64(len(n.GetUpdate()) + len(n.GetDelete())))
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case <-ready:
		case <-time.After(5 * time.Minute):
			return nil, errors.New("subscribers did not sync within 5 minutes")
		}
	}
	s.synced = time.Since(w0)
	return s, nil
}

func (s *subscriberSet) begin() {
	s.cpu0 = cpuTime()
	s.measuring.Store(true)
}

func (s *subscriberSet) end() result {
	s.measuring.Store(false)
	s.cpu = cpuTime() - s.cpu0
	s.lat.mu.Lock()
	defer s.lat.mu.Unlock()
	first, last := s.batches.hists()
	return result{
		Received: s.received.Load(), Notifications: int64(len(s.lat.us)),
		P50: s.lat.pct(0.5), P99: s.lat.pct(0.99), P999: s.lat.pct(0.999), Max: s.lat.pct(1),
		FirstP50: first.pct(0.5), FirstP99: first.pct(0.99), LastP50: last.pct(0.5), LastP99: last.pct(0.99),
		Batches: len(first.us), CPU: s.cpu, RSS: procStatus("VmRSS"),
	}
}

// batchSpread keeps, per change batch (the bench stamps a batch's changes
// with one time), the least and the greatest latency any subscriber saw.
type batchSpread struct {
	mu sync.Mutex
	m  map[int64][2]time.Duration
}

func (b *batchSpread) add(ts int64, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[int64][2]time.Duration{}
	}
	mm, ok := b.m[ts]
	if !ok {
		mm = [2]time.Duration{d, d}
	}
	b.m[ts] = [2]time.Duration{min(mm[0], d), max(mm[1], d)}
}

func (b *batchSpread) hists() (first, last *hist) {
	b.mu.Lock()
	defer b.mu.Unlock()
	first, last = &hist{}, &hist{}
	for _, mm := range b.m {
		first.add(mm[0])
		last.add(mm[1])
	}
	return first, last
}

func (s *subscriberSet) shutdown() {
	for _, cc := range s.conns {
		_ = cc.Close()
	}
	s.wg.Wait()
}

// inProcClients runs the subscribers in this process.
type inProcClients struct {
	set    *subscriberSet
	cancel context.CancelFunc
}

func startInProc(ctx context.Context, addr string, n int, withSync bool) (clients, error) {
	ctx, cancel := context.WithCancel(ctx)
	set, err := connect(ctx, addr, n, withSync)
	if err != nil {
		cancel()
		return nil, err
	}
	return &inProcClients{set: set, cancel: cancel}, nil
}

func (c *inProcClients) syncTime() time.Duration { return c.set.synced }
func (c *inProcClients) start() error            { c.set.begin(); return nil }
func (c *inProcClients) stop() (result, error) {
	r := c.set.end()
	r.CPU, r.RSS = 0, ""
	return r, nil
}
func (c *inProcClients) close() { c.cancel(); c.set.shutdown() }

// child runs the subscribers in a re-executed copy of this binary, driven
// over its stdin ("start", "stop") and reporting on its stdout (a sync
// line, then the result as JSON).
type child struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	synced time.Duration
}

func startChild(addr string, n int, withSync bool) (clients, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-child", "-addr", addr, "-subscribers", fmt.Sprint(n), fmt.Sprintf("-sync=%v", withSync), fmt.Sprintf("-client-window=%d", clientWindow)}
	if cpuProfile != "" {
		args = append(args, "-cpuprofile", cpuProfile+".clients")
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	c.out.Buffer(make([]byte, 1<<20), 1<<20)
	line, err := c.line()
	if err != nil {
		c.close()
		return nil, err
	}
	d, err := time.ParseDuration(strings.TrimPrefix(line, "synced "))
	if err != nil {
		c.close()
		return nil, fmt.Errorf("child: %q", line)
	}
	c.synced = d
	return c, nil
}

func (c *child) line() (string, error) {
	if !c.out.Scan() {
		if err := c.out.Err(); err != nil {
			return "", fmt.Errorf("child: %w", err)
		}
		return "", errors.New("child: exited early")
	}
	return c.out.Text(), nil
}

func (c *child) syncTime() time.Duration { return c.synced }

func (c *child) start() error {
	_, err := io.WriteString(c.in, "start\n")
	return err
}

func (c *child) stop() (result, error) {
	var r result
	if _, err := io.WriteString(c.in, "stop\n"); err != nil {
		return r, err
	}
	line, err := c.line()
	if err != nil {
		return r, err
	}
	err = json.Unmarshal([]byte(line), &r)
	return r, err
}

func (c *child) close() {
	_ = c.in.Close()
	_ = c.cmd.Wait()
}

// runChild is the child process's side.
func runChild(addr string, n int, withSync bool) error {
	set, err := connect(context.Background(), addr, n, withSync)
	if err != nil {
		return err
	}
	fmt.Printf("synced %v\n", set.synced)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "start":
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				_ = pprof.StartCPUProfile(f)
			}
			set.begin()
		case "stop":
			pprof.StopCPUProfile()
			b, err := json.Marshal(set.end())
			if err != nil {
				return err
			}
			fmt.Println(string(b))
		}
	}
	set.shutdown()
	return nil
}
