package gnmiclient

import (
	"path/filepath"
	"testing"
)

// TestTargetsFileErrors reads gnmic-format targets files: errors name the
// target, the key and the line, in the file's own words; keys only gnmic
// uses are skipped.
func TestTargetsFileErrors(t *testing.T) {
	tests := []struct {
		file, want string
	}{
		{"targets-typo.yaml", `r2: unknown key "adress" (line 6); did you mean "address"?`},
		{"targets-types.yaml", "\n" +
			`r1.subscriptions: want a list of strings, got a string ("bgp-neighbors") (line 3)` + "\n" +
			`r1.timeout: want a duration (like 10s, 1m30s), got the number 10 (line 4)` + "\n" +
			`r2: want a mapping (key: value), got a list (line 5)`},
		{"targets-gnmic.yaml", ""},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			p := filepath.Join("testdata", tc.file)
			ts, err := ReadTargetsFile(p)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if s := ts["srl1"]; s == nil || s.Address != "172.20.20.2:57400" || !isTrue(s.SkipVerify) {
					t.Errorf("srl1 = %+v", s)
				}
				return
			}
			sep := " "
			if tc.want[0] == '\n' {
				sep = ""
			}
			if want := "targets file " + p + ":" + sep + tc.want; err == nil || err.Error() != want {
				t.Errorf("error:\n%v\nwant:\n%s", err, want)
			}
		})
	}
}
