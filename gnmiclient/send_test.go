package gnmiclient

import (
	"errors"
	"io"
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// eofStream is a Subscribe stream the server already ended: Send says
// io.EOF, Recv gives the server's status.
type eofStream struct {
	gpb.GNMI_SubscribeClient
	sendErr, recvErr error
}

func (s eofStream) Send(*gpb.SubscribeRequest) error      { return s.sendErr }
func (s eofStream) Recv() (*gpb.SubscribeResponse, error) { return nil, s.recvErr }

func TestSendStatus(t *testing.T) {
	denied := status.Error(codes.Unauthenticated, "bad password")
	for _, tc := range []struct {
		name             string
		sendErr, recvErr error
		want             error
	}{
		{"sent", nil, denied, nil},
		{"ended with a status", io.EOF, denied, denied},
		{"ended cleanly", io.EOF, io.EOF, io.EOF},
	} {
		err := sendStatus(eofStream{sendErr: tc.sendErr, recvErr: tc.recvErr}, &gpb.SubscribeRequest{})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
