package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/sinks/cloudlogging"
)

// sinkSeries lists, per family, the sink label values the registry exports.
func sinkSeries(t *testing.T, reg *prometheus.Registry) map[string]map[string]bool {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "sink" {
					if out[mf.GetName()] == nil {
						out[mf.GetName()] = map[string]bool{}
					}
					out[mf.GetName()][l.GetValue()] = true
				}
			}
		}
	}
	return out
}

func counterValue(t *testing.T, reg *prometheus.Registry, family string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// TestSinkMetricsSharedAcrossSinksAndReloads: two sinks of a type both export their own
// series (the second used to replace, or fail to register, the first's families); a sink a
// reload builds again under its name goes on counting; a sink the reload removes leaves no
// series behind.
func TestSinkMetricsSharedAcrossSinksAndReloads(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTAILGATETEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-aws-credentials"))
	// Nothing listens there: building a sink contacts nothing.
	const cw = `{name: %s, type: cloudwatch, region: eu-west-1, endpoint: "http://127.0.0.1:9", insecure: true, log_group: "/k8s", log_stream: "{pod}"}`
	const gcl = `{name: %s, type: cloud_logging, project: p, location: europe-west1, cluster_name: c, endpoint: "127.0.0.1:9", insecure: true}`
	config := func(sinks ...string) *collector.Config {
		t.Helper()
		y := fmt.Sprintf("node_name: n1\ndata_dir: %s/data\nkubernetes: {enabled: false}\ninputs:\n  - {name: pods, type: tail, paths: [\"%s/*.log\"]}\nsinks:\n", dir, dir)
		for _, s := range sinks {
			y += "  - " + s + "\n"
		}
		cfg, err := collector.ParseConfig("test.yaml", []byte(y), collector.LoadOptions{SinkTypes: sinkChecks()})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg1 := config(fmt.Sprintf(cw, "cw1"), fmt.Sprintf(cw, "cw2"), fmt.Sprintf(gcl, "gcl1"), fmt.Sprintf(gcl, "gcl2"))
	a := &agent{cfg: cfg1, log: slog.New(slog.NewTextHandler(io.Discard, nil)), reg: prometheus.NewRegistry()}
	ctx := context.Background()
	gen1, err := a.newSinks(ctx, cfg1)
	if err != nil {
		t.Fatal(err)
	}
	got := sinkSeries(t, a.reg)
	for family, want := range map[string][]string{
		"tailgate_cloudwatch_requests_total":          {"cw1", "cw2"},
		"tailgate_cloud_logging_request_errors_total": {"gcl1", "gcl2"},
		"tailgate_cloud_logging_refused":              {"gcl1", "gcl2"},
	} {
		for _, s := range want {
			if !got[family][s] {
				t.Errorf("%s has no series of sink %s (has %v)", family, s, got[family])
			}
		}
	}
	gcl1 := gen1[2].(*cloudlogging.Sink)
	gcl1.Metrics().RequestErrors.WithLabelValues("gcl1", "Unavailable").Add(5)
	gen1[3].(*cloudlogging.Sink).Metrics().Refused.Set(1) // gcl2 refused when it is removed

	// The reload keeps cw1 and gcl1, removes cw2 and gcl2, and renames nothing.
	cfg2 := config(fmt.Sprintf(cw, "cw1"), fmt.Sprintf(gcl, "gcl1"))
	gen2, err := a.newSinks(ctx, cfg2)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSinks(gen2)
	closeSinks(gen1)
	forgetSinks(gen1, cfg1, cfg2)
	got = sinkSeries(t, a.reg)
	for family, want := range map[string]map[string]bool{
		"tailgate_cloudwatch_requests_total":          {"cw1": true},
		"tailgate_cloudwatch_events_total":            {"cw1": true},
		"tailgate_cloud_logging_request_errors_total": {"gcl1": true},
		"tailgate_cloud_logging_refused":              {"gcl1": true},
	} {
		if fmt.Sprint(got[family]) != fmt.Sprint(want) {
			t.Errorf("after the reload %s has sinks %v, want %v", family, got[family], want)
		}
	}
	if v := counterValue(t, a.reg, "tailgate_cloud_logging_request_errors_total", map[string]string{"sink": "gcl1", "code": "Unavailable"}); v != 5 {
		t.Errorf("gcl1's request errors after the reload = %v, want 5 (counting on, not restarting at 0)", v)
	}
	gen2[1].(*cloudlogging.Sink).Metrics().RequestErrors.WithLabelValues("gcl1", "Unavailable").Inc()
	if v := counterValue(t, a.reg, "tailgate_cloud_logging_request_errors_total", map[string]string{"sink": "gcl1", "code": "Unavailable"}); v != 6 {
		t.Errorf("the rebuilt gcl1 counts into %v, want 6", v)
	}
}
