package integration

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var schemaNamespace = corev1.SchemeGroupVersion.WithKind("Namespace")

// warningRecorder collects the API server's warnings, as kubectl would print them.
type warningRecorder struct {
	mu  sync.Mutex
	out *[]string
}

func (w *warningRecorder) HandleWarningHeader(code int, _ string, text string) {
	if code != 299 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	*w.out = append(*w.out, text)
}

// clientWithWarnings is a client that records warnings into out.
func clientWithWarnings(t *testing.T, out *[]string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = &warningRecorder{out: out}
	c, err := client.New(cfg, client.Options{})
	require.NoError(t, err)
	return c
}
