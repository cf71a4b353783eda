package certs

import (
	"crypto/tls"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics describe the serving certificate.
type Metrics struct {
	expiry  prometheus.Gauge
	reloads prometheus.Counter
	errors  prometheus.Counter
}

// NewMetrics creates the certificate metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		expiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tidb_backup_guard_certificate_expiry_timestamp_seconds",
			Help: "NotAfter of the serving certificate in use, as a Unix time.",
		}),
		reloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tidb_backup_guard_certificate_reloads_total",
			Help: "Serving certificates loaded (the first one included).",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tidb_backup_guard_certificate_reload_errors_total",
			Help: "Failed attempts to load or renew the serving certificate.",
		}),
	}
	reg.MustRegister(m.expiry, m.reloads, m.errors)
	return m
}

func (m *Metrics) failed() {
	if m != nil {
		m.errors.Inc()
	}
}

// holder is the certificate being served, swapped atomically so handshakes never wait.
type holder struct {
	cert    atomic.Pointer[tls.Certificate]
	metrics *Metrics
}

// GetCertificate returns the certificate in use; it suits tls.Config.
func (h *holder) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return h.cert.Load(), nil
}

// set starts serving c.
func (h *holder) set(c *tls.Certificate) {
	h.cert.Store(c)
	if h.metrics != nil && c.Leaf != nil {
		h.metrics.expiry.Set(float64(c.Leaf.NotAfter.Unix()))
		h.metrics.reloads.Inc()
	}
}

// current returns the certificate in use, or nil.
func (h *holder) current() *tls.Certificate { return h.cert.Load() }
