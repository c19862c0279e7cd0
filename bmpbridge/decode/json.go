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

// Summary counts what WriteJSONLines wrote.
type Summary struct {
	Messages int   // lines of decoded messages, errors included
	Errors   int   // messages that did not decode
	Warned   int   // messages with warnings (an ADD-PATH guess)
	Framing  error // the error that ended the stream early, if any
}

// WriteJSON is WriteJSONLines without the summary: a framing error is
// only written as the last line.
func WriteJSON(w io.Writer, flow string, data []byte, vrfs map[string]string) error {
	_, err := WriteJSONLines(w, flow, data, vrfs)
	return err
}

// WriteJSONLines decodes a whole BMP byte stream and writes one JSON line
// per message; a framing error ends the stream with a line naming its
// offset, and is the Summary's Framing. The error is the writer's.
func WriteJSONLines(w io.Writer, flow string, data []byte, vrfs map[string]string) (Summary, error) {
	var s Summary
	enc := json.NewEncoder(w)
	d := NewDecoder(vrfs)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), MaxMessage)
	sc.Split(Split(MaxMessage))
	for sc.Scan() {
		m, err := d.Decode(sc.Bytes())
		l := Line{Flow: flow, Message: m}
		s.Messages++
		if err != nil {
			l.Error = err.Error()
			s.Errors++
		}
		if len(m.Warnings) > 0 {
			s.Warned++
		}
		if err := enc.Encode(l); err != nil {
			return s, err
		}
	}
	if err := sc.Err(); err != nil {
		s.Framing = err
		return s, enc.Encode(Line{Flow: flow, Message: &Message{Offset: d.Offset()}, Error: err.Error()})
	}
	return s, nil
}
