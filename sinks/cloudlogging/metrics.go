package cloudlogging

import (
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/tailgate-dev/tailgate/internal/promshare"
)

// Metrics are the sink's own counters (the pipeline counts records sent, retried and
// dead-lettered). Their families are shared by the cloud_logging sinks of a registry (and by a
// sink a reload builds again under its name), each sink with its own sink label.
type Metrics struct {
	// RequestErrors counts failed WriteLogEntries calls by gRPC code:
	// tailgate_cloud_logging_request_errors_total{sink,code}.
	RequestErrors *prometheus.CounterVec
	// Refused is 1 while the API refuses the sink's writes for PERMISSION_DENIED, NOT_FOUND
	// or UNAUTHENTICATED (records are kept and retried slowly), else 0:
	// tailgate_cloud_logging_refused{sink}.
	Refused prometheus.Gauge
	refused *prometheus.GaugeVec
	// Adjusted counts entries the sink changed so the API takes them, by reason
	// (invalid_utf8, deep_json, future_timestamp, label_truncated, labels_in_payload):
	// tailgate_cloud_logging_entries_adjusted_total{sink,reason}.
	Adjusted *prometheus.CounterVec

	invalidUTF8, deepJSON, futureClamped, labelsTruncated, labelsInPayload prometheus.Counter
	codes                                                                  [17]prometheus.Counter
	sink                                                                   string
}

// newMetrics registers the families with reg (nil: none; they still count), or takes the ones
// registered there already.
func newMetrics(reg prometheus.Registerer, sink string) (*Metrics, error) {
	m := &Metrics{
		sink: sink,
		RequestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_cloud_logging_request_errors_total",
			Help: "WriteLogEntries calls that failed, by gRPC code.",
		}, []string{"sink", "code"}),
		refused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tailgate_cloud_logging_refused",
			Help: "1 while Cloud Logging refuses the sink's writes (PERMISSION_DENIED, NOT_FOUND, UNAUTHENTICATED): records are kept and retried slowly.",
		}, []string{"sink"}),
		Adjusted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_cloud_logging_entries_adjusted_total",
			Help: "Entries changed so that Cloud Logging accepts them, by reason.",
		}, []string{"sink", "reason"}),
	}
	var err error
	if m.RequestErrors, err = promshare.Register(reg, m.RequestErrors); err != nil {
		return nil, err
	}
	if m.refused, err = promshare.Register(reg, m.refused); err != nil {
		return nil, err
	}
	if m.Adjusted, err = promshare.Register(reg, m.Adjusted); err != nil {
		return nil, err
	}
	m.Refused = m.refused.WithLabelValues(sink)
	m.invalidUTF8 = m.Adjusted.WithLabelValues(sink, "invalid_utf8")
	m.deepJSON = m.Adjusted.WithLabelValues(sink, "deep_json")
	m.futureClamped = m.Adjusted.WithLabelValues(sink, "future_timestamp")
	m.labelsTruncated = m.Adjusted.WithLabelValues(sink, "label_truncated")
	m.labelsInPayload = m.Adjusted.WithLabelValues(sink, "labels_in_payload")
	for c := range m.codes {
		m.codes[c] = m.RequestErrors.WithLabelValues(sink, codes.Code(c).String())
	}
	return m, nil
}

// forget deletes the sink's series: it is no longer configured.
func (m *Metrics) forget() {
	l := prometheus.Labels{"sink": m.sink}
	m.RequestErrors.DeletePartialMatch(l)
	m.refused.DeletePartialMatch(l)
	m.Adjusted.DeletePartialMatch(l)
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
