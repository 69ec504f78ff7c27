package cloudwatch

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailgate-dev/tailgate/internal/promshare"
)

// Request results for tailgate_cloudwatch_requests_total (a fixed set: classify's classes).
const (
	resultOK          = "ok"
	resultThrottled   = "throttled"
	resultUnavailable = "unavailable" // 5xx, network errors, timeouts
	resultNotFound    = "not_found"
	resultInvalid     = "invalid_parameter"
	resultDenied      = "access_denied"
	resultOther       = "error"
)

// metricVecs are the families; one set per registry, shared by the cloudwatch sinks on it.
type metricVecs struct {
	requests     *prometheus.CounterVec // {sink,operation,result}
	throttles    *prometheus.CounterVec // {sink}
	events       *prometheus.CounterVec // {sink}
	eventBytes   *prometheus.CounterVec // {sink}
	requestBytes *prometheus.CounterVec // {sink}
	rejected     *prometheus.CounterVec // {sink,reason}
	invalidUTF8  *prometheus.CounterVec // {sink}
	created      *prometheus.CounterVec // {sink,kind}
}

func newMetricVecs() *metricVecs {
	return &metricVecs{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_cloudwatch_requests_total",
			Help: "CloudWatch Logs API calls by operation (PutLogEvents, CreateLogGroup, CreateLogStream, PutRetentionPolicy) and result (ok, throttled, unavailable, not_found, invalid_parameter, access_denied, error).",
		}, []string{"sink", "operation", "result"}),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_cloudwatch_throttles_total",
			Help: "CloudWatch Logs calls answered with a throttling error; their events are sent again after the pipeline's backoff.",
		}, []string{"sink"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_cloudwatch_events_total",
			Help: "Log events CloudWatch Logs accepted.",
		}, []string{"sink"}),
		eventBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_cloudwatch_event_bytes_total",
			Help: "Bytes of the accepted events as CloudWatch Logs counts them (UTF-8 message bytes + 26 per event).",
		}, []string{"sink"}),
		requestBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_cloudwatch_request_bytes_total",
			Help: "PutLogEvents request body bytes sent, retries included.",
		}, []string{"sink"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_cloudwatch_rejected_events_total",
			Help: "Records not stored as events, by reason: too_old, too_new, expired (older than the group's retention), oversize, invalid_parameter (dead-lettered), empty (an empty message: CloudWatch has no empty events; counted as sent).",
		}, []string{"sink", "reason"}),
		invalidUTF8: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_cloudwatch_invalid_utf8_events_total",
			Help: "Events whose message held invalid UTF-8, sent with each bad byte replaced by U+FFFD.",
		}, []string{"sink"}),
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_cloudwatch_created_total",
			Help: "Log groups and log streams the sink created (kind group or stream).",
		}, []string{"sink", "kind"}),
	}
}

func (v *metricVecs) all() []**prometheus.CounterVec {
	return []**prometheus.CounterVec{&v.requests, &v.throttles, &v.events, &v.eventBytes,
		&v.requestBytes, &v.rejected, &v.invalidUTF8, &v.created}
}

// register registers each family with reg, or takes the one already registered there (a
// second cloudwatch sink on the same registry, or this sink as a reload built it again).
func (v *metricVecs) register(reg prometheus.Registerer) error {
	for _, p := range v.all() {
		var err error
		if *p, err = promshare.Register(reg, *p); err != nil {
			return err
		}
	}
	return nil
}

// metrics are one sink's series.
type metrics struct {
	vecs         *metricVecs
	sink         string
	throttles    prometheus.Counter
	events       prometheus.Counter
	eventBytes   prometheus.Counter
	requestBytes prometheus.Counter
	invalidUTF8  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, sink string) (*metrics, error) {
	v := newMetricVecs()
	if reg != nil {
		if err := v.register(reg); err != nil {
			return nil, err
		}
	}
	m := &metrics{
		vecs:         v,
		sink:         sink,
		throttles:    v.throttles.WithLabelValues(sink),
		events:       v.events.WithLabelValues(sink),
		eventBytes:   v.eventBytes.WithLabelValues(sink),
		requestBytes: v.requestBytes.WithLabelValues(sink),
		invalidUTF8:  v.invalidUTF8.WithLabelValues(sink),
	}
	for _, r := range []string{resultOK, resultThrottled, resultUnavailable} {
		v.requests.WithLabelValues(sink, opPut, r)
	}
	for _, r := range []string{reasonTooOld, reasonTooNew, reasonExpired, reasonOversize, reasonInvalid, reasonEmpty} {
		v.rejected.WithLabelValues(sink, r)
	}
	return m, nil
}

// forget deletes the sink's series: it is no longer configured.
func (m *metrics) forget() {
	for _, p := range m.vecs.all() {
		(*p).DeletePartialMatch(prometheus.Labels{"sink": m.sink})
	}
}

func (m *metrics) request(op, result string) {
	m.vecs.requests.WithLabelValues(m.sink, op, result).Inc()
}

func (m *metrics) rejected(reason string, n int) {
	m.vecs.rejected.WithLabelValues(m.sink, reason).Add(float64(n))
}

func (m *metrics) created(kind string) { m.vecs.created.WithLabelValues(m.sink, kind).Inc() }
