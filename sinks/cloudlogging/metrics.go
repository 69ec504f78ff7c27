package cloudlogging

import (
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

// Metrics are the sink's own counters (the pipeline counts records sent, retried and
// dead-lettered). They implement prometheus.Collector; nothing is registered globally.
type Metrics struct {
	// RequestErrors counts failed WriteLogEntries calls by gRPC code:
	// tailgate_cloud_logging_request_errors_total{sink,code}.
	RequestErrors *prometheus.CounterVec
	// Refused is 1 while the API refuses the sink's writes for PERMISSION_DENIED, NOT_FOUND
	// or UNAUTHENTICATED (records are kept and retried slowly), else 0:
	// tailgate_cloud_logging_refused{sink}.
	Refused prometheus.Gauge
	// Adjusted counts entries the sink changed so the API takes them, by reason
	// (invalid_utf8, deep_json, future_timestamp, label_truncated, labels_in_payload):
	// tailgate_cloud_logging_entries_adjusted_total{sink,reason}.
	Adjusted *prometheus.CounterVec

	invalidUTF8, deepJSON, futureClamped, labelsTruncated, labelsInPayload prometheus.Counter
	codes                                                                  [17]prometheus.Counter
}

func newMetrics(sink string) *Metrics {
	m := &Metrics{
		RequestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_cloud_logging_request_errors_total",
			Help: "WriteLogEntries calls that failed, by gRPC code.",
		}, []string{"sink", "code"}),
		Refused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tailgate_cloud_logging_refused", ConstLabels: prometheus.Labels{"sink": sink},
			Help: "1 while Cloud Logging refuses the sink's writes (PERMISSION_DENIED, NOT_FOUND, UNAUTHENTICATED): records are kept and retried slowly.",
		}),
		Adjusted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_cloud_logging_entries_adjusted_total",
			Help: "Entries changed so that Cloud Logging accepts them, by reason.",
		}, []string{"sink", "reason"}),
	}
	m.invalidUTF8 = m.Adjusted.WithLabelValues(sink, "invalid_utf8")
	m.deepJSON = m.Adjusted.WithLabelValues(sink, "deep_json")
	m.futureClamped = m.Adjusted.WithLabelValues(sink, "future_timestamp")
	m.labelsTruncated = m.Adjusted.WithLabelValues(sink, "label_truncated")
	m.labelsInPayload = m.Adjusted.WithLabelValues(sink, "labels_in_payload")
	for c := range m.codes {
		m.codes[c] = m.RequestErrors.WithLabelValues(sink, codes.Code(c).String())
	}
	return m
}

func (m *Metrics) requestError(c codes.Code) {
	if int(c) < len(m.codes) {
		m.codes[c].Inc()
	}
}

func (m *Metrics) add(a *adjustments) {
	for _, p := range []struct {
		c prometheus.Counter
		n int
	}{{m.invalidUTF8, a.invalidUTF8}, {m.deepJSON, a.deepJSON}, {m.futureClamped, a.futureClamped},
		{m.labelsTruncated, a.labelsTruncated}, {m.labelsInPayload, a.labelsInPayload}} {
		if p.n > 0 {
			p.c.Add(float64(p.n))
		}
	}
}

func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.RequestErrors.Describe(ch)
	m.Refused.Describe(ch)
	m.Adjusted.Describe(ch)
}

func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.RequestErrors.Collect(ch)
	m.Refused.Collect(ch)
	m.Adjusted.Collect(ch)
}
