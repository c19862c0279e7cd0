package testenv

import (
	"bufio"
	"bytes"
	"testing"

	api "github.com/osrg/gobgp/v4/api"
	"google.golang.org/protobuf/encoding/protojson"
)

// GoBGPPeers reads a recording of gobgpd's ListPeer stream, one
// ListPeerResponse as protojson a line (the probe's fixtures), into its
// peers.
func GoBGPPeers(t testing.TB, jsonl []byte) []*api.Peer {
	t.Helper()
	var peers []*api.Peer
	sc := bufio.NewScanner(bytes.NewReader(jsonl))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r api.ListPeerResponse
		if err := protojson.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("gobgpd ListPeer recording: %v", err)
		}
		peers = append(peers, r.GetPeer())
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("gobgpd ListPeer recording: %v", err)
	}
	return peers
}
