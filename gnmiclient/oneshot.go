package gnmiclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
)

// One-shot requests for the CLI (meshd get, meshd subscribe): no
// reconnects, no merge core; the caller gets the notifications.

// Get sends one GetRequest for paths (gnmic path syntax) and returns the
// response.
func Get(ctx context.Context, t *Target, paths []string, encoding string) (*gpb.GetResponse, error) {
	return GetQuery(ctx, t, GetOptions{Paths: paths, Encoding: encoding})
}

// GetOptions is one GetRequest as gnmic's get flags describe it.
type GetOptions struct {
	Target   string // prefix.target: which of a server's targets
	Prefix   string // common path prefix
	Paths    []string
	Encoding string
}

// GetQuery sends one GetRequest built from o and returns the response.
func GetQuery(ctx context.Context, t *Target, o GetOptions) (*gpb.GetResponse, error) {
	fillOneShot(t)
	enc, err := ParseEncoding(o.Encoding)
	if err != nil {
		return nil, fmt.Errorf("encoding: %w", err)
	}
	req := &gpb.GetRequest{Encoding: enc, Type: gpb.GetRequest_ALL}
	if o.Prefix != "" {
		if req.Prefix, err = parsePath(o.Prefix); err != nil {
			return nil, fmt.Errorf("prefix: %w", err)
		}
	}
	if o.Target != "" {
		if req.Prefix == nil {
			req.Prefix = &gpb.Path{}
		}
		req.Prefix.Target = o.Target
	}
	for _, s := range o.Paths {
		p, err := parsePath(s)
		if err != nil {
			return nil, err
		}
		req.Path = append(req.Path, p)
	}
	conn, rctx, err := Dial(ctx, t)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	rctx, cancel := context.WithTimeout(rctx, t.Timeout)
	defer cancel()
	return gpb.NewGNMIClient(conn).Get(rctx, req)
}

// Subscribe runs one subscription in sub.Mode: once (until sync_response),
// poll (polls polls, interval apart, each ending at its sync_response) or
// stream (until ctx ends, or after polls notifications when polls > 0).
// fn sees every notification.
func Subscribe(ctx context.Context, t *Target, sub *Subscription, polls int, interval time.Duration, fn func(*gpb.Notification) error) error {
	fillOneShot(t)
	s := *sub
	s.setDefaults()
	if err := s.validate("subscription"); err != nil {
		return err
	}
	req, err := BuildRequest([]*Subscription{&s}, s.Mode, t.Encoding)
	if err != nil {
		return err
	}
	conn, rctx, err := Dial(ctx, t)
	if err != nil {
		return err
	}
	defer conn.Close()
	rctx, cancel := context.WithCancel(rctx)
	defer cancel()
	stream, err := gpb.NewGNMIClient(conn).Subscribe(rctx)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if err := sendStatus(stream, req); err != nil {
		return fmt.Errorf("subscribe request: %w", err)
	}
	mode := req.GetSubscribe().GetMode()
	done := 0
	seen := 0
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil && mode == gpb.SubscriptionList_STREAM {
				return nil
			}
			return err
		}
		switch r := resp.GetResponse().(type) {
		case *gpb.SubscribeResponse_Update:
			if err := fn(r.Update); err != nil {
				return err
			}
			seen++
			if mode == gpb.SubscriptionList_STREAM && polls > 0 && seen >= polls {
				return nil
			}
		case *gpb.SubscribeResponse_SyncResponse:
			switch mode {
			case gpb.SubscriptionList_ONCE:
				return nil
			case gpb.SubscriptionList_POLL:
				done++
				if done >= max(polls, 1) {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(interval):
				}
				if err := sendStatus(stream, &gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Poll{Poll: &gpb.Poll{}}}); err != nil {
					return fmt.Errorf("poll: %w", err)
				}
			}
		}
	}
}

func fillOneShot(t *Target) {
	if t.Name == "" {
		t.Name = t.Address
	}
	if t.Timeout == 0 {
		t.Timeout = 10 * time.Second
	}
}

// sendStatus is stream.Send with the server's status in place of io.EOF: a
// server that ended the stream before taking the request (refusing the
// credentials, say) tells why only through Recv, and "EOF" would hide it.
func sendStatus(stream gpb.GNMI_SubscribeClient, req *gpb.SubscribeRequest) error {
	err := stream.Send(req)
	if errors.Is(err, io.EOF) {
		if _, rerr := stream.Recv(); rerr != nil && !errors.Is(rerr, io.EOF) {
			return rerr
		}
	}
	return err
}
