//go:build integration

package influx

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testenv"
	"github.com/meshd/meshd/merge"
)

// TestDashboards runs every query of the shipped Grafana and Chronograf
// dashboards, template variables substituted, against an influxd holding
// what the sink wrote; each must succeed and return data.
func TestDashboards(t *testing.T) {
	in := testenv.StartInfluxd(t)
	core, err := merge.New()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(testConfig(t, in.URL, "meshd"), WithLogger(logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	stop := runSink(t, s, core.Subscribe("influx", 64))
	writeAllKinds(t, core, time.Now().Add(-time.Minute))
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	files, _ := filepath.Glob("../../dashboards/*.json")
	if len(files) < 2 {
		t.Fatalf("dashboards missing: %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var qs []string
			switch {
			case strings.HasPrefix(filepath.Base(f), "grafana"):
				qs = grafanaQueries(t, raw)
			case strings.HasPrefix(filepath.Base(f), "chronograf"):
				qs = chronografQueries(t, raw)
			default:
				t.Fatalf("unknown dashboard kind %s", f)
			}
			if len(qs) < 8 {
				t.Fatalf("only %d queries found", len(qs))
			}
			for _, q := range qs {
				if unsubstituted.MatchString(q) {
					t.Errorf("unsubstituted variable in %s", q)
					continue
				}
				r := query(t, in, "meshd", q)
				if len(r.Results) == 0 || len(r.Results[0].Series) == 0 || len(r.Results[0].Series[0].Values) == 0 {
					t.Errorf("no data for %s", q)
				}
			}
		})
	}
}

var unsubstituted = regexp.MustCompile(`\$[A-Za-z_{]|:[a-zA-Z]+:`)

var grafanaVars = strings.NewReplacer(
	"$timeFilter", "time > now() - 6h",
	"$__interval", "1m",
	"$router", ".*",
	"$neighbor", ".*",
)

func grafanaQueries(t *testing.T, raw []byte) []string {
	var d struct {
		Panels []struct {
			Targets []struct {
				Query string `json:"query"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query string `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	var qs []string
	for _, v := range d.Templating.List {
		qs = append(qs, grafanaVars.Replace(v.Query))
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			qs = append(qs, grafanaVars.Replace(tg.Query))
		}
	}
	return qs
}

var chronografVars = strings.NewReplacer(
	":dashboardTime:", "now() - 6h",
	":upperDashboardTime:", "now()",
	":interval:", "1m",
	":router:", ".*",
	":neighbor:", ".*",
	":database:", `"meshd"`,
)

func chronografQueries(t *testing.T, raw []byte) []string {
	var d struct {
		Dashboard struct {
			Cells []struct {
				Queries []struct {
					Query string `json:"query"`
				} `json:"queries"`
			} `json:"cells"`
			Templates []struct {
				Query struct {
					InfluxQL string `json:"influxql"`
				} `json:"query"`
			} `json:"templates"`
		} `json:"dashboard"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	var qs []string
	for _, tp := range d.Dashboard.Templates {
		qs = append(qs, chronografVars.Replace(tp.Query.InfluxQL))
	}
	for _, c := range d.Dashboard.Cells {
		for _, q := range c.Queries {
			qs = append(qs, chronografVars.Replace(q.Query))
		}
	}
	return qs
}
