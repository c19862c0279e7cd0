package bmpbridge

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/osrg/gobgp/v4/pkg/packet/bmp"

	"github.com/meshd/meshd/bmpbridge/decode"
)

// readBatch is a run of decoded messages the reader hands over in one
// channel send; batches go back to the reader to be reused.
type readBatch struct {
	msgs []decode.Message
	errs []error
}

const (
	readBatchSize = 256
	readBufSize   = 64 << 10
)

// read frames and decodes the stream until it ends or done closes. A
// batch goes out when it is full or when the next message is not yet
// buffered, so batching never holds a message back waiting for more.
func (s *session) read(c net.Conn, out chan<- *readBatch, free chan *readBatch, done <-chan struct{}) error {
	br := bufio.NewReaderSize(c, readBufSize)
	maxLen := s.b.cfg.MaxMessageSize
	var cur *readBatch
	send := func() bool {
		if cur == nil || len(cur.msgs) == 0 {
			return true
		}
		select {
		case out <- cur:
			cur = nil
			return true
		case <-done:
			return false
		}
	}
	for {
		if br.Buffered() < bmp.BMP_HEADER_SIZE && !send() {
			return nil
		}
		hdr, err := br.Peek(bmp.BMP_HEADER_SIZE)
		if err != nil {
			if errors.Is(err, io.EOF) {
				send()
				if len(hdr) == 0 {
					return nil
				}
				return fmt.Errorf("%w: stream ends inside a message (%d bytes left)", decode.ErrFraming, len(hdr))
			}
			send()
			return err
		}
		n, err := decode.FrameLength(hdr, maxLen)
		if err != nil {
			send()
			return err
		}
		if br.Buffered() < n && !send() {
			return nil
		}
		var raw []byte
		if n <= br.Size() {
			raw, err = br.Peek(n)
		} else {
			raw = make([]byte, n) // rare (large Route Mirroring): not kept
			_, err = io.ReadFull(br, raw)
		}
		if err != nil {
			send()
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: stream ends inside a message (%d bytes left)", decode.ErrFraming, br.Buffered())
			}
			return err
		}
		if cur == nil {
			select {
			case cur = <-free:
				cur.msgs, cur.errs = cur.msgs[:0], cur.errs[:0]
			default:
				cur = &readBatch{msgs: make([]decode.Message, 0, readBatchSize), errs: make([]error, 0, readBatchSize)}
			}
		}
		cur.msgs = cur.msgs[:len(cur.msgs)+1]
		cur.errs = append(cur.errs, s.dec.DecodeInto(&cur.msgs[len(cur.msgs)-1], raw))
		if n <= br.Size() {
			_, _ = br.Discard(n)
		}
		if len(cur.msgs) == cap(cur.msgs) && !send() {
			return nil
		}
	}
}
