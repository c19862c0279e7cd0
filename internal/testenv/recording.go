package testenv

import (
	"os"
	"strings"
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/encoding/prototext"
)

// ReadRecording reads a recorded gNMI stream: SubscribeResponse text
// protos separated by lines of "---" (the form of the recordings under
// gnmiclient/translate/testdata).
func ReadRecording(t testing.TB, path string) []*gpb.SubscribeResponse {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*gpb.SubscribeResponse
	for i, part := range strings.Split(string(raw), "\n---\n") {
		r := &gpb.SubscribeResponse{}
		if err := prototext.Unmarshal([]byte(part), r); err != nil {
			t.Fatalf("%s: message %d: %v", path, i, err)
		}
		out = append(out, r)
	}
	return out
}
