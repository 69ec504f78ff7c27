package collector

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the pipeline's self metrics (names are a DESIGN.md contract). Inputs and sinks
// get the one instance built by the binary; nothing registers metrics globally.
type Metrics struct {
	InputRecords        *prometheus.CounterVec   // tailgate_input_records_total{input}
	InputBytes          *prometheus.CounterVec   // tailgate_input_bytes_total{input}
	InputErrors         *prometheus.CounterVec   // tailgate_input_errors_total{input,reason}
	RouteDropped        *prometheus.CounterVec   // tailgate_route_dropped_total{input}
	ConfigReloads       *prometheus.CounterVec   // tailgate_config_reloads_total{result}
	InputRedactions     *prometheus.CounterVec   // tailgate_input_redactions_total{input,reason}
	TailLagBytes        *prometheus.GaugeVec     // tailgate_tail_lag_bytes{input}
	TailOpenFiles       *prometheus.GaugeVec     // tailgate_tail_open_files{input}
	ForwardConnections  *prometheus.GaugeVec     // tailgate_forward_connections{input}
	ForwardClosed       *prometheus.CounterVec   // tailgate_forward_connections_closed_total{input,reason}
	SinkRecords         *prometheus.CounterVec   // tailgate_sink_records_total{sink,result}
	SinkRequestDuration *prometheus.HistogramVec // tailgate_sink_request_duration_seconds{sink}
	SinkOversize        *prometheus.CounterVec   // tailgate_sink_oversize_records_total{sink,action}
	DeadLetterRecords   *prometheus.CounterVec   // tailgate_deadletter_records_total{sink,reason}
	DeadLetterBytes     *prometheus.GaugeVec     // tailgate_deadletter_bytes{sink}
	DeadLetterDropped   *prometheus.CounterVec   // tailgate_deadletter_dropped_total{sink,reason}
}

// Sink record results.
const (
	ResultSent       = "sent"
	ResultRetried    = "retried"
	ResultFailed     = "failed"
	ResultDeadLetter = "dead_letter"
)

// NewMetrics creates the pipeline metrics and registers them with reg (which may be nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		InputRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_input_records_total", Help: "Records read by an input and written to the buffer.",
		}, []string{"input"}),
		InputBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_input_bytes_total", Help: "Message bytes of the records an input wrote to the buffer.",
		}, []string{"input"}),
		InputErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_input_errors_total", Help: "Bad input seen by an input (garbage lines, malformed frames, cut records), by reason.",
		}, []string{"input", "reason"}),
		RouteDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_route_dropped_total", Help: "Records dropped on purpose by a route with sinks: [].",
		}, []string{"input"}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_config_reloads_total",
			Help: "Config reloads (SIGHUP, a change of the config file), by result (success, failure: the running config stays).",
		}, []string{"result"}),
		InputRedactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_input_redactions_total", Help: "Redact rules that matched a record's message or fields, by input and the rule's reason (default redact).",
		}, []string{"input", "reason"}),
		TailLagBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tailgate_tail_lag_bytes", Help: "Bytes written to tailed files and not yet read.",
		}, []string{"input"}),
		TailOpenFiles: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tailgate_tail_open_files", Help: "Files a tail input holds open.",
		}, []string{"input"}),
		ForwardConnections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tailgate_forward_connections", Help: "Open forward-protocol connections.",
		}, []string{"input"}),
		ForwardClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_forward_connections_closed_total",
			Help: "Forward-protocol connections closed or refused, by reason (client_closed, idle_timeout, handshake_timeout, frame_timeout, evicted, max_connections, per_peer_limit, memory_limit, ...).",
		}, []string{"input", "reason"}),
		SinkRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_sink_records_total", Help: "Records handled by a sink, by result (sent, retried, failed, dead_letter).",
		}, []string{"sink", "result"}),
		SinkRequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tailgate_sink_request_duration_seconds",
			Help:    "Duration of one batch send to a destination.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"sink"}),
		SinkOversize: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_sink_oversize_records_total",
			Help: "Records over a sink's size limit, by what was done (split, truncate, dead_letter).",
		}, []string{"sink", "action"}),
		DeadLetterRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_deadletter_records_total", Help: "Records stored in a sink's dead-letter store, by reason.",
		}, []string{"sink", "reason"}),
		DeadLetterBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tailgate_deadletter_bytes", Help: "Bytes held by a sink's dead-letter store.",
		}, []string{"sink"}),
		DeadLetterDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_deadletter_dropped_total", Help: "Dead-lettered records deleted unreplayed because the store was full, by the reason they were dead-lettered for.",
		}, []string{"sink", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.InputRecords, m.InputBytes, m.InputErrors, m.InputRedactions, m.RouteDropped, m.ConfigReloads, m.TailLagBytes, m.TailOpenFiles,
			m.ForwardConnections, m.ForwardClosed, m.SinkRecords, m.SinkRequestDuration, m.SinkOversize,
			m.DeadLetterRecords, m.DeadLetterBytes, m.DeadLetterDropped)
	}
	return m
}
