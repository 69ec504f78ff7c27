package bigquery

import "github.com/prometheus/client_golang/prometheus"

// Row results for tailgate_loader_rows_total.
const (
	resultAppended   = "appended"    // in the table; message acked
	resultDeadLetter = "dead_letter" // on the dead-letter topic with its reason; message acked
	resultNacked     = "nacked"      // handed back to Pub/Sub for redelivery
)

type loaderMetrics struct {
	rows           *prometheus.CounterVec
	appendDuration prometheus.Histogram
	inFlight       prometheus.Gauge
	held           prometheus.Gauge
}

func newLoaderMetrics(reg prometheus.Registerer) (*loaderMetrics, error) {
	m := &loaderMetrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_loader_rows_total",
			Help: "Rows handled by the BigQuery loader, by result (appended, dead_letter, nacked).",
		}, []string{"result"}),
		appendDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tailgate_loader_append_duration_seconds",
			Help:    "Latency of Storage Write API AppendRows calls, from send to response.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tailgate_loader_appends_in_flight",
			Help: "AppendRows calls sent and not yet answered.",
		}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tailgate_loader_messages_held",
			Help: "Pub/Sub messages received and not yet acked or nacked (the loader's backlog in memory).",
		}),
	}
	for _, r := range []string{resultAppended, resultDeadLetter, resultNacked} {
		m.rows.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.rows, m.appendDuration, m.inFlight, m.held} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
