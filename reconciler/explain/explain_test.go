package explain

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry/retrytest"
)

func TestExplainDescribesDecide(t *testing.T) {
	const sec = time.Second
	quick := retrytest.Set("spec.backoffRetryPolicy", map[string]any{"minRetryDuration": "1s", "maxRetryTimes": int64(5), "retryTimeout": "1m"})
	tests := []struct {
		name      string
		edits     []retrytest.Edit
		now       time.Duration
		cfg       defaults.Config
		action    retry.Action
		next      string
		limit     string // "" : no limit projected
		limitAt   time.Duration
		limitLast int64
		sources   []string
	}{
		{
			name: "pending retry: the count trips first", now: 500 * time.Millisecond,
			edits:  []retrytest.Edit{quick, retrytest.Entry(retry.CmdStart, retry.PhaseFailed), retrytest.Episode(retry.CmdStart, false), retrytest.Records(retrytest.Rec(1, 0, sec, false))},
			action: retry.ActWait, next: "retry 1 of log-start starts at 2026-11-28T10:00:01Z",
			// Retries start 1s, 3s, 7s, 15s and 31s after the first failure; retry 6 is past maxRetryTimes.
			limit: defaults.FieldMaxRetryTimes, limitAt: 31 * sec, limitLast: 5,
			sources: []string{"spec", "spec", "spec"},
		},
		{
			name: "pending retry: the timeout trips first", now: 500 * time.Millisecond,
			edits: []retrytest.Edit{retrytest.Set("spec.backoffRetryPolicy", map[string]any{"minRetryDuration": "1s", "retryTimeout": "10s"}),
				retrytest.Entry(retry.CmdStart, retry.PhaseFailed), retrytest.Episode(retry.CmdStart, false), retrytest.Records(retrytest.Rec(1, 0, sec, false))},
			action: retry.ActWait, next: "retry 1 of log-start",
			// Retry 4 would start 15s after the first failure, past 10s.
			limit: defaults.FieldRetryTimeout, limitAt: 7 * sec, limitLast: 3,
			sources: []string{"spec", "server default", "spec"},
		},
		{
			name: "new failure: recorded now", edits: []retrytest.Edit{retrytest.Entry(retry.CmdStart, retry.PhaseFailed)}, now: sec,
			action: retry.ActRecordFailure, next: "records the failure now",
			limit: defaults.FieldMaxRetryTimes, limitAt: sec + 30*sec + 60*sec + 120*sec + 240*sec + 480*sec, limitLast: 5,
			sources: []string{"server default", "server default", "server default"},
		},
		{
			name:   "CRD snapshot defaults replaced",
			edits:  []retrytest.Edit{retrytest.Set("spec.backoffRetryPolicy", map[string]any{"minRetryDuration": "300s", "maxRetryTimes": int64(2), "retryTimeout": "30m"}), retrytest.Entry(retry.CmdStart, retry.PhaseComplete), retrytest.Set("status.commitTs", "1")},
			action: retry.ActNone, next: "nothing: log-start is Complete and nothing failed",
			sources: []string{"server default (replaces the CRD's snapshot default 300s)", "server default (replaces the CRD's snapshot default 2)", "spec (equal to the CRD's snapshot default, kept)"},
		},
		{
			name: "snapshot mode", edits: []retrytest.Edit{retrytest.Set("spec.backupMode", "snapshot")}, action: retry.ActNone,
			next: `nothing: spec.backupMode is "snapshot", not log`, sources: []string{"unset", "unset", "unset"},
		},
		{
			name: "gave up", edits: []retrytest.Edit{quick, retrytest.Entry(retry.CmdStart, retry.PhaseFailed), retrytest.Episode(retry.CmdStart, true)}, action: retry.ActNone,
			next: "nothing: log-start gave up, the retries were spent (BRFailed: rpc error: store 1 unavailable)", sources: []string{"spec", "spec", "spec"},
		},
		{
			name: "user pause", edits: []retrytest.Edit{retrytest.Set("spec.logSubcommand", retry.CmdPause), retrytest.Set("status.phase", retry.PhasePaused), retrytest.Set("status.commitTs", "1")},
			action: retry.ActNone, next: "paused on request", sources: []string{"server default", "server default", "server default"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg == (defaults.Config{}) {
				tt.cfg = defaults.DefaultConfig()
			}
			in := retry.Input{Now: retrytest.T0.Add(tt.now), Backup: retry.ViewBackup(retrytest.Obj(tt.edits...)), Config: tt.cfg}
			d := retry.Decide(in)
			require.Equal(t, tt.action, d.Action, d.Message)
			x := &Explanation{}
			x.describe(in, d, false)
			assert.Equal(t, d.Action, x.Decision.Action, "explain shows Decide's action")
			assert.Equal(t, d.Message, x.Decision.Message)
			assert.Contains(t, x.Next, tt.next)
			if tt.limit == "" {
				assert.Nil(t, x.Limit)
			} else if assert.NotNil(t, x.Limit) {
				assert.Equal(t, tt.limit, x.Limit.Limit)
				assert.Equal(t, tt.limitLast, x.Limit.AfterRetry)
				assert.Equal(t, retrytest.T0.Add(tt.limitAt), x.Limit.At)
			}
			var sources []string
			for _, f := range x.Policy.Fields {
				sources = append(sources, f.Source)
			}
			assert.Equal(t, tt.sources, sources)
			var buf bytes.Buffer
			require.NoError(t, x.WriteText(&buf))
			assert.Contains(t, buf.String(), "Decision:")
		})
	}
}
