package netlab

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"

	"github.com/meshd/meshd/internal/netns"
)

// SetBin sets how the lab finds tools after Load.
func (l *Lab) SetBin(f func(string) (string, error)) { l.opts.Bin = f }

// StartForwarder starts `meshd-lab forward` detached, so the lab's gNMI
// target, HTTP endpoints and InfluxDB are reachable on this host's
// loopback after `lab up` returns.
func (l *Lab) StartForwarder() error {
	bin, err := l.opts.binary("meshd-lab", l.opts.Lab)
	if err != nil {
		return err
	}
	return l.startHere("forward", bin, "forward", "--dir", l.State.Dir)
}

// Forward serves host loopback ports that lead into the management
// namespace until ctx ends: meshd's gNMI target and HTTP (with replicas,
// the first one no fault holds, read from the lab's state at each
// connection), InfluxDB, and etcd when the lab has one.
func Forward(ctx context.Context, dir string) error {
	meshd := func(port int) func() []string {
		return func() []string {
			l, err := Load(dir)
			if err != nil {
				return nil
			}
			addrs, _ := l.meshdAddrs(port)
			return addrs
		}
	}
	fixed := func(addr string) func() []string { return func() []string { return []string{addr} } }
	type route struct {
		host  string
		inner func() []string
	}
	routes := []route{
		{fmt.Sprintf("127.0.0.1:%d", GNMIPort), meshd(GNMIPort)},
		{fmt.Sprintf("127.0.0.1:%d", HTTPPort), meshd(HTTPPort)},
		{fmt.Sprintf("127.0.0.1:%d", InfluxPort), fixed(fmt.Sprintf("%s:%d", MgmtAddr, InfluxPort))},
	}
	if l, err := Load(dir); err == nil && l.State.Replicas > 0 {
		routes = append(routes, route{fmt.Sprintf("127.0.0.1:%d", EtcdPort), fixed(fmt.Sprintf("%s:%d", EtcdAddr, EtcdPort))})
	}
	var wg sync.WaitGroup
	for _, r := range routes {
		l, err := net.Listen("tcp", r.host)
		if err != nil {
			fmt.Fprintf(os.Stderr, "forward %s: %v (port taken on this host; reach it inside namespace %s instead)\n", r.host, err, MgmtNS)
			continue
		}
		go func() { <-ctx.Done(); l.Close() }()
		wg.Add(1)
		go func(inner func() []string) {
			defer wg.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go pipe(ctx, c, inner)
			}
		}(r.inner)
	}
	wg.Wait()
	return nil
}

func pipe(ctx context.Context, c net.Conn, inner func() []string) {
	defer c.Close()
	var d net.Conn
	for _, addr := range inner() {
		var err error
		if d, err = netns.Dial(ctx, MgmtNS, addr); err == nil {
			break
		}
	}
	if d == nil {
		return
	}
	splice(c, d)
}
