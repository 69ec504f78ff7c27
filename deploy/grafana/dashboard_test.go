// Package grafana holds tailgate's Grafana dashboard and its test: every PromQL expression in it
// parses with Prometheus' own parser and queries only metrics tailgate serves or the recording
// rules of deploy/prometheus record.
package grafana

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/tailgate-dev/tailgate/internal/exposition"
)

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	Panels     []panel         `json:"panels"` // a collapsed row's
	Targets    []struct {
		RefID      string          `json:"refId"`
		Expr       string          `json:"expr"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
}

type variable struct {
	Name  string          `json:"name"`
	Type  string          `json:"type"`
	Query json.RawMessage `json:"query"`
}

// expression is one PromQL expression of the dashboard and where it is.
type expression struct{ where, expr string }

func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob("*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboard JSON here: %v", err)
	}
	out := map[string]dashboard{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		var d dashboard
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = d
	}
	return out
}

// expressions lists every query of d: panel targets (rows' panels included) and the variables'
// label_values(selector, label) selectors.
func expressions(t *testing.T, file string, d dashboard) []expression {
	t.Helper()
	var out []expression
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, expression{fmt.Sprintf("%s panel %q target %s", file, p.Title, tg.RefID), tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var s string
			if err := json.Unmarshal(v.Query, &s); err != nil {
				t.Fatalf("%s variable %s: query is neither an object nor a string", file, v.Name)
			}
			q.Query = s
		}
		sel, ok := labelValuesSelector(q.Query)
		if !ok {
			t.Errorf("%s variable %s: %q is not label_values(selector, label)", file, v.Name, q.Query)
			continue
		}
		out = append(out, expression{fmt.Sprintf("%s variable %s", file, v.Name), sel})
	}
	return out
}

var labelValues = regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)

func labelValuesSelector(q string) (string, bool) {
	m := labelValues.FindStringSubmatch(strings.TrimSpace(q))
	if m == nil {
		return "", false
	}
	return m[1], true
}

// grafanaVars are the interval variables Grafana substitutes before the query reaches
// Prometheus; the template variables ($namespace) only appear inside label matcher strings.
var grafanaVars = strings.NewReplacer("${__rate_interval}", "5m", "$__rate_interval", "5m",
	"${__interval}", "1m", "$__interval", "1m", "${__range}", "1h", "$__range", "1h")

func recorded(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../prometheus/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Record string `yaml:"record"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				out = append(out, r.Record)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no recording rules in ../prometheus/rules.yml")
	}
	return out
}

// Every expression parses with promql/parser and queries only metrics tailgate serves or the
// recording rules record (or up, made by Prometheus).
func TestDashboardQueries(t *testing.T) {
	served, err := exposition.Agent()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, n := range append(append(served, recorded(t)...), exposition.Builtin...) {
		known[n] = true
	}
	for file, d := range loadDashboards(t) {
		exprs := expressions(t, file, d)
		if len(exprs) == 0 {
			t.Errorf("%s: no queries", file)
		}
		for _, e := range exprs {
			q := grafanaVars.Replace(e.expr)
			names, err := exposition.Selectors(q)
			if err != nil {
				t.Errorf("%s: %q does not parse: %v", e.where, e.expr, err)
				continue
			}
			for _, n := range names {
				if !exposition.Known(known, n) {
					t.Errorf("%s queries %s, which tailgate does not serve and no recording rule records", e.where, n)
				}
			}
		}
	}
}

// The dashboard's shape: a uid, unique panel ids, every panel with queries on the dashboard's
// datasource variable, and the variables the queries use defined.
func TestDashboardShape(t *testing.T) {
	for file, d := range loadDashboards(t) {
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: uid %q, title %q", file, d.UID, d.Title)
		}
		defined := map[string]bool{"__rate_interval": true, "__interval": true, "__range": true}
		for _, v := range d.Templating.List {
			defined[v.Name] = true
		}
		if !defined["datasource"] {
			t.Errorf("%s: no datasource variable", file)
		}
		ids := map[int]string{}
		var walk func(ps []panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				if prev, dup := ids[p.ID]; dup {
					t.Errorf("%s: panels %q and %q share id %d", file, prev, p.Title, p.ID)
				}
				ids[p.ID] = p.Title
				if p.Type != "row" {
					if len(p.Targets) == 0 {
						t.Errorf("%s panel %q: no query", file, p.Title)
					}
					if !strings.Contains(string(p.Datasource), "${datasource}") {
						t.Errorf("%s panel %q: datasource %s is not ${datasource}", file, p.Title, p.Datasource)
					}
				}
				for _, tg := range p.Targets {
					for _, m := range regexp.MustCompile(`\$\{?([a-zA-Z_][a-zA-Z0-9_]*)`).FindAllStringSubmatch(tg.Expr, -1) {
						if !defined[m[1]] {
							t.Errorf("%s panel %q: variable $%s is not defined", file, p.Title, m[1])
						}
					}
				}
				walk(p.Panels)
			}
		}
		walk(d.Panels)
	}
}

// A query the test must reject, so the checks above are not vacuous.
func TestDashboardCheckRejects(t *testing.T) {
	known := map[string]bool{"tailgate_sink_request_duration_seconds": true}
	if exposition.Known(known, "tailgate_sink_records_totl") {
		t.Error("a misspelt metric passed")
	}
	if !exposition.Known(known, "tailgate_sink_request_duration_seconds_bucket") {
		t.Error("a histogram's bucket series was not recognized")
	}
	if _, err := exposition.Selectors(grafanaVars.Replace(`rate(x[$__rate_interval]`)); err == nil {
		t.Error("an unbalanced expression parsed")
	}
	if sel, ok := labelValuesSelector(`label_values(up{job="tailgate"}, instance)`); !ok || sel != `up{job="tailgate"}` {
		t.Errorf("label_values selector read as %q, %v", sel, ok)
	}
}
