package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshd/meshd/bmpbridge/pcapstream"
)

// runDecode runs `meshd bmp decode FILE` and returns stdout, stderr and
// the command's error (main exits 1 on it).
func runDecode(t *testing.T, file string) (string, string, error) {
	t.Helper()
	cmd := newBMPCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs([]string{"decode", file})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), errb.String(), err
}

func TestBMPDecodeInputs(t *testing.T) {
	fix := func(name string) string { return filepath.Join("..", "..", "bmpbridge", "decode", "testdata", name) }
	tmp := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pcapOut, _, err := runDecode(t, fix("gobgpd-locrib.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	midOut, _, err := runDecode(t, fix("gobgpd-locrib-midsession.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	// The BMP bytes of the capture, as a raw stream: Initiation, Peer Up,
	// five Route Monitoring (from the Peer Up's end at 218).
	raw := rawStream(t, fix("gobgpd-locrib.pcap"))
	tests := []struct {
		name      string
		file      string
		wantOut   string   // the whole stdout, when set
		contains  []string // in stdout
		stderr    string   // in stderr
		wantErr   string   // in the error; "" for none
		lineCount int
	}{
		{name: "pcap", file: fix("gobgpd-locrib.pcap"), lineCount: 7, stderr: "127.0.0.1:43854>127.0.0.1:11019: 7 messages\n",
			contains: []string{`"peer_up"`, `"prefix":"10.200.2.0/25","path_id":1`}},
		{name: "pcapng by dumpcap, same session", file: fix("gobgpd-locrib.pcapng"), wantOut: pcapOut, stderr: "7 messages\n"},
		{name: "pcap from mid-session", file: fix("gobgpd-locrib-midsession.pcap"), lineCount: 5,
			stderr:   `5 messages, 5 with warnings (ADD-PATH guessed: see their "warnings")`,
			contains: []string{`"prefix":"10.200.2.0/25","path_id":1`, `"prefix":"2001:db8:200::/48","path_id":1`, `"warnings":["IPV4_UNICAST: ADD-PATH guessed`}},
		{name: "pcapng by tshark, mid-session", file: fix("gobgpd-locrib-midsession.pcapng"), wantOut: midOut, stderr: "gobgpd-locrib-midsession.pcapng 127.0.0.1:43854>127.0.0.1:11019: 5 messages, 5 with warnings"},
		{name: "raw BMP stream", file: write("raw.bmp", raw), lineCount: 7, stderr: "raw.bmp: 7 messages\n"},
		{name: "raw BMP stream cut short", file: write("cut.bmp", raw[:len(raw)-5]), lineCount: 7,
			contains: []string{`"error":"bmp framing: stream ends inside a message (83 bytes left)"`},
			wantErr:  "cut.bmp: bmp framing: stream ends inside a message (83 bytes left)"},
		{name: "raw BMP stream with a malformed message", file: write("bad.bmp", append(append([]byte(nil), raw[:218]...), 3, 0, 0, 0, 7, 0, 0)), lineCount: 3,
			wantErr: "bad.bmp: 1 message malformed"},
		{name: "pcapng cut short", file: write("cut.pcapng", read(fix("gobgpd-locrib.pcapng"))[:1500]),
			wantErr: "cut.pcapng: pcapng: bad capture file: pcapng block type 6: unexpected EOF"},
		{name: "not a capture", file: write("junk", []byte("hello, world\n")),
			wantErr: "junk: not a pcap, pcapng or BMP stream (starts with 68 65 6c 6c 6f 2c 20 77)"},
		{name: "empty", file: write("empty", nil), wantErr: "empty: empty"},
		{name: "no BMP in the capture", file: write("nobmp.pcap", read(fix("gobgpd-locrib.pcap"))[:24]),
			wantErr: "nobmp.pcap: pcap capture: no TCP flow carries a BMP stream"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, err := runDecode(t, tc.file)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if tc.wantOut != "" && out != tc.wantOut {
				t.Errorf("stdout:\n%s\nwant:\n%s", out, tc.wantOut)
			}
			if n := strings.Count(out, "\n"); tc.lineCount != 0 && n != tc.lineCount {
				t.Errorf("%d lines, want %d:\n%s", n, tc.lineCount, out)
			}
			for _, c := range tc.contains {
				if !strings.Contains(out, c) {
					t.Errorf("stdout lacks %s:\n%s", c, out)
				}
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, tc.stderr)
			}
			for _, bad := range []string{`"0.0.0.0/0"`, `"200.0.0.0/10"`} {
				if strings.Contains(out, bad) {
					t.Errorf("made-up prefix %s in:\n%s", bad, out)
				}
			}
		})
	}
}

// rawStream returns the BMP bytes of a capture's one BMP flow.
func rawStream(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	flows, err := pcapstream.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range flows {
		if len(f.Data) > 0 && f.Data[0] == 3 {
			return f.Data
		}
	}
	t.Fatalf("%s: no BMP flow", file)
	return nil
}
