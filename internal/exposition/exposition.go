// Package exposition knows the metric family names tailgate's /metrics can serve, for the tests
// that check the names the deploy/ rules and dashboard query. It builds the families the agent
// registers from the same constructors (a test in cmd/tailgate keeps it equal to the agent's
// registry) and describes them, so a family counts even before its first sample.
package exposition

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/collector/kube"
	"github.com/tailgate-dev/tailgate/exporter"
)

// Agent returns the sorted family names of the agent's /metrics: the Go runtime and process
// collectors, the pipeline's metrics, the buffer's, and the per-pod families.
func Agent() ([]string, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	collector.NewMetrics(reg)
	kube.NewMetrics(reg)                                // registered when kubernetes.enabled
	reg.MustRegister(collector.NewBufferCollector(nil)) // Describe does not read the buffer
	names, err := Described(reg)
	if err != nil {
		return nil, err
	}
	names = append(names, exporter.NewPods(exporter.Options{}).Families()...)
	// cmd/tailgate registers the build stamp itself (it holds the -ldflags values).
	names = append(names, "tailgate_build_info")
	slices.Sort(names)
	return slices.Compact(names), nil
}

var fqName = regexp.MustCompile(`^Desc\{fqName: "([^"]+)"`)

// Described returns the family names c describes (client_golang has no accessor for a Desc's
// name: it is read from the Desc's String form, and an unreadable one is an error).
func Described(c prometheus.Collector) ([]string, error) {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	var names []string
	var bad error
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			if bad == nil {
				bad = fmt.Errorf("cannot read the name of %s", d)
			}
			continue
		}
		names = append(names, m[1])
	}
	slices.Sort(names)
	return slices.Compact(names), bad
}

// Builtin are the series Prometheus itself makes for a target or a rule, which queries of
// tailgate's targets may use.
var Builtin = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS", "ALERTS_FOR_STATE"}

// KubeStateMetrics are the kube-state-metrics series the rules read to see a node that runs no
// tailgate pod at all (it has no target, so no up series either).
var KubeStateMetrics = []string{"kube_daemonset_status_desired_number_scheduled", "kube_daemonset_status_number_available"}

// Selectors returns the metric names expr selects, in order of appearance.
func Selectors(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			err = fmt.Errorf("%s selects no metric name", vs)
		}
		names = append(names, name)
		return nil
	})
	return names, err
}

// Known reports whether name is a family in names, or the _bucket, _sum or _count series of
// one (histograms and summaries).
func Known(names map[string]bool, name string) bool {
	if names[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && names[base] {
			return true
		}
	}
	return false
}
