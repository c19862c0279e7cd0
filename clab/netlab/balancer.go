package netlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// BalancerAddr is, in a lab with replicas, the one BMP address every
// router sends to: a TCP balancer in the management namespace passes
// each connection to a replica, as an operator puts a load balancer
// (IPVS, a Kubernetes Service) in front of the replicas, so that a
// router whose replica dies connects again to a live one. It skips
// replicas a fault holds, as a balancer's health check would.
//
// Unlike IPVS it hides the router's address (each replica sees the
// balancer's): the lab's routers are named by their BMP sysName.
const BalancerAddr = "10.77.0.3"

func (l *Lab) startBalancer() error {
	if err := nsRun(MgmtNS, "ip", "addr", "add", BalancerAddr+"/24", "dev", "br0"); err != nil {
		return err
	}
	bin, err := l.opts.binary("meshd-lab", l.opts.Lab)
	if err != nil {
		return err
	}
	if err := l.start("bmp-balancer", MgmtNS, bin, "bmp-balancer", "--dir", l.State.Dir); err != nil {
		return err
	}
	return l.waitLog("bmp-balancer", "bmp balancer: listening", 10*time.Second)
}

// ServeBalancer runs the lab's BMP balancer in the management namespace
// until ctx ends: each connection goes to the next replica, in turn, that
// no fault holds and that takes it.
func ServeBalancer(ctx context.Context, dir string) error {
	ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", BalancerAddr, BMPPort))
	if err != nil {
		return err
	}
	fmt.Printf("bmp balancer: listening on %s\n", ln.Addr())
	go func() { <-ctx.Done(); ln.Close() }()
	var next atomic.Uint64
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go func() {
			defer c.Close()
			l, err := Load(dir)
			if err != nil {
				return
			}
			addrs, err := l.meshdAddrs(BMPPort)
			if err != nil {
				fmt.Printf("bmp balancer: %s: %v\n", c.RemoteAddr(), err)
				return
			}
			first := int(next.Add(1)) % len(addrs)
			for i := range addrs {
				addr := addrs[(first+i)%len(addrs)]
				d := net.Dialer{Timeout: 2 * time.Second}
				up, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					continue
				}
				fmt.Printf("bmp balancer: %s → %s\n", c.RemoteAddr(), addr)
				splice(c, up)
				return
			}
			fmt.Printf("bmp balancer: %s: no replica took it\n", c.RemoteAddr())
		}()
	}
}

// splice copies both ways until either side ends, then closes both, so
// that a replica's end reaches the router as its session's end.
func splice(a, b net.Conn) {
	defer b.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(a, b); done <- struct{}{} }()
	go func() { _, _ = io.Copy(b, a); done <- struct{}{} }()
	<-done
}
