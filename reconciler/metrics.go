package reconciler

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
)

// Metrics of the reconciler. Labels are namespace and command only: a per-Backup label
// would grow without bound.
type Metrics struct {
	failures  *prometheus.CounterVec
	started   *prometheus.CounterVec
	recovered *prometheus.CounterVec
	exhausted *prometheus.CounterVec
	skipped   *prometheus.CounterVec
	waiting   *prometheus.GaugeVec

	mu sync.Mutex
	// waitingFor maps each Backup waiting for a retry to its gauge labels.
	waitingFor map[types.NamespacedName][2]string
}

// NewMetrics creates the reconciler metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	labels := []string{"namespace", "command"}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tidb_backup_guard_log_backup_" + name, Help: help}, labels)
	}
	m := &Metrics{
		failures:  counter("failures_detected_total", "Failed log backup command attempts detected."),
		started:   counter("retries_started_total", "Retries handed back to TiDB Operator."),
		recovered: counter("recoveries_total", "Retry episodes that ended with the command succeeding."),
		exhausted: counter("retries_exhausted_total", "Episodes that gave up at maxRetryTimes or retryTimeout."),
		skipped:   counter("retries_skipped_total", "Failures not retried (non-retryable error, malformed policy, commitTs set)."),
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tidb_backup_guard_log_backups_waiting_for_retry",
			Help: "Log Backups with a recorded failure whose retry has not started.",
		}, labels),
		waitingFor: map[types.NamespacedName][2]string{},
	}
	reg.MustRegister(m.failures, m.started, m.recovered, m.exhausted, m.skipped, m.waiting)
	return m
}

// written counts a decision that was written.
func (m *Metrics) written(ns string, d Decision) {
	if m == nil {
		return
	}
	switch d.Action {
	case ActRecordFailure:
		m.failures.WithLabelValues(ns, d.Command).Inc()
	case ActGiveUp:
		if d.Record != nil {
			m.failures.WithLabelValues(ns, d.Command).Inc()
		}
		if d.Reason == ReasonRetrySkipped {
			m.skipped.WithLabelValues(ns, d.Command).Inc()
		} else {
			m.exhausted.WithLabelValues(ns, d.Command).Inc()
		}
	case ActStartRetry:
		m.started.WithLabelValues(ns, d.Command).Inc()
	case ActCloseEpisode:
		if d.Reason == ReasonRetrySucceeded {
			m.recovered.WithLabelValues(ns, d.Command).Inc()
		}
	}
}

// setWaiting records whether a Backup waits for a retry after a decision (or deletion).
func (m *Metrics) setWaiting(key types.NamespacedName, command string, waiting bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, was := m.waitingFor[key]
	labels := [2]string{key.Namespace, command}
	if was && (!waiting || old != labels) {
		m.waiting.WithLabelValues(old[0], old[1]).Dec()
		delete(m.waitingFor, key)
	}
	if waiting && (!was || old != labels) {
		m.waiting.WithLabelValues(labels[0], labels[1]).Inc()
		m.waitingFor[key] = labels
	}
}

// waits reports decisions taken while a recorded failure waits for its retry.
func waits(d Decision) bool {
	switch d.Action {
	case ActWait, ActAwaitCleanup, ActDeleteJob, ActRecordFailure:
		return true
	}
	return false
}
