package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/tidb-backup-guard/tidb-backup-guard/cmd/tidb-backup-guard/app"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// At the most verbose level, through certificate creation, rotation, admission of a
// Backup that references a Secret and carries credentials-looking values, and a retry,
// the logs hold no key material, no token and no object contents.
func TestNoSecretsInLogs(t *testing.T) {
	var buf syncBuffer
	log := zap.New(zap.WriteTo(&buf), zap.Level(zapcore.Level(-10)), zap.UseDevMode(true))
	name := secretName(t)
	s, err := env.StartSelfSigned(t.Context(), log, true, withSecret(name, func(o *app.Options) {
		o.Components = []string{app.ComponentWebhook, app.ComponentReconciler}
		o.CAValidity, o.CertValidity, o.CAOverlap = 6*time.Second, 3*time.Second, 2*time.Second
	}))
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, s.Stop())
		_ = testenv.UnregisterWebhooks(context.Background(), env.Client)
	})
	op := operator(t)
	op.Script("pitr", testenv.BRError, testenv.Succeed)
	backup := richLogBackup(t, "pitr", quickPolicy) // env: a secretKeyRef; s3.secretName; annotations
	require.NoError(t, op.Start(t.Context(), backup))
	eventually(t, op.Namespace, "pitr", 30*time.Second, "recovers",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })
	settled(t, op, map[string]int{"pitr": 1})
	time.Sleep(2 * time.Second) // with the settling, at least one rotation

	logs := buf.String()
	require.Contains(t, logs, "Updated the certificate Secret", "the logs were captured")
	require.Contains(t, logs, "Answered admission request")
	sec := getSecret(t, name)
	forbidden := map[string]string{
		"a PEM private key":        "PRIVATE KEY",
		"a CA key (base64)":        base64.StdEncoding.EncodeToString(sec.Data["ca.key"])[:40],
		"a serving key (raw PEM)":  strings.Split(string(sec.Data["tls.key"]), "\n")[1],
		"the client key":           strings.Split(string(env.Config.KeyData), "\n")[1],
		"a bearer token":           "Bearer ",
		"object contents (s3)":     "s3-secret",
		"object contents (env)":    "br-token",
		"object contents (labels)": "dba-oncall",
		"client-go request bodies": "Request Body",
	}
	for what, s := range forbidden {
		if strings.Contains(logs, s) {
			i := strings.Index(logs, s)
			t.Errorf("%s in the logs: ...%s...", what, logs[max(0, i-200):min(len(logs), i+100)])
		}
	}
}
