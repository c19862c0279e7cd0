package decode

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
)

// Line is one JSON line of WriteJSON: a decoded message, the TCP flow it
// came from (for pcap input) and the decode error, if any.
type Line struct {
	Flow string `json:"flow,omitempty"`
	*Message
	Error string `json:"error,omitempty"`
}

// WriteJSON decodes a whole BMP byte stream and writes one JSON line per
// message; a framing error ends the stream with a line naming its offset.
func WriteJSON(w io.Writer, flow string, data []byte, vrfs map[string]string) error {
	enc := json.NewEncoder(w)
	d := NewDecoder(vrfs)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), MaxMessage)
	sc.Split(Split(MaxMessage))
	for sc.Scan() {
		m, err := d.Decode(sc.Bytes())
		l := Line{Flow: flow, Message: m}
		if err != nil {
			l.Error = err.Error()
		}
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return enc.Encode(Line{Flow: flow, Message: &Message{Offset: d.Offset()}, Error: err.Error()})
	}
	return nil
}
