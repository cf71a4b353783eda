package integration

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// The README's first command keeps working: the demo builds and runs the real binary
// against its own control plane and tells the whole story.
func TestDemo(t *testing.T) {
	stopTiDBOperator() // the demo runs its own, and only one can hold TiDB Operator's port
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "tidb-backup-guard")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tidb-backup-guard")
	build.Dir = testenv.RepoRoot()
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	demo := exec.CommandContext(ctx, "go", "run", "./hack/demo", "--binary", bin)
	demo.Dir = testenv.RepoRoot()
	out, err = demo.CombinedOutput()
	require.NoError(t, err, string(out))
	for _, want := range []string{
		"Warning: spec.backoffRetryPolicy: defaulted all fields from the log-backup policy 30s / 5 / 30m",
		`{"maxRetryTimes":5,"minRetryDuration":"30s","retryTimeout":"30m"}`,
		"replaced the CRD's snapshot defaults with the log-backup policy 30s / 5 / 30m",
		`The Backup "typo" is invalid: spec.backoffRetryPolicy.minRetryDuration: Invalid value: "30": must be a Go duration such as 30s or 5m (missing unit)`,
		"record 2: log-start failed: Job backup-pitr-flaky-log-start failed while the command was Running",
		"log-start is Complete after 3 run(s)",
		// TiDB Operator's real controller-manager ran the Jobs (CI runs as root).
		"each run a Job that TiDB Operator itself created",
		"create job default/backup-pitr-flaky-log-start for cluster pitr-flaky backup successful",
		"RetrySucceeded",
		// The reconciler metrics the README names, as the real binary serves them.
		`tidb_backup_guard_log_backup_failures_detected_total{command="log-start",namespace="default"} 2`,
		`tidb_backup_guard_log_backup_retries_started_total{command="log-start",namespace="default"} 2`,
		`tidb_backup_guard_log_backup_recoveries_total{command="log-start",namespace="default"} 1`,
		`tidb_backup_guard_log_backups_waiting_for_retry{command="log-start",namespace="default"} 0`,
		"log-start is Complete after 1 run(s)\n  no second run: status.commitTs is the task's start ts",
		"RecoveredFromKernel",
		"Backups in namespace default kept their resourceVersion for 3s.",
		"Demo complete.",
	} {
		assert.Contains(t, string(out), want)
	}
	// It reads clean: no client-go error lines, and the task it registers starts now, so
	// its commitTs is a time of this run and no lag is counted in hours.
	assert.NotRegexp(t, `(?m)^[EW]\d{4} `, string(out), "klog lines in the demo's output")
	assert.NotRegexp(t, `lag \d+h`, string(out))
	m := regexp.MustCompile(`COMMITTS\s+PHASE\s+RECORD\n(\d+)\s+Complete`).FindStringSubmatch(string(out))
	require.NotNil(t, m, "the recovered Backup's commitTs")
	ts, err := strconv.ParseUint(m[1], 10, 64)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), kernel.PhysicalTime(ts), 10*time.Minute, "the task's start ts is from the demo's clock")
}
