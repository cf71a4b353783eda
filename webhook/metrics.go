package webhook

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts admission requests and their latency per webhook and result (allowed,
// patched, denied, error, malformed).
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics creates the webhook metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tidb_backup_guard_webhook_requests_total",
			Help: "Admission requests answered, by webhook and result.",
		}, []string{"webhook", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tidb_backup_guard_webhook_request_duration_seconds",
			Help: "Time to answer an admission request, from reading the body to the reply.",
			// The API server waits at most timeoutSeconds (5 s in the chart); most
			// answers take well under a millisecond.
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5},
		}, []string{"webhook"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *Metrics) observe(webhook, result string, start time.Time) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(webhook, result).Inc()
	m.latency.WithLabelValues(webhook).Observe(time.Since(start).Seconds())
}
