package probe

import "time"

// sampleLine is the --json form of a sample: one object per line, times in
// RFC 3339 UTC, durations in microseconds (as the model and InfluxDB
// schema have them), field names as the bgp_keepalive measurement's.
type sampleLine struct {
	Time               string  `json:"time"`
	Event              string  `json:"event"`
	Router             string  `json:"router"`
	NetworkInstance    string  `json:"network_instance"`
	Local              string  `json:"local"`
	Neighbor           string  `json:"neighbor"`
	RTTus              float64 `json:"rtt_us"`
	TSRTTus            float64 `json:"ts_rtt_us,omitempty"`
	Method             string  `json:"method"`
	Piggybacked        bool    `json:"piggybacked,omitempty"`
	MinUS              float64 `json:"rtt_min_us"`
	MaxUS              float64 `json:"rtt_max_us"`
	MeanUS             float64 `json:"rtt_mean_us"`
	P50us              float64 `json:"rtt_p50_us"`
	P99us              float64 `json:"rtt_p99_us"`
	JitterUS           float64 `json:"jitter_us"`
	WindowSamples      int     `json:"window_samples"`
	Samples            uint64  `json:"samples"`
	Losses             uint64  `json:"loss"`
	KeepalivesSent     uint64  `json:"keepalives_sent"`
	KeepalivesReceived uint64  `json:"keepalives_received"`
	MessagesSeen       uint64  `json:"messages_seen"`
	TTL                uint8   `json:"ttl"`
	Hops               uint8   `json:"hops"`
	HopChanges         uint64  `json:"hop_changes"`
}

type pathChangeJSON struct {
	Time            string `json:"time"`
	Event           string `json:"event"`
	Router          string `json:"router"`
	NetworkInstance string `json:"network_instance"`
	Local           string `json:"local"`
	Neighbor        string `json:"neighbor"`
	OldTTL          uint8  `json:"old_ttl"`
	NewTTL          uint8  `json:"new_ttl"`
	OldHops         uint8  `json:"old_hops"`
	NewHops         uint8  `json:"new_hops"`
}

func usOf(d int64) float64 { return float64(d) / 1e3 }

func sampleJSON(s Sample) sampleLine {
	p := s.Peer
	return sampleLine{
		Time: s.Time.UTC().Format(time.RFC3339Nano), Event: "sample", Router: s.Router,
		NetworkInstance: s.NetworkInstance, Local: s.Local.String(), Neighbor: s.PeerKey.Peer.String(),
		RTTus: usOf(int64(s.RTT)), TSRTTus: usOf(int64(s.TSRTT)), Method: s.Method, Piggybacked: s.Piggybacked,
		MinUS: usOf(p.Min), MaxUS: usOf(p.Max), MeanUS: p.Mean / 1e3, P50us: usOf(p.P50), P99us: usOf(p.P99),
		JitterUS: p.Jitter / 1e3, WindowSamples: p.N, Samples: p.Samples, Losses: p.Losses,
		KeepalivesSent: p.KeepalivesSent, KeepalivesReceived: p.KeepalivesReceived,
		MessagesSeen: p.MessagesSeen, TTL: p.TTL, Hops: p.Hops, HopChanges: p.HopChanges,
	}
}

// lossLine is the --json form of a lost keepalive.
type lossLine struct {
	Time            string `json:"time"`
	Event           string `json:"event"`
	Router          string `json:"router"`
	NetworkInstance string `json:"network_instance"`
	Local           string `json:"local"`
	Neighbor        string `json:"neighbor"`
	Reason          string `json:"reason"`
	Losses          uint64 `json:"loss"`
}
