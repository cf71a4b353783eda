package reconciler

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
)

// Metrics of the reconciler. Counters are labelled by namespace and command only: a
// per-Backup label would grow without bound. The gauges about running log backups carry
// the Backup's name: there are few of them, and each series goes with its Backup.
type Metrics struct {
	failures   *prometheus.CounterVec
	started    *prometheus.CounterVec
	recovered  *prometheus.CounterVec
	exhausted  *prometheus.CounterVec
	skipped    *prometheus.CounterVec
	fromKernel *prometheus.CounterVec
	probes     *prometheus.CounterVec
	waiting    *prometheus.GaugeVec
	suspends   *prometheus.CounterVec
	gaps       *prometheus.CounterVec
	lag        *prometheus.GaugeVec
	paused     *prometheus.GaugeVec
	shadow     *prometheus.CounterVec
	schedules  *prometheus.GaugeVec
	gcPassed   *prometheus.GaugeVec

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
		failures:   counter("failures_detected_total", "Failed log backup command attempts detected."),
		started:    counter("retries_started_total", "Retries handed back to TiDB Operator."),
		recovered:  counter("recoveries_total", "Retry episodes that ended with the command succeeding."),
		exhausted:  counter("retries_exhausted_total", "Episodes that gave up at maxRetryTimes or retryTimeout."),
		skipped:    counter("retries_skipped_total", "Failures not retried (non-retryable error, malformed policy, commitTs set)."),
		fromKernel: counter("recovered_from_kernel_total", "Failed log-starts not re-run because the cluster had registered their task."),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tidb_backup_guard_kernel_probes_total",
			Help: "Reads of log backup tasks from PD's etcd, by what they found: running, paused, paused_by_error, absent or error.",
		}, []string{"result"}),
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tidb_backup_guard_log_backups_waiting_for_retry",
			Help: "Log Backups with a recorded failure whose retry has not started.",
		}, labels),
		suspends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tidb_backup_guard_write_guard_suspensions_total",
			Help: "Times the write guard stopped writing a Backup that was written too often (a write loop).",
		}, []string{"namespace"}),
		gaps: counter("gap_unrecoverable_total", "Running log backups given up because GC passed their checkpoint (LogGapUnrecoverable)."),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tidb_backup_guard_log_backup_checkpoint_lag_seconds",
			Help: "How far a running log backup's checkpoint is behind now (from PD when the kernel probe is on, else status.logCheckpointTs).",
		}, []string{"namespace", "backup"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tidb_backup_guard_log_backup_paused_by_error",
			Help: "1 while a running log backup's task is paused by an error (from PD, or TiDB Operator's record).",
		}, []string{"namespace", "backup"}),
		shadow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tidb_backup_guard_shadow_decisions_total",
			Help: "Shadow mode: decisions that enforcing would have carried out, by action (each reported once per Backup while it holds).",
		}, []string{"namespace", "command", "action"}),
		schedules: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tidb_backup_guard_schedules_deleting_log_backup",
			Help: "1 while a BackupSchedule's maxBackups clean-up would delete its own log backup (a logBackupTemplate, maxBackups, no maxReservedTime: tidb-operator#6320).",
		}, []string{"namespace", "schedule"}),
		gcPassed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tidb_backup_guard_log_backup_gc_safe_point_exceeds_checkpoint",
			Help: "1 while PD's GC safe point has reached a running log backup's checkpoint, so a resume can no longer be loss-free (kernel probe only).",
		}, []string{"namespace", "backup"}),
		waitingFor: map[types.NamespacedName][2]string{},
	}
	reg.MustRegister(m.failures, m.started, m.recovered, m.exhausted, m.skipped, m.fromKernel, m.probes, m.waiting, m.suspends,
		m.gaps, m.lag, m.paused, m.shadow, m.schedules, m.gcPassed)
	return m
}

