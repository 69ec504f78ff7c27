// Package prometheus holds tailgate's Prometheus rules (rules.yml, prometheusrule.yaml) and
// their tests: promtool check and unit tests, every alert tested firing and not firing, the two
// files equal, and every metric the rules query served by tailgate.
package prometheus

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/tailgate-dev/tailgate/internal/exposition"
)

var update = flag.Bool("update", false, "rewrite prometheusrule.yaml from rules.yml")

type rule struct {
	Record      string            `yaml:"record,omitempty"`
	Alert       string            `yaml:"alert,omitempty"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

type group struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Rules    []rule `yaml:"rules"`
}

type rulesFile struct {
	Groups []group `yaml:"groups"`
}

type prometheusRule struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels,omitempty"`
	} `yaml:"metadata"`
	Spec rulesFile `yaml:"spec"`
}

type unitTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			EvalTime  string           `yaml:"eval_time"`
			Alertname string           `yaml:"alertname"`
			ExpAlerts []map[string]any `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
		PromQLExprTest []struct {
			Expr string `yaml:"expr"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

// readYAML decodes path into v, strictly (unknown keys are errors) unless v is a partial view.
func readYAML(t *testing.T, path string, v any, opts ...yaml.DecodeOption) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalWithOptions(b, v, opts...); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadRules(t *testing.T) rulesFile {
	t.Helper()
	var rf rulesFile
	readYAML(t, "rules.yml", &rf, yaml.Strict())
	if len(rf.Groups) == 0 {
		t.Fatal("rules.yml has no groups")
	}
	return rf
}

func testFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("tests/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool test files under tests/: %v", err)
	}
	return files
}

// promtool runs the promtool built by .ci/tools.sh at the prometheus version of go.mod.
func promtool(t *testing.T, args ...string) {
	t.Helper()
	bin := os.Getenv("TAILGATE_PROMTOOL")
	if bin == "" {
		t.Skip("!!! SKIPPED: TAILGATE_PROMTOOL is not set, so the rules were NOT checked by promtool. " +
			"Build it with `export TAILGATE_PROMTOOL=$(.ci/tools.sh promtool)` (or `eval \"$(.ci/tools.sh env)\"`) and rerun. !!!")
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestPromtoolCheckRules(t *testing.T) {
	promtool(t, "check", "rules", "--lint=all", "--lint-fatal", "rules.yml")
}

func TestPromtoolUnitTests(t *testing.T) {
	promtool(t, append([]string{"test", "rules"}, testFiles(t)...)...)
}

// Every alert has a test case where it fires and one where it does not; every recording rule
// is evaluated by a PromQL test.
func TestEveryRuleIsTested(t *testing.T) {
	rf := loadRules(t)
	firing, quiet, exprs := map[string]bool{}, map[string]bool{}, ""
	for _, f := range testFiles(t) {
		var ut unitTests
		readYAML(t, f, &ut) // a partial view: promtool itself reads the files strictly
		if !slices.Equal(ut.RuleFiles, []string{"../rules.yml"}) {
			t.Errorf("%s: rule_files %v, want [../rules.yml]", f, ut.RuleFiles)
		}
		for _, tc := range ut.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					firing[a.Alertname] = true
				} else {
					quiet[a.Alertname] = true
				}
			}
			for _, e := range tc.PromQLExprTest {
				exprs += e.Expr + "\n"
			}
		}
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			switch {
			case r.Alert != "" && !firing[r.Alert]:
				t.Errorf("alert %s has no test where it fires", r.Alert)
			case r.Alert != "" && !quiet[r.Alert]:
				t.Errorf("alert %s has no test where it does not fire", r.Alert)
			case r.Record != "" && !strings.Contains(exprs, r.Record):
				t.Errorf("recording rule %s is evaluated by no promql_expr_test", r.Record)
			}
			if r.Alert != "" && (r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "") {
				t.Errorf("alert %s needs a severity label and summary and description annotations", r.Alert)
			}
		}
	}
}

// Every metric a rule queries is served by tailgate (described by the agent's registry or the
// per-pod families), recorded by an earlier rule, made by Prometheus (up), or by
// kube-state-metrics for the DaemonSet's own state.
func TestRulesQueryTailgateMetrics(t *testing.T) {
	served, err := exposition.Agent()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, n := range slices.Concat(served, exposition.Builtin, exposition.KubeStateMetrics) {
		known[n] = true
	}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			names, err := exposition.Selectors(r.Expr)
			if err != nil {
				t.Errorf("%s%s: %v", r.Record, r.Alert, err)
				continue
			}
			for _, n := range names {
				if !exposition.Known(known, n) {
					t.Errorf("%s%s queries %s, which tailgate does not serve and no earlier rule records", r.Record, r.Alert, n)
				}
			}
			if r.Record != "" {
				known[r.Record] = true
			}
		}
	}
}

// prometheusrule.yaml holds exactly the groups of rules.yml.
func TestPrometheusRuleMatchesRules(t *testing.T) {
	rf := loadRules(t)
	if *update {
		pr := prometheusRule{APIVersion: "monitoring.coreos.com/v1", Kind: "PrometheusRule", Spec: rf}
		pr.Metadata.Name = "tailgate"
		pr.Metadata.Labels = map[string]string{"app.kubernetes.io/name": "tailgate", "app.kubernetes.io/component": "alerting"}
		b, err := yaml.MarshalWithOptions(pr, yaml.UseLiteralStyleIfMultiline(true), yaml.IndentSequence(false))
		if err != nil {
			t.Fatal(err)
		}
		header := "# The rules of rules.yml as a Prometheus Operator PrometheusRule (same groups: a test keeps\n" +
			"# them equal; edit rules.yml, then `go test ./deploy/prometheus -run PrometheusRule -update`).\n" +
			"# Your Prometheus must select it (ruleSelector): add the labels it selects on.\n"
		if err := os.WriteFile("prometheusrule.yaml", append([]byte(header), b...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var pr prometheusRule
	readYAML(t, "prometheusrule.yaml", &pr, yaml.Strict())
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" || pr.Metadata.Name == "" {
		t.Errorf("prometheusrule.yaml: %s %s %q", pr.APIVersion, pr.Kind, pr.Metadata.Name)
	}
	if !reflect.DeepEqual(pr.Spec, rf) {
		t.Error("prometheusrule.yaml's groups differ from rules.yml: run `go test ./deploy/prometheus -run PrometheusRule -update`")
	}
}
