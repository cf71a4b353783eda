package webhook

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
)

// The request's logger is built only when a line is written (ServeHTTP): at the default
// verbosity a normal answer logs nothing, at V(1) it logs the request's identity, and an
// unusable request is logged with it at any verbosity.
func TestRequestLogging(t *testing.T) {
	good, err := json.Marshal(loadReview(t, "create-log-backup.json"))
	require.NoError(t, err)
	unusable, err := json.Marshal(loadReview(t, "create-log-backup.json").set(5, "spec", "backupMode"))
	require.NoError(t, err)
	uid := loadReview(t, "create-log-backup.json").request()["uid"].(string)
	tests := []struct {
		name      string
		verbosity int
		body      []byte
		want      []string // each on one line with the request's uid
		wantNone  bool
	}{
		{"an answer at the default verbosity logs nothing", 0, good, nil, true},
		{"an answer at V(1) logs the request", 1, good, []string{"Answered admission request", `"result"="patched"`}, false},
		{"an unusable request is logged at the default verbosity", 0, unusable, []string{"Rejected unusable admission request"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lines []string
			log := funcr.New(func(prefix, args string) { lines = append(lines, prefix+" "+args) }, funcr.Options{Verbosity: tt.verbosity})
			s := &Webhooks{Config: defaults.DefaultConfig(), Log: log}
			call(t, s, MutateBackupPath, tt.body)
			if tt.wantNone {
				assert.Empty(t, lines)
				return
			}
			all := strings.Join(lines, "\n")
			for _, w := range tt.want {
				assert.Contains(t, all, w)
			}
			for _, l := range lines {
				for _, key := range []string{`"webhook"=`, `"uid"="` + uid + `"`, `"operation"="CREATE"`, `"kind"="Backup"`, `"name"=`} {
					assert.Contains(t, l, key, "line %q", l)
				}
			}
		})
	}
}