// written counts a decision that was written.
func (m *Metrics) written(ns string, d retry.Decision) {
	if m == nil {
		return
	}
	switch d.Action {
	case retry.ActRecordFailure:
		m.failures.WithLabelValues(ns, d.Command).Inc()
	case retry.ActGiveUp:
		if d.Record != nil {
			m.failures.WithLabelValues(ns, d.Command).Inc()
		}
		if d.ConditionReason == retry.ReasonLogGapUnrecoverable {
			m.gaps.WithLabelValues(ns, d.Command).Inc()
		}
		if d.Reason == retry.ReasonRetrySkipped {
			m.skipped.WithLabelValues(ns, d.Command).Inc()
		} else {
			m.exhausted.WithLabelValues(ns, d.Command).Inc()
		}
	case retry.ActStartRetry, retry.ActHandOff:
		m.started.WithLabelValues(ns, d.Command).Inc()
	case retry.ActRecover:
		m.fromKernel.WithLabelValues(ns, d.Command).Inc()
		m.recovered.WithLabelValues(ns, d.Command).Inc()
	case retry.ActPutBack:
		// Only a put-back on the kernel's word is a recovery from the kernel. One that
		// sets back TiDB Operator's stale record of a pause (PauseRecordOutdated) is made
		// without the probe; it ends the episode (a recovery) only when the checkpoint
		// has moved too, and otherwise leaves it open.
		if d.Reason == retry.ReasonRecoveredFromKernel {
			m.fromKernel.WithLabelValues(ns, d.Command).Inc()
		}
		if d.Reason == retry.ReasonRecoveredFromKernel || !d.Pause {
			m.recovered.WithLabelValues(ns, d.Command).Inc()
		}
	case retry.ActCloseEpisode:
		if d.Reason == retry.ReasonRetrySucceeded {
			m.recovered.WithLabelValues(ns, d.Command).Inc()
		}
	}
}

// shadowed counts a decision shadow mode reported instead of carrying out.
func (m *Metrics) shadowed(ns string, d retry.Decision) {
	if m == nil {
		return
	}
	m.shadow.WithLabelValues(ns, d.Command, string(d.Action)).Inc()
}

// suspended counts a write guard suspension.
func (m *Metrics) suspended(ns string) {
	if m == nil {
		return
	}
	m.suspends.WithLabelValues(ns).Inc()
}

// ObserveProbe counts a kernel probe by what it found (kernel.Config.Observe).
func (m *Metrics) ObserveProbe(r kernel.Result) {
	if m == nil {
		return
	}
	result := "error"
	switch t := r.Task; {
	case r.Err != nil || t == nil:
	case !t.Exists:
		result = "absent"
	case t.PausedByError:
		result = "paused_by_error"
	case t.Paused:
		result = "paused"
	default:
		result = "running"
	}
	m.probes.WithLabelValues(result).Inc()
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
func waits(d retry.Decision) bool {
	switch d.Action {
	case retry.ActWait, retry.ActAwaitCleanup, retry.ActAwaitKernel, retry.ActDeleteJob, retry.ActRecordFailure:
		return true
	}
	return false
}

// setRunning records a running log backup's checkpoint lag (nil: not known) and whether
// its task is paused by an error.
func (m *Metrics) setRunning(key types.NamespacedName, lag *time.Duration, pausedByError bool) {
	if m == nil {
		return
	}
	if lag == nil {
		m.lag.DeleteLabelValues(key.Namespace, key.Name)
	} else {
		m.lag.WithLabelValues(key.Namespace, key.Name).Set(lag.Seconds())
	}
	v := 0.0
	if pausedByError {
		v = 1
	}
	m.paused.WithLabelValues(key.Namespace, key.Name).Set(v)
}

// forgetRunning drops the series of a Backup that is no longer a running log backup.
func (m *Metrics) forgetRunning(key types.NamespacedName) {
	if m == nil {
		return
	}
	m.lag.DeleteLabelValues(key.Namespace, key.Name)
	m.paused.DeleteLabelValues(key.Namespace, key.Name)
	m.gcPassed.DeleteLabelValues(key.Namespace, key.Name)
}

// setGCPassed records whether PD's GC safe point has reached a running log backup's
// checkpoint, as the kernel probe read them.
func (m *Metrics) setGCPassed(key types.NamespacedName, passed bool) {
	if m == nil {
		return
	}
	v := 0.0
	if passed {
		v = 1
	}
	m.gcPassed.WithLabelValues(key.Namespace, key.Name).Set(v)
}

// setScheduleDeletingLogBackup records whether a BackupSchedule deletes its own log backup.
func (m *Metrics) setScheduleDeletingLogBackup(key types.NamespacedName, deleting bool) {
	if m == nil {
		return
	}
	if deleting {
		m.schedules.WithLabelValues(scheduleKey(key)...).Set(1)
		return
	}
	m.schedules.DeleteLabelValues(scheduleKey(key)...)
}
