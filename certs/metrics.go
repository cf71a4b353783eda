package certs

import (
	"crypto/tls"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	certwatchermetrics "sigs.k8s.io/controller-runtime/pkg/certwatcher/metrics"
)

// Metrics describe the serving certificate.
type Metrics struct {
	expiry    prometheus.Gauge
	reloads   prometheus.Counter
	errors    prometheus.CounterFunc
	ownErrors atomic.Uint64 // renewals that failed (self-signed mode)
	baseline  float64       // certwatcher's count when these metrics were made
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
	}
	// Files are read by controller-runtime's certwatcher, which counts its failed reads
	// in a counter of its own; this one adds them to ours, so the metric means the same
	// in every mode.
	m.errors = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "tidb_backup_guard_certificate_reload_errors_total",
		Help: "Failed attempts to load or renew the serving certificate.",
	}, func() float64 {
		return float64(m.ownErrors.Load()) + certwatcherErrors() - m.baseline
	})
	m.baseline = certwatcherErrors()
	reg.MustRegister(m.expiry, m.reloads, m.errors)
	return m
}

// certwatcherErrors is certwatcher's count of failed reads in this process.
func certwatcherErrors() float64 {
	var read dto.Metric
	_ = certwatchermetrics.ReadCertificateErrors.Write(&read)
	return read.GetCounter().GetValue()
}

func (m *Metrics) failed() {
	if m != nil {
		m.ownErrors.Add(1)
	}
}

// loaded records that c is now served.
func (m *Metrics) loaded(c *tls.Certificate) {
	if m != nil && c != nil && c.Leaf != nil {
		m.expiry.Set(float64(c.Leaf.NotAfter.Unix()))
		m.reloads.Inc()
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
	h.metrics.loaded(c)
}

// current returns the certificate in use, or nil.
func (h *holder) current() *tls.Certificate { return h.cert.Load() }
