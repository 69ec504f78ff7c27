package kube

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the pod watch's self metrics.
type Metrics struct {
	Reachable prometheus.Gauge       // tailgate_kube_api_reachable
	APIErrors prometheus.Counter     // tailgate_kube_api_errors_total
	Requests  *prometheus.CounterVec // tailgate_kube_api_requests_total{verb}
	Events    *prometheus.CounterVec // tailgate_kube_pod_events_total{type}
	Pods      prometheus.Gauge       // tailgate_kube_pods
	Fallbacks *prometheus.CounterVec // tailgate_kube_metadata_fallbacks_total{reason}
	Peers     *prometheus.CounterVec // tailgate_kube_forward_peers_total{result}

	// reachable is what the last API request or watch event said, behind Reachable.
	reachable atomic.Bool
	lastErr   atomic.Pointer[error]
}

// failed records a failed request or watch.
func (m *Metrics) failed(err error) {
	m.APIErrors.Inc()
	m.lastErr.Store(&err)
	m.setReachable(false)
}

// setReachable records whether the API answers (the last request, or a watch event).
func (m *Metrics) setReachable(ok bool) {
	if m.reachable.Swap(ok) != ok || !ok {
		v := 0.0
		if ok {
			v = 1
		}
		m.Reachable.Set(v)
	}
}

// NewMetrics creates the metrics and registers them with reg (which may be nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Reachable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tailgate_kube_api_reachable", Help: "1 while the pod watch is connected to the API server, 0 while it is failing.",
		}),
		APIErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tailgate_kube_api_errors_total",
			Help: "API requests that failed (no connection, or a 5xx) and watches that ended in an error; the watch reconnects with backoff.",
		}),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_kube_api_requests_total", Help: "Requests sent to the API server, by verb (list, watch, get, other).",
		}, []string{"verb"}),
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_kube_pod_events_total", Help: "Pod events received by the watch, by type (add, update, delete).",
		}, []string{"type"}),
		Pods: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tailgate_kube_pods", Help: "Pods in the metadata cache, deleted ones whose logs are still read included.",
		}),
		Fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_kube_metadata_fallbacks_total",
			Help: "Log streams whose pod was not in the cache after the bounded wait, so their records carry the log path's fields, by reason (not_found, api_unreachable).",
		}, []string{"reason"}),
		Peers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tailgate_kube_forward_peers_total",
			Help: "Forward connections by how their pod was found (ip, peercred, not_found).",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.Reachable, m.APIErrors, m.Requests, m.Events, m.Pods, m.Fallbacks, m.Peers)
	}
	return m
}
