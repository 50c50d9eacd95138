// Package metrics holds the Prometheus collectors of the worker. One Metrics
// is built per process (or per test) on its own registry; a nil *Metrics is a
// valid no-op so that packages can be used without it.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type Metrics struct {
	Registry      *prometheus.Registry
	JobsActivated *prometheus.CounterVec // by operation
	JobsCompleted *prometheus.CounterVec
	JobsFailed    *prometheus.CounterVec // by operation, code
	JobsBPMNError *prometheus.CounterVec
	JobsInFlight  prometheus.Gauge
	JobDuration   *prometheus.HistogramVec // handler duration, by operation
	GraphRequests *prometheus.CounterVec   // by method, status ("error" when no response)
	GraphRetries  *prometheus.CounterVec   // by reason
	TokenRequests *prometheus.CounterVec   // by grant, result
}

func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: reg,
		JobsActivated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "o365_jobs_activated_total", Help: "Jobs handed to a handler.",
		}, []string{"operation"}),
		JobsCompleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "o365_jobs_completed_total", Help: "Jobs completed.",
		}, []string{"operation"}),
		JobsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "o365_jobs_failed_total", Help: "Jobs failed, by error code.",
		}, []string{"operation", "code"}),
		JobsBPMNError: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "o365_jobs_bpmn_error_total", Help: "Jobs that threw a BPMN error.",
		}, []string{"operation"}),
		JobsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "o365_jobs_in_flight", Help: "Handlers running now.",
		}),
		JobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "o365_job_duration_seconds", Help: "Handler duration from start to job command.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"operation"}),
		GraphRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "o365_graph_requests_total", Help: "Graph HTTP requests by status.",
		}, []string{"method", "status"}),
		GraphRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "o365_graph_retries_total", Help: "Graph requests retried inside a job, by reason.",
		}, []string{"reason"}),
		TokenRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "o365_token_requests_total", Help: "Requests to OAuth token endpoints.",
		}, []string{"grant", "result"}),
	}
	reg.MustRegister(m.JobsActivated, m.JobsCompleted, m.JobsFailed, m.JobsBPMNError,
		m.JobsInFlight, m.JobDuration, m.GraphRequests, m.GraphRetries, m.TokenRequests)
	return m
}

// The helpers below are nil-safe so that callers need no checks.

func (m *Metrics) GraphRequest(method, status string) {
	if m != nil {
		m.GraphRequests.WithLabelValues(method, status).Inc()
	}
}

func (m *Metrics) GraphRetry(reason string) {
	if m != nil {
		m.GraphRetries.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) TokenRequest(grant, result string) {
	if m != nil {
		m.TokenRequests.WithLabelValues(grant, result).Inc()
	}
}
