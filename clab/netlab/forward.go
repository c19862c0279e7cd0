package netlab

import (
	"context"
	"fmt"
	"io"
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
	return l.startHere("forward", bin, "forward")
}

// Forward serves host loopback ports that lead into the management
// namespace until ctx ends.
func Forward(ctx context.Context) error {
	routes := []struct{ host, inner string }{
		{fmt.Sprintf("127.0.0.1:%d", GNMIPort), fmt.Sprintf("127.0.0.1:%d", GNMIPort)},
		{fmt.Sprintf("127.0.0.1:%d", HTTPPort), fmt.Sprintf("127.0.0.1:%d", HTTPPort)},
		{fmt.Sprintf("127.0.0.1:%d", InfluxPort), fmt.Sprintf("%s:%d", MgmtAddr, InfluxPort)},
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
		go func(inner string) {
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

func pipe(ctx context.Context, c net.Conn, inner string) {
	defer c.Close()
	d, err := netns.Dial(ctx, MgmtNS, inner)
	if err != nil {
		return
	}
	defer d.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(d, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, d); done <- struct{}{} }()
	<-done
}
